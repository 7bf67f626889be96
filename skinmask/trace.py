"""Per-frame colour signal: a region's share of the frame and its weighted mean R, G, B (the raw input of rPPG).

Regions (where colour is averaged; see :data:`REGIONS`):
- ``face-skin``  the face region (Face Mesh hull minus eyes and mouth) weighted by the skin probability
- ``face``       the face region, every pixel alike
- ``skin``       every pixel weighted by its skin probability (the skin model alone)
- ``whole``      every pixel (baseline)
- ``ycrcb``      the Chai & Ngan YCrCb rule (baseline)

One pass serves several regions: the frames go once through the pipeline (the skin model runs only
when a region needs it; the face is tracked only when a region needs it) and each region's average
comes from the same frame.
"""

from __future__ import annotations

import csv
import json
import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import cv2
import numpy as np

from .errors import NoFaceError
from .inference import SkinModel
from .media import TimedFrame
from .pipeline import FrameResult, run_frames
from .temporal import FrameStream

if TYPE_CHECKING:
    from .corpus import Outcome
    from .inputs import InputItem

TRACE_FIELDS = ("index", "time_s", "skin_fraction", "r", "g", "b")
REGIONS = ("face-skin", "face", "skin", "whole", "ycrcb")
DEFAULT_REGION = "face"  # measured best on UBFC (README): 2.59 bpm MAE vs 2.79 face-skin, 4.34 skin
FACE_REGIONS = frozenset({"face-skin", "face"})
MODEL_REGIONS = frozenset({"face-skin", "skin"})


@dataclass(frozen=True)
class TraceOptions:
    """Where and how pixels are weighted when averaging colour."""

    region: str = DEFAULT_REGION
    face: int | None = None  # which face when there are several: None the largest, else its index (left to right)
    threshold: float | None = None  # None: weight each pixel by its skin probability; else 0/1 at this threshold
    exclude_clipped: bool = True  # drop saturated (any channel >= 250) and near-black (all < 8) pixels
    batch_size: int = 4
    mask_scale: float | None = None  # run the model on frames resized by this factor (None: the weights' own)
    smooth: float = 0.0  # temporal smoothing: each mask = smooth * previous + (1 - smooth) * current


@dataclass(frozen=True)
class TraceRow:
    """One frame of the trace. r, g, b are NaN when no pixel carries weight (no skin, no face)."""

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



@dataclass
class Traced:
    """One frame through the pipeline: the result, each region's row, and the face found (if tracked)."""

    result: FrameResult
    rows: dict[str, TraceRow]
    face: np.ndarray | None  # (468, 3) Face Mesh landmarks in frame pixels, or None


class WholeFrame:
    """A model stand-in when no region needs the skin model: probability 1 everywhere, for free."""

    threshold = 0.5

    def working_probabilities(self, frames: np.ndarray, stream: object = None) -> np.ndarray:
        return np.ones(frames.shape[:3], np.float32)  # (B, H, W); nothing to smooth over time


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


def check_regions(regions: Sequence[str]) -> None:
    for region in regions:
        if region not in REGIONS:
            raise ValueError(f"unknown region {region!r}; expected one of {', '.join(REGIONS)}")


def needs_model(regions: Iterable[str]) -> bool:
    """Whether any of ``regions`` averages by the skin model's probability."""
    return any(r in MODEL_REGIONS for r in regions)


def trace_regions(
    model: SkinModel | None,
    frames: Iterable[np.ndarray | TimedFrame],
    fps: float,
    opts: TraceOptions = TraceOptions(),
    regions: Sequence[str] | None = None,
    name: str | Path | None = None,
) -> Iterator[Traced]:
    """Stream every frame through the shared pipeline once, with a row per region (default: ``opts.region``).

    ``time_s`` is each frame's own time (TimedFrame records, e.g. a video's container times); plain
    arrays are at index / ``fps``.

    ``model`` may be None when no region needs the skin model. Raises NoFaceError (naming ``name``)
    at the end when a face region was asked for and no frame held a face.
    """
    regions = tuple(regions or (opts.region,))
    check_regions(regions)
    if not 0.0 <= opts.smooth < 1.0:
        raise ValueError(f"smooth must be in [0, 1), got {opts.smooth}")
    if needs_model(regions):
        if model is None:
            raise ValueError(f"regions {', '.join(regions)} need a skin model")
        if opts.mask_scale is not None and hasattr(model, "meta"):
            model = replace(model, meta=replace(model.meta, scale=opts.mask_scale), max_working_pixels=None,
                            min_working_pixels=None)
        masker: object = model
    else:
        masker = WholeFrame()
    skin_at = opts.threshold if opts.threshold is not None else getattr(masker, "threshold", 0.5)
    tracker = None
    if FACE_REGIONS.intersection(regions):
        from .face import FaceTracker

        tracker = FaceTracker(face=opts.face, threads=1)  # one thread: the skin model has the others
    faces = frames_seen = 0
    prev: np.ndarray | None = None
    # The colour trace averages the net's own probabilities: the pipeline's motion-adaptive smoothing, which
    # steadies the masks predict writes, measured worse for heart rate (pulse-eval on UBFC, default weights:
    # 4.34 bpm MAE without it, 4.58 with it). The stream still reuses the person prior between refreshes.
    stream = FrameStream(alpha=1.0)
    for res in run_frames(masker, frames, opts.batch_size, fps=fps, stream=stream):  # type: ignore[arg-type]
        frames_seen += 1
        frame = res.frame
        prob = res.prob
        if opts.smooth > 0:  # exponential moving average over frames; restarts when the frame size changes
            if prev is not None and prev.shape == prob.shape:
                prob = opts.smooth * prev + (1.0 - opts.smooth) * prob
            prev = prob
        landmarks = face_mask = box = None
        if tracker is not None:
            found = tracker(frame)
            if found is not None:
                from .face import face_region

                faces += 1
                landmarks = found.points
                face_mask = face_region(landmarks, frame.shape)
                box = _box(landmarks, frame.shape)
        rows = {}
        for region in regions:
            fraction, r, g, b = _region_colour(region, frame, prob, skin_at, face_mask, box, opts)
            rows[region] = TraceRow(res.index, res.time_s, fraction, r, g, b)
        yield Traced(res, rows, landmarks)
    if tracker is not None and frames_seen and not faces:
        raise NoFaceError(f"no face found in any of the {frames_seen} frames; --region skin averages the skin "
                          f"model's pixels without a face", name)


