"""Run a loaded network on uint8 BGR frames: preprocessing, batching, tiling, activation capture."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .archs import ARCHITECTURES, receptive_radius
from .devices import select_device
from .engines import OnnxEngine, TorchEngine, pick
from .errors import InputError
from .facecolour import GeometryCache, apply_face_colour
from .finepass import crop_frame, crop_prior, fine_region, merge_fine, target_crop
from .gate import apply_person_gate
from .hairzone import apply_hair_zone
from .prior import PersonPrior, StackedPrior, load_prior
from .temporal import FrameStream
from .maps import (MAX_WORKING_PIXELS, MIN_WORKING_PIXELS, mask_from_working, resize_frames, resize_maps,
                   upsample_map, working_scale)
from .weights import WeightsMeta, read_weights, resolve_weights

if TYPE_CHECKING:  # torch loads only for the torch engine, or when model.net is asked for
    import torch

    from .model import SkinNet

# Above this many pixels an image is processed in overlapping tiles (bounded memory, same result).
TILE_PIXELS = 2048 * 2048
TILE_SIZE = 1024


def as_bgr(image: np.ndarray) -> np.ndarray:
    """Any 2-D gray, BGR or BGRA uint8 array -> contiguous BGR uint8 (H, W, 3)."""
    if image.dtype != np.uint8:
        raise InputError(f"expected a uint8 image, got dtype {image.dtype}")
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim == 3 and image.shape[2] == 3:
        return np.ascontiguousarray(image)
    if image.ndim == 3 and image.shape[2] == 4:
        return np.ascontiguousarray(image[:, :, :3])
    if image.ndim == 3 and image.shape[2] == 1:
        return np.repeat(image, 3, axis=2)
    raise InputError(f"expected an image of shape (H, W), (H, W, 3) or (H, W, 4), got {image.shape}")


@dataclass
class SkinModel:
    """A network ready for inference: weights, metadata, device and the file it came from.

    ``runner`` is the engine that runs it (:mod:`skinmask.engines`; None: eager torch). With the
    onnxruntime engine ``net`` may be None: the torch network is then built from ``state`` (the
    weights as numpy arrays) the first time ``model.net`` is read, and ``device`` is a string.
    """

    net: SkinNet | None
    meta: WeightsMeta
    device: Any  # torch.device, or a device string ("cpu", "cuda:0") where torch is not loaded
    weights_path: Path | None = None
    engine: str = "torch"  # the engine that runs the net: "onnxruntime" or "torch" (see skinmask.engines)
    runner: Any = field(default=None, repr=False, compare=False)
    state: dict[str, np.ndarray] | None = field(default=None, repr=False, compare=False)
    max_working_pixels: int | None = MAX_WORKING_PIXELS  # see MAX_WORKING_PIXELS
    min_working_pixels: int | None = MIN_WORKING_PIXELS  # see MIN_WORKING_PIXELS
    prior: PersonPrior | StackedPrior | None = field(default=None, repr=False, compare=False)  # meta.prior (+ face)
    face_geometry: GeometryCache = field(default_factory=GeometryCache, repr=False, compare=False)  # face colour's

    def __post_init__(self) -> None:
        if self.prior is None and self.meta.prior is not None:
            self.prior = load_prior(self.meta.prior, self.meta.face_prior)
        if self.net is None:
            if self.state is None:
                raise ValueError("SkinModel needs a network or its state")
            del self.__dict__["net"]  # built by __getattr__ on first use

    def __getattr__(self, name: str) -> Any:
        if name == "net" and "state" in self.__dict__:  # lazily: the torch network (imports torch)
            import torch

            from .model import SkinNet

            net = SkinNet(self.meta.arch)
            net.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in self.state.items()})
            net.to(torch.device(str(self.device))).eval()
            self.__dict__["net"] = net
            return net
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def _engine(self) -> Any:
        if self.runner is None:
            import torch

            self.runner = TorchEngine(self.net, self.meta.input, torch.device(str(self.device)))
            self.engine = self.runner.name
        return self.runner

    @property
    def threshold(self) -> float:
        return self.meta.threshold

    def probabilities(self, frames: np.ndarray) -> np.ndarray:
        """Skin probability (B, H, W) float32 for uint8 BGR frames (B, H, W, 3) of one size."""
        return resize_maps(self.working_probabilities(frames), frames.shape[1:3])

    def working_probabilities(self, frames: np.ndarray, stream: FrameStream | None = None) -> np.ndarray:
        """Skin probability (B, h, w) float32 at the working size (:meth:`working_scale`), not upsampled:
        what the pipeline carries, so masks and statistics need not touch full-size float maps.

        ``stream``: consecutive frames of one video (:class:`skinmask.temporal.FrameStream`): the
        person prior is reused between refreshes and the maps are smoothed over time."""
        return self._run(self._to_working(frames), stream, originals=frames)

    def _to_working(self, frames: np.ndarray) -> np.ndarray:
        """Frames (B, H, W, 3) resized to the working size (the same array at scale 1)."""
        return resize_frames(frames, self.working_scale(*frames.shape[1:3]))

    def priors(self, frames: np.ndarray, stream: FrameStream | None = None) -> np.ndarray | None:
        """The person prior (B, h, w) uint8 for working frames (B, h, w, 3); None for nets without one."""
        if self.prior is None:
            return None
        return self.prior.maps(frames) if stream is None else stream.priors(frames, self.prior.maps)

    def _run(self, frames: np.ndarray, stream: FrameStream | None = None, prior: np.ndarray | None = None,
             gate: bool = True, originals: np.ndarray | None = None) -> np.ndarray:
        """Working probabilities of working frames; ``gate=False`` leaves the person gate to the caller (tiles).
        ``originals``: the same frames at full size, for the fine pass (weights that have one)."""
        if prior is None:
            prior = self.priors(frames, stream)
        engine = self._engine()
        net_prior = self._net_prior(prior)
        probs = engine.probabilities(frames) if prior is None else engine.probabilities(frames, net_prior)  # (B, h, w)
        if gate:
            probs = self._rules(probs, prior, frames, originals)
        return probs if stream is None else stream.smooth(frames, probs)

    def _rules(self, raw: np.ndarray, prior: np.ndarray | None, frames: np.ndarray,
               originals: np.ndarray | None) -> np.ndarray:
        """Whole working frames' network probabilities through the weights' rules: the gate, hair zone and face
        colour, then (given the full-size frames) the fine pass in frames of small people (:mod:`skinmask.finepass`)."""
        probs = self._gate(raw, prior, frames)
        if prior is None or originals is None or self.meta.fine_pass is None:
            return probs
        max_height, max_skin, factor = self.meta.fine_pass
        person = prior[..., 0] if prior.ndim == 4 else prior
        face = prior[..., 1] if prior.ndim == 4 else None
        scale = self.working_scale(*originals.shape[1:3])
        out = None
        for b in range(len(raw)):
            target = fine_region(raw[b], person[b], max_height, max_skin, None if face is None else face[b])
            crop = None if target is None else target_crop(target.mask, originals.shape[1:3], scale, factor)
            if crop is None:
                continue
            fine = self._run(crop_frame(originals[b], crop)[None], prior=crop_prior(prior[b], crop)[None])[0]
            out = probs.copy() if out is None else out
            out[b] = merge_fine(probs[b], target, fine, crop)
        return probs if out is None else out

    def _net_prior(self, prior: np.ndarray | None) -> np.ndarray | None:
        """The prior maps the network reads: all of them, or the person map alone where the face map is only for
        the person gate (a net that takes no face map, with a face-confirmed gate)."""
        if prior is None or prior.ndim != 4 or ARCHITECTURES[self.meta.arch].face:
            return prior
        return np.ascontiguousarray(prior[..., 0])

    def _gate(self, probs: np.ndarray, prior: np.ndarray | None, frames: np.ndarray) -> np.ndarray:
        """Whole working frames' probabilities through the weights' rules after the network, if they have any: the
        person gate (:mod:`skinmask.gate`), the hair zone (:mod:`skinmask.hairzone`), then the face colour
        (:mod:`skinmask.facecolour`)."""
        if prior is None:
            return probs
        if self.meta.person_gate is not None:
            probs = apply_person_gate(probs, prior, *self.meta.person_gate)
        if self.meta.hair_zone is not None and prior.ndim == 4:
            probs = apply_hair_zone(probs, prior[..., 1], self.meta.hair_zone)
        if self.meta.face_colour is not None and prior.ndim == 4:
            probs = apply_face_colour(probs, frames, prior[..., 1], self.meta.face_colour, self.face_geometry)
        return probs

    def probabilities_and_activations(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities (B, H, W) and the 32 tanh activation maps (B, 32, h, w), float32.

        The maps are at the network's working size (the frame size times :meth:`working_scale`).
        """
        prob, acts = self.working_probabilities_and_activations(frames)
        return resize_maps(prob, frames.shape[1:3]), acts

    def working_probabilities_and_activations(self, frames: np.ndarray,
                                              stream: FrameStream | None = None) -> tuple[np.ndarray, np.ndarray]:
        """As :meth:`probabilities_and_activations`, with the probabilities at the working size too."""
        small = self._to_working(frames)
        prior, engine = self.priors(small, stream), self._engine()
        prob, acts = (engine.probabilities_and_activations(small) if prior is None
                      else engine.probabilities_and_activations(small, self._net_prior(prior)))
        prob = self._rules(prob, prior, small, frames)
        return (prob if stream is None else stream.smooth(small, prob)), acts

    def working_scale(self, height: int, width: int) -> float:
        """The scale the network runs at for frames of this size (see :func:`working_scale`)."""
        return working_scale(height, width, self.meta.scale, self.max_working_pixels, self.min_working_pixels)

    def probability_image(self, image: np.ndarray) -> np.ndarray:
        """Probability map (H, W) for one image of any size; identical to :meth:`probabilities`."""
        return upsample_map(self.working_probability_image(image), image.shape[:2])

    def working_probability_image(self, image: np.ndarray) -> np.ndarray:
        """Probability map (h, w) at the working size for one image of any size (gray, BGR or BGRA).

        Large images are resized to the working scale once, then the network runs over overlapping
        tiles of the working image (each tile carries the receptive radius of context on every side,
        so every kept pixel sees what it sees in the whole image).
        """
        bgr = as_bgr(image)
        h, w = bgr.shape[:2]
        # A context branch sees ~147 working pixels and upsamples relative to the whole image, so tiles could
        # not give the same map: those nets take the working image in one pass (the engine still bounds the
        # full-resolution path's memory with strips; at the capped working size it is at most 640x360).
        if h * w <= TILE_PIXELS or ARCHITECTURES[self.meta.arch].context:
            return self.working_probabilities(bgr[None])[0]
        small = self._to_working(bgr[None])[0]
        prior = self.priors(small[None])  # of the whole image, then cut like the tiles
        sh, sw = small.shape[:2]
        pad = receptive_radius(self.meta.arch)
        out = np.empty((sh, sw), np.float32)
        for y0 in range(0, sh, TILE_SIZE):
            for x0 in range(0, sw, TILE_SIZE):
                y1, x1 = min(y0 + TILE_SIZE, sh), min(x0 + TILE_SIZE, sw)
                ya, xa = max(y0 - pad, 0), max(x0 - pad, 0)
                yb, xb = min(y1 + pad, sh), min(x1 + pad, sw)
                part = None if prior is None else np.ascontiguousarray(prior[:, ya:yb, xa:xb])
                tile = self._run(np.ascontiguousarray(small[None, ya:yb, xa:xb]), prior=part, gate=False)[0]
                out[y0:y1, x0:x1] = tile[y0 - ya : y1 - ya, x0 - xa : x1 - xa]
        # the rules on the whole image: the gate weighs its skin share, not a tile's; faces cross tiles
        return self._rules(out[None], prior, small[None], bgr[None])[0]


