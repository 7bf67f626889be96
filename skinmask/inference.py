"""Run a loaded network on uint8 BGR frames: preprocessing, batching, tiling, activation capture."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from .archs import receptive_radius
from .engines import OnnxEngine, TorchEngine, net_state, pick, to_input  # noqa: F401 (to_input re-exported)
from .errors import DeviceError, InputError
from .weights import InputSpec, WeightsMeta, read_weights, resolve_weights

if TYPE_CHECKING:  # torch loads only for the torch engine, or when model.net is asked for
    import torch

    from .model import SkinNet

# Above this many pixels an image is processed in overlapping tiles (bounded memory, same result).
TILE_PIXELS = 2048 * 2048
TILE_SIZE = 1024
# Weights that work below full resolution never work on more pixels than this (640x360): larger frames run
# at a lower scale than the weights' own, so a 1080p frame costs what a 720p one does. Faces fill more pixels
# in larger frames, and the masks are upsampled to full size either way. Full-resolution weights (scale 1,
# the seed net) are never capped: seeing every pixel is what they are for. None (or --mask-scale in
# trace/pulse) lifts the cap.
MAX_WORKING_PIXELS = 640 * 360
# ...and never on fewer than this (192x192): small images (thumbnails, face crops, 227x227 close-ups) run
# at a higher scale than the weights' own, up to full resolution. The working scale is a speed knob for
# video; on a small image the detail is what is scarce and the speed is free. A 640x480 frame at scale
# 0.4 (49,152 working pixels) is above the floor, so video at 480p and up is unaffected.
MIN_WORKING_PIXELS = 192 * 192


def select_device(device: str = "auto") -> torch.device:
    """'auto' picks CUDA when present; asking for CUDA where there is none is an error, never a fallback."""
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu":
        return torch.device("cpu")
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceError(f"--device {device} asked for, but no CUDA device is available "
                              f"(torch {torch.__version__}, built {'with' if torch.version.cuda else 'without'} CUDA)")
        return torch.device(device)
    raise DeviceError(f"unknown device {device!r}; use auto, cpu or cuda")


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

    def __post_init__(self) -> None:
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
        return _resize_maps(self.working_probabilities(frames), frames.shape[1:3])

    def working_probabilities(self, frames: np.ndarray) -> np.ndarray:
        """Skin probability (B, h, w) float32 at the working size (:meth:`working_scale`), not upsampled:
        what the pipeline carries, so masks and statistics need not touch full-size float maps."""
        return self._run(self._to_working(frames))

    def _to_working(self, frames: np.ndarray) -> np.ndarray:
        """Frames (B, H, W, 3) resized to the working size (the same array at scale 1)."""
        return _resize_frames(frames, self.working_scale(*frames.shape[1:3]))

    def _run(self, frames: np.ndarray) -> np.ndarray:
        return self._engine().probabilities(frames)  # (B, H, W) float32

    def probabilities_and_activations(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities (B, H, W) and the 32 tanh activation maps (B, 32, h, w), float32.

        The maps are at the network's working size (the frame size times :meth:`working_scale`).
        """
        prob, acts = self.working_probabilities_and_activations(frames)
        return _resize_maps(prob, frames.shape[1:3]), acts

    def working_probabilities_and_activations(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """As :meth:`probabilities_and_activations`, with the probabilities at the working size too."""
        return self._engine().probabilities_and_activations(self._to_working(frames))

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
        if h * w <= TILE_PIXELS:
            return self.working_probabilities(bgr[None])[0]
        small = self._to_working(bgr[None])[0]
        sh, sw = small.shape[:2]
        pad = receptive_radius(self.meta.arch)
        out = np.empty((sh, sw), np.float32)
        for y0 in range(0, sh, TILE_SIZE):
            for x0 in range(0, sw, TILE_SIZE):
                y1, x1 = min(y0 + TILE_SIZE, sh), min(x0 + TILE_SIZE, sw)
                ya, xa = max(y0 - pad, 0), max(x0 - pad, 0)
                yb, xb = min(y1 + pad, sh), min(x1 + pad, sw)
                tile = self._run(np.ascontiguousarray(small[None, ya:yb, xa:xb]))[0]
                out[y0:y1, x0:x1] = tile[y0 - ya : y1 - ya, x0 - xa : x1 - xa]
        return out


def working_scale(height: int, width: int, scale: float, max_pixels: int | None = MAX_WORKING_PIXELS,
                  min_pixels: int | None = MIN_WORKING_PIXELS) -> float:
    """The scale a (height, width) frame is worked on for weights of the given scale: their own, lowered
    where the frame would exceed ``max_pixels`` working pixels, raised (at most to 1) where it would fall
    under ``min_pixels``. Full-resolution weights (scale 1) always work at 1. None lifts a limit."""
    scale = min(scale, 1.0)
    if scale >= 1.0:
        return 1.0
    pixels = height * width
    if max_pixels and pixels * scale * scale > max_pixels:
        return math.sqrt(max_pixels / pixels)
    if min_pixels and pixels * scale * scale < min_pixels:
        return min(1.0, math.sqrt(min_pixels / pixels))
    return scale


def working_size(height: int, width: int, scale: float) -> tuple[int, int]:
    """(h, w) the network sees for a frame of (height, width) at the given scale."""
    if scale >= 1.0:
        return height, width
    return max(1, round(height * scale)), max(1, round(width * scale))


def _resize_frames(frames: np.ndarray, scale: float) -> np.ndarray:
    h, w = frames.shape[1:3]
    sh, sw = working_size(h, w, scale)
    if (sh, sw) == (h, w):
        return frames
    return np.stack([cv2.resize(f, (sw, sh), interpolation=cv2.INTER_AREA) for f in frames])


def _resize_maps(maps: np.ndarray, size: tuple[int, ...]) -> np.ndarray:
    """(B, h, w) maps resized to ``size``; the same array when sizes match."""
    if maps.shape[1:3] == tuple(size[:2]):
        return maps
    return np.stack([upsample_map(m, size) for m in maps])


def upsample_map(prob: np.ndarray, size: tuple[int, ...]) -> np.ndarray:
    """A working-size map (h, w) resized (bilinear) to ``size`` (H, W); the same array when sizes match."""
    h, w = int(size[0]), int(size[1])
    if prob.shape[:2] == (h, w):
        return prob
    return cv2.resize(prob, (w, h), interpolation=cv2.INTER_LINEAR)


def mask_from_working(prob: np.ndarray, size: tuple[int, ...], threshold: float | None = None) -> np.ndarray:
    """uint8 mask (H, W) from a working-size probability map: round(p x 255) resized (bilinear) to ``size``,
    or 0/255 where that 8-bit value reaches ``threshold`` x 255. Resizing 8-bit values instead of floats
    is 3-4x less memory traffic; the result is within 1/255 of resizing the float map."""
    mask = upsample_map(to_mask(prob), size)
    if threshold is None:
        return mask
    level = math.ceil(threshold * 255.0 - 1e-6)  # p >= threshold, at 8-bit precision
    if level <= 0:
        return np.full(mask.shape, 255, np.uint8)
    return cv2.threshold(mask, level - 1, 255, cv2.THRESH_BINARY)[1]


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


def to_mask(prob: np.ndarray, threshold: float | None = None) -> np.ndarray:
    """Probability map(s) -> uint8 mask: round(p * 255), or 0/255 where p >= threshold."""
    if prob.dtype == np.float32 and prob.ndim >= 2 and prob.size >= 4096 and prob.flags.c_contiguous:
        # OpenCV, one pass, same result (round half to even, saturating): 20x faster than numpy at 1080p
        flat = prob.reshape(-1, prob.shape[-1])
        if threshold is None:
            mask = cv2.convertScaleAbs(cv2.threshold(flat, 0.0, 0.0, cv2.THRESH_TOZERO)[1], alpha=255.0)
        else:
            mask = cv2.compare(flat, float(threshold), cv2.CMP_GE)
        return mask.reshape(prob.shape)
    if threshold is None:
        return np.rint(np.clip(prob, 0.0, 1.0) * 255.0).astype(np.uint8)
    return np.where(prob >= threshold, np.uint8(255), np.uint8(0))


def predict(model: SkinModel, image: np.ndarray, threshold: float | None = None) -> np.ndarray:
    """Skin mask (H, W) uint8 for one uint8 BGR (or gray/BGRA) image: probability x 255, or 0/255
    (the same masks as ``skinmask predict``: see :func:`mask_from_working`)."""
    return mask_from_working(model.working_probability_image(image), image.shape[:2], threshold)