def _box(points: np.ndarray, shape: tuple[int, ...]) -> tuple[slice, slice]:
    """(rows, columns) slices of the frame that hold every landmark (the face region lies inside)."""
    h, w = shape[:2]
    x0, y0 = np.floor(points[:, :2].min(axis=0)).astype(int)
    x1, y1 = np.ceil(points[:, :2].max(axis=0)).astype(int) + 1
    return slice(min(max(y0, 0), h), min(max(y1, 0), h)), slice(min(max(x0, 0), w), min(max(x1, 0), w))


def _region_colour(region: str, frame: np.ndarray, prob: np.ndarray, skin_at: float, face_mask: np.ndarray | None,
                   box: tuple[slice, slice] | None, opts: TraceOptions) -> tuple[float, float, float, float]:
    """(share of the frame in the region, R, G, B) of one region on one frame; face regions are averaged
    on the face's box only (the region is zero elsewhere), which is most of their cost saved."""
    size = prob.size
    if region in FACE_REGIONS:
        if face_mask is None or box is None:  # no face in this frame
            return 0.0, math.nan, math.nan, math.nan
        frame, prob, face_mask = frame[box], prob[box], face_mask[box]
    if region == "whole":
        base, chosen = np.ones(prob.shape, np.float32), np.ones(prob.shape, bool)
    elif region == "ycrcb":
        from .baselines import ycrcb_mask

        chosen = ycrcb_mask(frame)
        base = chosen.astype(np.float32)
    elif region == "skin":
        base, chosen = prob, prob >= skin_at
    elif region == "face":
        base, chosen = face_mask.astype(np.float32), face_mask
    else:  # face-skin
        base, chosen = np.where(face_mask, prob, np.float32(0)), face_mask & (prob >= skin_at)
    r, g, b = weighted_mean_rgb(frame, pixel_weights(frame, base, opts))
    return float(np.count_nonzero(chosen)) / size, r, g, b


def trace_frames(
    model: SkinModel | None, frames: Iterable[np.ndarray | TimedFrame], fps: float, opts: TraceOptions = TraceOptions(),
    name: str | Path | None = None,
) -> Iterator[TraceRow]:
    """Stream one TraceRow per frame of ``opts.region`` through the shared pipeline."""
    for traced in trace_regions(model, frames, fps, opts, name=name):
        yield traced.rows[opts.region]


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


def trace_item(model: SkinModel | None, item: InputItem, opts: TraceFiles,
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
            for row in trace_frames(model, source.frames, source.fps, opts.trace, name=item.path):
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


def trace_items(model: SkinModel | None, items: list[InputItem], opts: TraceFiles,
                on_frames: Callable[[int], None] | None = None, jobs: int | None = None) -> Iterator[Outcome]:
    """:func:`trace_item` over many inputs, ``jobs`` at once (default: one per core), in input order."""
    from .corpus import each

    return each(lambda item, frames: trace_item(model, item, opts, frames), items, on_frames, jobs)


def trace_corpus(items: list[InputItem], opts: TraceFiles, model: SkinModel | None, cluster=None,
                 on_frames: Callable[[int], None] | None = None) -> Iterator[Outcome]:
    """Trace a corpus into files: as :func:`skinmask.runner.predict_corpus` (leftovers swept, finished
    inputs skipped, here or on a :class:`skinmask.cluster.Cluster`), Outcomes in input order."""
    from . import corpus

    if cluster is None:
        process = lambda todo: trace_items(model, todo, opts, on_frames)  # noqa: E731
    else:
        process = cluster.process(trace_items, model, opts, on_frames)
    return corpus.run(items, lambda item: [trace_path(item, opts)], process, opts.skip_existing)