def load_model(weights: str | Path | None = None, device: str = "auto", engine: str = "auto") -> SkinModel:
    """Load weights (default: the shipped model) onto a device, ready for :func:`predict`.

    ``engine``: auto (onnxruntime when installed, else torch), onnxruntime or torch; ``model.engine``
    names the one that runs.
    """
    name, dev = pick(engine, device)  # imports torch only for the torch engine or a CUDA build of torch
    path = resolve_weights(weights)
    state, meta = read_weights(path)
    if name == "onnxruntime":
        runner = OnnxEngine(state, meta.arch, meta.input, dev)
        return SkinModel(net=None, meta=meta, device=dev, weights_path=path, engine=runner.name, runner=runner,
                         state=state)
    import torch

    from .model import SkinNet

    net = SkinNet(meta.arch)
    net.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    tdev = select_device(dev)
    net.to(tdev).eval()
    return SkinModel(net=net, meta=meta, device=tdev, weights_path=path, engine="torch",
                     runner=TorchEngine(net, meta.input, tdev), state=state)


def predict(model: SkinModel, image: np.ndarray, threshold: float | None = None) -> np.ndarray:
    """Skin mask (H, W) uint8 for one uint8 BGR (or gray/BGRA) image: probability x 255, or 0/255
    (the same masks as ``skinmask predict``: see :func:`mask_from_working`)."""
    return mask_from_working(model.working_probability_image(image), image.shape[:2], threshold)
