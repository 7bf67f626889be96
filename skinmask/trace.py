"""Per-frame skin signal: skin fraction and mask-weighted mean R, G, B (the raw input of rPPG methods)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, replace

import cv2
import numpy as np

from .inference import SkinModel
from .media import TimedFrame
from .pipeline import run_frames

TRACE_FIELDS = ("index", "time_s", "skin_fraction", "r", "g", "b")


@dataclass(frozen=True)
class TraceOptions:
    """How skin pixels are weighted when averaging colour."""

    threshold: float | None = None  # None: weight each pixel by its skin probability; else 0/1 at this threshold
    exclude_clipped: bool = True  # drop saturated (any channel >= 250) and near-black (all < 8) pixels
    batch_size: int = 4
    mask_scale: float | None = None  # run the model on frames resized by this factor (None: the weights' own)
    smooth: float = 0.0  # temporal smoothing: each mask = smooth * previous + (1 - smooth) * current


@dataclass(frozen=True)
class TraceRow:
    """One frame of the trace. r, g, b are NaN when no pixel carries weight."""

    index: int
    time_s: float
    skin_fraction: float
    r: float
    g: float
    b: float

    def to_dict(self) -> dict:
        return asdict(self)


def pixel_weights(frame: np.ndarray, prob: np.ndarray, opts: TraceOptions) -> np.ndarray:
    """Per-pixel weights (H, W) float32 for the colour average."""
    w = (prob >= opts.threshold).astype(np.float32) if opts.threshold is not None else prob.astype(np.float32, copy=False)
    if opts.exclude_clipped:
        top = np.maximum(np.maximum(frame[..., 0], frame[..., 1]), frame[..., 2])  # 20x faster than max(axis=2)
        clipped = (top >= 250) | (top < 8)
        w = np.where(clipped, np.float32(0), w)
    return w


def weighted_mean_rgb(frame: np.ndarray, weights: np.ndarray) -> tuple[float, float, float]:
    """Mean R, G, B of a BGR frame under per-pixel weights (NaN when the weights sum to zero)."""
    total = float(weights.sum())
    if total <= 0:
        return (float("nan"),) * 3
    # OpenCV, not a BLAS matmul: no thread pool to oversubscribe beside the inference threads.
    w3 = cv2.merge([weights, weights, weights])
    b, g, r = (v / total for v in cv2.sumElems(cv2.multiply(frame, w3, dtype=cv2.CV_32F))[:3])
    return r, g, b


def trace_frames(
    model: SkinModel, frames: Iterable[np.ndarray | TimedFrame], fps: float, opts: TraceOptions = TraceOptions()
) -> Iterator[TraceRow]:
    """Stream one TraceRow per frame through the shared pipeline.

    ``time_s`` is each frame's own time (TimedFrame records, e.g. a video's container times); plain
    arrays are at index / ``fps``.
    """
    skin_at = opts.threshold if opts.threshold is not None else model.threshold
    if opts.mask_scale is not None and hasattr(model, "meta"):
        model = replace(model, meta=replace(model.meta, scale=opts.mask_scale), max_working_pixels=None,
                        min_working_pixels=None)
    if not 0.0 <= opts.smooth < 1.0:
        raise ValueError(f"smooth must be in [0, 1), got {opts.smooth}")
    prev: np.ndarray | None = None
    for res in run_frames(model, frames, opts.batch_size, fps=fps):
        prob = res.prob
        if opts.smooth > 0:  # exponential moving average over frames; restarts when the frame size changes
            if prev is not None and prev.shape == prob.shape:
                prob = opts.smooth * prev + (1.0 - opts.smooth) * prob
            prev = prob
        w = pixel_weights(res.frame, prob, opts)
        r, g, b = weighted_mean_rgb(res.frame, w)
        fraction = float(np.count_nonzero(prob >= skin_at)) / prob.size
        yield TraceRow(res.index, res.time_s, fraction, r, g, b)
