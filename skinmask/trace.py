"""Per-frame skin signal: skin fraction and mask-weighted mean R, G, B (the raw input of rPPG methods)."""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import cv2
import numpy as np

from .inference import SkinModel
from .media import TimedFrame
from .pipeline import run_frames

if TYPE_CHECKING:
    from .corpus import Outcome
    from .inputs import InputItem

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

    def csv_fields(self) -> list[object]:
        return [self.index, f"{self.time_s:.6f}", f"{self.skin_fraction:.6f}", f"{self.r:.4f}", f"{self.g:.4f}",
                f"{self.b:.4f}"]

    def json_line(self) -> str:
        # NaN (no skin pixel) is not JSON: strict parsers reject it, so it becomes null
        fields = {k: (None if isinstance(v, float) and v != v else v) for k, v in self.to_dict().items()}
        return json.dumps(fields, allow_nan=False)


class RowWriter:
    """Trace rows onto a text stream: CSV with a header, or JSON lines."""

    def __init__(self, stream: TextIO, json_lines: bool = False) -> None:
        self.stream = stream
        self.csv = None if json_lines else csv.writer(stream, lineterminator="\n")
        if self.csv is not None:
            self.csv.writerow(TRACE_FIELDS)

    def write(self, row: TraceRow) -> None:
        if self.csv is not None:
            self.csv.writerow(row.csv_fields())
        else:
            self.stream.write(row.json_line() + "\n")


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


# -- traces of many inputs into files ------------------------------------------------------------


@dataclass(frozen=True)
class TraceFiles:
    """Where trace_item writes: <output_dir>/<rel>.csv (or .jsonl), and how."""

    output_dir: Path
    json_lines: bool = False
    overwrite: bool = False
    skip_existing: bool = False  # skip inputs whose trace exists (trace_corpus); replace nothing else
    trace: TraceOptions = field(default_factory=TraceOptions)


@dataclass
class TraceRecord:
    """What one trace file holds."""

    input: str
    output: str
    frames: int = 0
    seconds: float = 0.0
    complete: bool = True
    error: str | None = None


def trace_path(item: InputItem, opts: TraceFiles) -> Path:
    return opts.output_dir / (item.rel.as_posix() + (".jsonl" if opts.json_lines else ".csv"))


def trace_item(model: SkinModel, item: InputItem, opts: TraceFiles,
               on_frames: Callable[[int], None] | None = None) -> TraceRecord:
    """Trace one video (or image) into its file, written under a temporary name and renamed when complete.

    A video that ends early keeps the rows of the frames it had, marked incomplete (as predict does).
    """
    from .atomic import atomic_path
    from .errors import IncompleteVideoError, OutputError
    from .runner import check_output
    from .sources import open_source

    start = time.perf_counter()
    out = trace_path(item, opts)
    check_output(out, item, opts.overwrite or opts.skip_existing)
    source = open_source(str(item.path), fps=1.0)
    record = TraceRecord(input=str(item.path), output=str(out))
    try:
        with atomic_path(out) as tmp, open(tmp, "w", encoding="utf-8", newline="") as stream:
            writer = RowWriter(stream, opts.json_lines)
            for row in trace_frames(model, source.frames, source.fps, opts.trace):
                writer.write(row)
                record.frames += 1
                if on_frames is not None:
                    on_frames(1)
    except OSError as exc:
        raise OutputError(f"cannot write ({exc.strerror or exc})", out) from None
    try:
        source.check_complete()
    except IncompleteVideoError as exc:
        record.complete, record.error = False, str(exc)
    record.seconds = round(time.perf_counter() - start, 4)
    return record


def trace_items(model: SkinModel, items: list[InputItem], opts: TraceFiles,
                on_frames: Callable[[int], None] | None = None, jobs: int | None = None) -> Iterator[Outcome]:
    """:func:`trace_item` over many inputs, ``jobs`` at once (default: one per core), in input order."""
    from .corpus import each

    return each(lambda item, frames: trace_item(model, item, opts, frames), items, on_frames, jobs)


def trace_corpus(items: list[InputItem], opts: TraceFiles, model: SkinModel, cluster=None,
                 on_frames: Callable[[int], None] | None = None) -> Iterator[Outcome]:
    """Trace a corpus into files: as :func:`skinmask.runner.predict_corpus` (leftovers swept, finished
    inputs skipped, here or on a :class:`skinmask.cluster.Cluster`), Outcomes in input order."""
    from . import corpus

    if cluster is None:
        process = lambda todo: trace_items(model, todo, opts, on_frames)  # noqa: E731
    else:
        process = cluster.process(trace_items, model, opts, on_frames)
    return corpus.run(items, lambda item: [trace_path(item, opts)], process, opts.skip_existing)
