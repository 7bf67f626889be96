"""Shipped third-party networks (Google MediaPipe's, converted to ONNX): one registry, one loader, one runner.

Each network is a file in ``models/`` (``skinmask/_models`` when installed) with its provenance in
``models/README.md`` and its SHA-256 here, checked every time the file is loaded. Files are made by
``scripts/convert_mediapipe.py``; nothing is downloaded and neither mediapipe nor tensorflow is imported at run
time. Sessions are cached per process (one per network and thread count), so every caller shares one.

    net = get_net("selfie_segmentation", threads=1)
    (mask,) = net.run(x)  # x: float32 (N, 256, 256, 3)
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path
import numpy as np

from .errors import WeightsError


@dataclass(frozen=True)
class NetSpec:
    """A shipped network: its file, checksum and input (float32 NHWC, RGB, values in ``input_range``)."""

    name: str
    file: str
    sha256: str
    input_size: tuple[int, int]  # (height, width)
    input_range: tuple[float, float]


NETS: dict[str, NetSpec] = {spec.name: spec for spec in (
    NetSpec("selfie_segmentation", "selfie_segmentation.onnx",
            "4a14576fc682e2a756f404c1912950947fab52efd9601e6f68789cde1b81e9fb", (256, 256), (0.0, 1.0)),
    NetSpec("face_detection_short_range", "face_detection_short_range.onnx",
            "1d825eb694afa539672bb73d19e096ac32e14404e32d78d367eb92fcb9834964", (128, 128), (-1.0, 1.0)),
    NetSpec("face_landmark", "face_landmark.onnx",
            "75ea860708ad7e279ef6bad37e2890327db6f0a0475d68b028647e3b11d0df11", (192, 192), (0.0, 1.0)),
)}


def net_path(name: str) -> Path:
    """Where the shipped file of network ``name`` lives."""
    from .weights import shipped_models_dir

    return shipped_models_dir() / NETS[name].file


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file, hex."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


class OnnxNet:
    """One shipped network in an onnxruntime CPU session; ``run`` takes the input batch, gives all outputs."""

    def __init__(self, spec: NetSpec, path: str | Path | None = None, threads: int | None = None) -> None:
        import onnxruntime as ort

        from .engines import default_threads, session_options

        self.spec = spec
        self.path = Path(path) if path is not None else net_path(spec.name)
        if not self.path.is_file():
            raise WeightsError(f"the shipped {spec.name} network is missing", self.path)
        data = self.path.read_bytes()
        got = hashlib.sha256(data).hexdigest()
        if got != spec.sha256:
            raise WeightsError(f"{spec.name} network is damaged or not the shipped one (sha256 {got[:16]}..., "
                               f"expected {spec.sha256[:16]}...); reinstall skinmask or re-make it with "
                               "scripts/convert_mediapipe.py", self.path)
        self.threads = threads or default_threads()
        self.session = ort.InferenceSession(data, session_options(self.threads), providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = [o.name for o in self.session.get_outputs()]

    def run(self, x: np.ndarray) -> list[np.ndarray]:
        """float32 input (N, H, W, 3) at ``spec.input_size`` -> the network's outputs, each with N first."""
        h, w = self.spec.input_size
        if x.ndim != 4 or x.shape[1:] != (h, w, 3):
            raise ValueError(f"{self.spec.name} takes (N, {h}, {w}, 3), not {x.shape}")
        return self.session.run(self.output_names, {self.input_name: np.ascontiguousarray(x, np.float32)})


_cache: dict[tuple[str, int | None], OnnxNet] = {}
_lock = threading.Lock()


def get_net(name: str, threads: int | None = None) -> OnnxNet:
    """The process's session for shipped network ``name`` (built and checksum-checked on first use)."""
    if name not in NETS:
        raise KeyError(f"unknown network {name!r}; shipped: {', '.join(NETS)}")
    with _lock:
        net = _cache.get((name, threads))
        if net is None:
            net = _cache[(name, threads)] = OnnxNet(NETS[name], threads=threads)
        return net


@dataclass(frozen=True)
class Roi:
    """A rotated rectangle of an image, in pixels: centre, size, rotation (radians, clockwise on screen)."""

    cx: float
    cy: float
    width: float
    height: float
    rotation: float = 0.0

    @classmethod
    def whole(cls, shape: tuple[int, ...]) -> "Roi":
        return cls(shape[1] / 2.0, shape[0] / 2.0, float(shape[1]), float(shape[0]))

    def corners(self) -> np.ndarray:
        """(4, 2) float32 corners as cv2.boxPoints orders them (bottom-left, top-left, top-right, bottom-right)."""
        import cv2

        return cv2.boxPoints(((self.cx, self.cy), (self.width, self.height), np.degrees(self.rotation))).astype(np.float32)

    def to_crop(self, out_size: tuple[int, int]) -> np.ndarray:
        """3x3 matrix taking image pixels to crop pixels (a crop of size out_size (h, w))."""
        import cv2

        h, w = out_size
        dst = np.float32([[0, h], [0, 0], [w, 0], [w, h]])
        return cv2.getPerspectiveTransform(self.corners(), dst)


def crop(image: np.ndarray, roi: Roi, out_size: tuple[int, int], border: str = "zero") -> np.ndarray:
    """``roi`` of ``image`` warped to out_size (h, w), bilinear: MediaPipe's ImageToTensor on CPU.

    ``border``: what lies outside the image, "zero" or "replicate" (its edge pixels).

    The ROI's corners map to the crop's corners (no half-pixel shift), exactly as MediaPipe's OpenCV
    converter does; this matters: the nets were trained on what that converter gives.
    """
    import cv2

    h, w = out_size
    mode = {"zero": cv2.BORDER_CONSTANT, "replicate": cv2.BORDER_REPLICATE}[border]
    return cv2.warpPerspective(image, roi.to_crop(out_size), (w, h), flags=cv2.INTER_LINEAR, borderMode=mode)


def to_input(rgb: np.ndarray, spec: NetSpec) -> np.ndarray:
    """uint8 RGB (N, H, W, 3) at the input size -> float32 in the network's value range."""
    lo, hi = spec.input_range
    return rgb.astype(np.float32) * np.float32((hi - lo) / 255.0) + np.float32(lo)


__all__ = ["NETS", "NetSpec", "OnnxNet", "Roi", "crop", "file_sha256", "get_net", "net_path", "to_input"]
