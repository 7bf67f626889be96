"""The priors: a whole-frame person segmenter whose probability is an extra input channel of the net, and,
for ``softconv-face-prior``, a face map (where Face Mesh finds faces) as one more.

A 17x17-pixel view of colour cannot tell a face from a gold curtain; a person segmenter that sees the
whole frame can tell where people are, but not which of their pixels are skin, and it misses close-ups
(a bare belly filling the frame is not a "person" to it). So its probability is not a gate but a 4th
input channel (architectures with ``ArchSpec.prior``), which the network learns when to trust.

The prior network is part of the model as loaded: the weights' metadata names it, its file among the
shipped models and its SHA-256 (:class:`PriorSpec`), so every command gets it with no flag of its own.
It always runs in onnxruntime (:mod:`skinmask.person`, :mod:`skinmask.onnxnets`), whichever engine
runs the skin net. It sees the
frame at the skin net's working size (the same pixels the net sees, in training and at run time) and its
map comes back at that size as uint8 (0..255), the form both engines take.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import WeightsError

# In a video the prior runs on one frame in this many and is reused in between: people move slowly, and the
# prior is a soft hint the net combines with what it sees in every frame (see skinmask.temporal).
PRIOR_EVERY = 8


@dataclass(frozen=True)
class PriorSpec:
    """The prior network a weights file names: its name, its file among the shipped models, its SHA-256."""

    network: str
    file: str
    sha256: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "PriorSpec":
        return cls(str(d["network"]), str(d["file"]), str(d["sha256"]))


def shipped_spec(name: str) -> PriorSpec:
    """A shipped network (:data:`skinmask.onnxnets.NETS`) as a PriorSpec."""
    from .onnxnets import NETS

    return PriorSpec(name, NETS[name].file, NETS[name].sha256)


def default_prior_spec() -> PriorSpec:
    """The shipped person segmenter as a PriorSpec (what training names in new weights)."""
    from .person import NET

    return shipped_spec(NET)


def face_prior_specs() -> tuple[PriorSpec, PriorSpec]:
    """The shipped face detector and Face Mesh as PriorSpecs (what training names in new face-map weights)."""
    from .face import DETECTOR, MESH

    return shipped_spec(DETECTOR), shipped_spec(MESH)


def _check_shipped(spec: PriorSpec, expected: str) -> None:
    """The weights name a prior network: it must be the shipped one (whose file :mod:`skinmask.onnxnets`
    checks against the same checksum when it loads it)."""
    from .onnxnets import NETS

    shipped = NETS.get(spec.network)
    if spec.network != expected or shipped is None:
        raise WeightsError(f"the weights' prior network {spec.network!r} is not shipped (have: {expected})", Path(spec.file))
    if shipped.sha256 != spec.sha256:
        raise WeightsError(f"the weights were trained with prior network {spec.network} of SHA-256 "
                           f"{spec.sha256[:16]}..., the shipped one is {shipped.sha256[:16]}...", Path(spec.file))


class PersonPrior:
    """Person probability maps (B, h, w) uint8 for BGR frames (B, h, w, 3) at the skin net's working size."""

    def __init__(self, spec: PriorSpec, threads: int | None = None) -> None:
        from .person import NET, PersonSegmenter

        _check_shipped(spec, NET)
        self.spec = spec
        self.cache_key = spec.sha256[:16]
        self.segmenter = PersonSegmenter(threads)

    def maps(self, frames: np.ndarray) -> np.ndarray:
        p = self.segmenter(np.ascontiguousarray(frames))  # (B, h, w) float32 in 0..1
        return np.rint(p * 255.0).astype(np.uint8)


class FacePrior:
    """Face maps (B, h, w) uint8 (:class:`skinmask.face.FaceMaps`) for BGR frames at the working size."""

    def __init__(self, specs: tuple[PriorSpec, ...], threads: int | None = None) -> None:
        from .face import DETECTOR, MESH, FaceMaps

        if len(specs) != 2:
            raise WeightsError(f"the weights name {len(specs)} face networks, not 2 (detector, mesh)",
                               Path(specs[0].file if specs else "face_prior"))
        for spec, expected in zip(specs, (DETECTOR, MESH)):
            _check_shipped(spec, expected)
        self.specs = tuple(specs)
        self.cache_key = "face" + "".join(s.sha256[:8] for s in specs)
        self.faces = FaceMaps(threads)

    def maps(self, frames: np.ndarray) -> np.ndarray:
        return self.faces(np.ascontiguousarray(frames))


class StackedPrior:
    """Several priors' maps stacked on a last axis (B, h, w, K): the person prior, then the face map."""

    def __init__(self, parts: list[PersonPrior | FacePrior]) -> None:
        self.parts = parts
        self.person = parts[0]

    def maps(self, frames: np.ndarray) -> np.ndarray:
        return np.stack([p.maps(frames) for p in self.parts], -1)


def load_prior(person: PriorSpec | None, face: tuple[PriorSpec, ...] | None = None,
               threads: int | None = None) -> PersonPrior | StackedPrior | None:
    """The priors a weights file names (its metadata's ``prior`` and ``face_prior``), ready to run."""
    if person is None:
        return None
    prior = PersonPrior(person, threads)
    return prior if face is None else StackedPrior([prior, FacePrior(face, threads)])


def default_cache_dir() -> Path:
    """Where training keeps person maps it computed (SKINMASK_PRIOR_CACHE, else /tmp/skinmask-prior-cache)."""
    import tempfile

    return Path(os.environ.get("SKINMASK_PRIOR_CACHE") or Path(tempfile.gettempdir()) / "skinmask-prior-cache")


class PriorCache:
    """Prior maps of training images, computed once by the run-time prior and kept on disk: (h, w) uint8,
    or (h, w, K) for a :class:`StackedPrior` (each part cached on its own).

    Keyed by the image file's SHA-256, the working size and the prior networks' checksums, so a changed
    image, scale or network never reuses a stale map. Call it with (image path, working image (h, w, 3)).
    """

    def __init__(self, prior: PersonPrior | FacePrior | StackedPrior, folder: Path | None = None) -> None:
        self.prior, self.folder = prior, folder or default_cache_dir()
        self.folder.mkdir(parents=True, exist_ok=True)

    def __call__(self, path: Path, image: np.ndarray) -> np.ndarray:
        if isinstance(self.prior, StackedPrior):
            return np.stack([self._one(part, path, image) for part in self.prior.parts], -1)
        return self._one(self.prior, path, image)

    def _one(self, prior: PersonPrior | FacePrior, path: Path, image: np.ndarray) -> np.ndarray:
        import cv2

        from .onnxnets import file_sha256

        h, w = image.shape[:2]
        key = f"{file_sha256(path)}_{w}x{h}_{prior.cache_key}.png"
        cached = self.folder / key
        if cached.is_file():
            got = cv2.imread(str(cached), cv2.IMREAD_UNCHANGED)
            if got is not None and got.shape == (h, w):
                return got
        p = prior.maps(image[None])[0]
        tmp = cached.with_name(f".{key}.{os.getpid()}.png")
        cv2.imwrite(str(tmp), p)
        tmp.replace(cached)
        return p
