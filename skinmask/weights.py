"""Load and save weights with their metadata (safetensors: loading never runs code)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .archs import ARCHITECTURES, state_shapes
from .errors import WeightsError
from .facecolour import MAX_REACH, valid_face_colour
from .finepass import MAX_FACTOR, valid_fine_pass
from .hairzone import valid_zone
from .prior import PriorSpec

if TYPE_CHECKING:  # torch loads only where a torch network is built (the onnxruntime engine never needs it)
    from .model import SkinNet

FORMAT_VERSION = "1"
DEFAULT_WEIGHTS_NAME = "default.safetensors"


@dataclass(frozen=True)
class InputSpec:
    """How uint8 pixels become the network's input: x = (pixel / 255 - mean) / std, in channel_order."""

    channel_order: str = "rgb"
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)

    def __post_init__(self) -> None:
        if self.channel_order not in ("rgb", "bgr"):
            raise ValueError(f"channel_order must be 'rgb' or 'bgr', not {self.channel_order!r}")
        if len(self.mean) != 3 or len(self.std) != 3 or any(s <= 0 for s in self.std):
            raise ValueError("mean and std need three values, std all positive")


@dataclass
class WeightsMeta:
    """Everything stored beside the tensors: architecture, input convention, threshold, provenance."""

    arch: str = "softconv"
    input: InputSpec = field(default_factory=InputSpec)
    threshold: float = 0.5
    scale: float = 1.0  # the network runs on frames resized by this factor; masks come back full size
    info: dict[str, Any] = field(default_factory=dict)
    prior: PriorSpec | None = None  # the person prior network, for architectures that take one
    face_prior: tuple[PriorSpec, ...] | None = None  # the face detector and mesh, for architectures taking a face map
    person_gate: tuple[float, ...] | None = None  # (lo, hi[, faces]) of skinmask.gate, for prior architectures
    hair_zone: tuple[float, ...] | None = None  # (above, side, below, forehead) of skinmask.hairzone (face networks)
    fine_pass: tuple[float, ...] | None = None  # (max_height, max_skin, factor) of skinmask.finepass (prior networks)
    face_colour: tuple[float, ...] | None = None  # (near, far, reach) of skinmask.facecolour (face networks)

    @property
    def face_rules(self) -> bool:
        """Whether a rule after the network reads the face map: the face-confirmed gate, hair zone or face colour."""
        return ((self.person_gate is not None and len(self.person_gate) == 3) or self.hair_zone is not None
                or self.face_colour is not None)

    def to_strings(self) -> dict[str, str]:
        out = {
            "skinmask_format": FORMAT_VERSION,
            "arch": self.arch,
            "input": json.dumps(asdict(self.input)),
            "threshold": repr(float(self.threshold)),
            "scale": repr(float(self.scale)),
            "info": json.dumps(self.info, sort_keys=True),
        }
        if self.prior is not None:
            out["prior"] = json.dumps(self.prior.to_dict(), sort_keys=True)
        if self.face_prior is not None:
            out["face_prior"] = json.dumps([s.to_dict() for s in self.face_prior], sort_keys=True)
        if self.person_gate is not None:
            out["person_gate"] = json.dumps([float(v) for v in self.person_gate])
        if self.hair_zone is not None:
            out["hair_zone"] = json.dumps([float(v) for v in self.hair_zone])
        if self.fine_pass is not None:
            out["fine_pass"] = json.dumps([float(v) for v in self.fine_pass])
        if self.face_colour is not None:
            out["face_colour"] = json.dumps([float(v) for v in self.face_colour])
        return out

    @classmethod
    def from_strings(cls, meta: dict[str, str], path: Path) -> "WeightsMeta":
        if meta.get("skinmask_format") != FORMAT_VERSION:
            raise WeightsError(
                f"not a skinmask weights file (metadata skinmask_format={meta.get('skinmask_format')!r}, "
                f"expected {FORMAT_VERSION!r})",
                path,
            )
        try:
            arch = meta["arch"]
            spec = json.loads(meta["input"])
            inp = InputSpec(spec["channel_order"], tuple(spec["mean"]), tuple(spec["std"]))
            threshold = float(meta["threshold"])
            scale = float(meta.get("scale", "1.0"))
            info = json.loads(meta.get("info", "{}"))
            prior = PriorSpec.from_dict(json.loads(meta["prior"])) if "prior" in meta else None
            face = (tuple(PriorSpec.from_dict(d) for d in json.loads(meta["face_prior"]))
                    if "face_prior" in meta else None)
            gate = tuple(float(v) for v in json.loads(meta["person_gate"])) if "person_gate" in meta else None
            hair = tuple(float(v) for v in json.loads(meta["hair_zone"])) if "hair_zone" in meta else None
            fine = tuple(float(v) for v in json.loads(meta["fine_pass"])) if "fine_pass" in meta else None
            colour = tuple(float(v) for v in json.loads(meta["face_colour"])) if "face_colour" in meta else None
        except (KeyError, ValueError, TypeError) as exc:
            raise WeightsError(f"bad metadata ({type(exc).__name__}: {exc})", path) from None
        if arch not in ARCHITECTURES:
            raise WeightsError(f"unknown architecture {arch!r} in metadata", path)
        if ARCHITECTURES[arch].prior != (prior is not None):
            raise WeightsError(f"architecture {arch!r} " + ("takes a person prior but the metadata names no prior "
                               "network" if prior is None else "takes no prior, yet the metadata names one"), path)
        gate_faces = gate is not None and len(gate) == 3
        if ARCHITECTURES[arch].face and face is None:
            raise WeightsError(f"architecture {arch!r} takes a face map but the metadata names no face networks", path)
        if gate_faces and face is None:
            raise WeightsError("the person gate looks for faces but the metadata names no face networks", path)
        if hair is not None and face is None:
            raise WeightsError("the hair zone needs the face networks but the metadata names none", path)
        if colour is not None and face is None:
            raise WeightsError("the face colour rule needs the face networks but the metadata names none", path)
        if colour is not None and not valid_face_colour(colour):
            raise WeightsError(f"face_colour {list(colour)} in metadata: expected [near, far, reach] with "
                               f"0 < near < far and 0 < reach <= {MAX_REACH:g}", path)
        if face is not None and not (ARCHITECTURES[arch].face or gate_faces or hair is not None or colour is not None):
            raise WeightsError(f"architecture {arch!r} takes no face map, yet the metadata names face networks", path)
        if hair is not None and not valid_zone(hair):
            raise WeightsError(f"hair_zone {list(hair)} in metadata: expected [above, side, below, forehead], "
                               "each in 0..2 (face heights or widths)", path)
        if gate is not None and (len(gate) not in (2, 3) or not 0.0 <= gate[0] < gate[1] <= 1.0
                                 or not all(0.0 <= v <= 1.0 for v in gate)):
            raise WeightsError(f"person_gate {list(gate)} in metadata: expected [lo, hi] or [lo, hi, faces] with "
                               "0 <= lo < hi <= 1 and 0 <= faces <= 1", path)
        if gate is not None and prior is None:
            raise WeightsError(f"architecture {arch!r} takes no person prior, yet the metadata asks for a person gate", path)
        if hair is not None and prior is None:
            raise WeightsError(f"architecture {arch!r} takes no person prior, yet the metadata asks for a hair zone", path)
        if colour is not None and prior is None:
            raise WeightsError(f"architecture {arch!r} takes no person prior, yet the metadata asks for a face colour "
                               "rule", path)
        if fine is not None and not valid_fine_pass(fine):
            raise WeightsError(f"fine_pass {list(fine)} in metadata: expected [max_height, max_skin, factor] with "
                               f"0 < max_height <= 1, 0 < max_skin <= 1 and 1 < factor <= {MAX_FACTOR:g}", path)
        if fine is not None and prior is None:
            raise WeightsError(f"architecture {arch!r} takes no person prior, yet the metadata asks for a fine pass", path)
        if not 0.0 <= threshold <= 1.0:
            raise WeightsError(f"threshold {threshold} in metadata is outside 0..1", path)
        if not 0.05 <= scale <= 1.0:
            raise WeightsError(f"scale {scale} in metadata is outside 0.05..1", path)
        return cls(arch=arch, input=inp, threshold=threshold, scale=scale, info=info, prior=prior, face_prior=face,
                   person_gate=gate, hair_zone=hair, fine_pass=fine, face_colour=colour)


def shipped_models_dir() -> Path:
    """The folder holding the shipped weights: inside the installed package, or the source tree's models/."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "_models", here.parent / "models"):
        if (candidate / DEFAULT_WEIGHTS_NAME).is_file():
            return candidate
    raise WeightsError("the shipped default weights are missing from this installation", here / "_models")


def default_weights_path() -> Path:
    """Path of the shipped default weights."""
    return shipped_models_dir() / DEFAULT_WEIGHTS_NAME


def resolve_weights(weights: str | Path | None) -> Path:
    """A weights path from a user value: None/'default' is the shipped default, a bare name a shipped file."""
    if weights is None or str(weights) == "default":
        return default_weights_path()
    path = Path(weights)
    if not path.exists() and path.parent == Path(".") and path.suffix in ("", ".safetensors"):
        try:
            shipped = shipped_models_dir() / (path.stem + ".safetensors")
        except WeightsError:
            shipped = None
        if shipped is not None and shipped.is_file():
            return shipped
    return path


def save_weights(path: str | Path, model: SkinNet, meta: WeightsMeta) -> Path:
    """Write model tensors and metadata to a .safetensors file atomically."""
    from safetensors.torch import save_file

    from .atomic import atomic_path

    path = Path(path)
    if meta.arch != model.arch:
        raise ValueError(f"metadata arch {meta.arch!r} does not match model arch {model.arch!r}")
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta.to_strings())
    return path


def load_weights(path: str | Path | None = None) -> tuple[SkinNet, WeightsMeta]:
    """Read a .safetensors weights file into a model in eval mode; refuse anything that does not fit."""
    import torch

    from .model import SkinNet

    tensors, meta = read_weights(path)
    model = SkinNet(meta.arch)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in tensors.items()})
    model.eval()
    return model, meta


def read_weights(path: str | Path | None = None) -> tuple[dict[str, np.ndarray], WeightsMeta]:
    """Read and check a .safetensors weights file without torch: float32 arrays by state_dict name, metadata."""
    from safetensors import safe_open
    from safetensors import SafetensorError  # type: ignore[attr-defined]

    path = resolve_weights(path)
    if not path.exists():
        raise WeightsError("no such weights file", path)
    if path.is_dir():
        raise WeightsError("is a directory, not a weights file", path)
    with open(path, "rb") as fh:
        head = fh.read(16)
    # a pickle starts with 0x80; a safetensors file starts with its header length (which can end in 0x80) then "{"
    if head[:2] == b"PK" or (head[:1] == b"\x80" and head[8:9] != b"{"):
        raise WeightsError("looks like a pickled PyTorch checkpoint; only .safetensors files are loaded "
                           "(pickles can run code)", path)
    try:
        with safe_open(str(path), framework="np") as fh:
            raw_meta = fh.metadata() or {}
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError, TypeError) as exc:
        raise WeightsError(f"not a readable .safetensors file ({str(exc).splitlines()[0][:120]})", path) from None
    meta = WeightsMeta.from_strings(raw_meta, path)
    expected = state_shapes(meta.arch)
    missing = sorted(set(expected) - set(tensors))
    extra = sorted(set(tensors) - set(expected))
    if missing or extra:
        raise WeightsError(f"tensors do not fit arch {meta.arch!r} (missing {missing[:3]}, unexpected {extra[:3]})", path)
    out: dict[str, np.ndarray] = {}
    for name, shape in expected.items():
        got = tensors[name]
        if tuple(got.shape) != shape:
            raise WeightsError(f"tensor {name} has shape {tuple(got.shape)}, arch {meta.arch!r} needs {shape}", path)
        arr = np.ascontiguousarray(got, dtype=np.float32)
        if not np.isfinite(arr).all():
            raise WeightsError(f"tensor {name} holds NaN or infinite values", path)
        out[name] = arr
    return out, meta
