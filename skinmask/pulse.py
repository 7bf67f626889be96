"""Heart rate from a face video through the skin mask: ``trace`` rows -> rPPG windows -> overall bpm.

    from skinmask.inference import load_model
    from skinmask.pulse import PulseOptions, PulseRun
    run = PulseRun(load_model(), "face.mp4", PulseOptions(method="pos"))
    for window in run:            # streamed: each 10 s window as soon as its last frame is decoded
        print(window.bpm)
    print(run.overall_bpm)

The per-frame colour comes from :func:`skinmask.trace.trace_frames` (the same pipeline and the same
mask-weighted mean RGB as ``skinmask trace``); this module only adds the windows, the optional
ground truth and two mask-free baselines for evaluation (whole frame, YCrCb rule).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from .errors import InputError, SkinmaskError
from .groundtruth import GroundTruth, check_length, read_ubfc, window_bpm
from .rppg import TRACK_BPM_PER_S, PulseEstimator, PulseWindow, overall_bpm
from .trace import TraceOptions, trace_frames

MASKS = ("skinmask", "whole", "ycrcb")
# Each pixel weighted by its skin probability. On UBFC (benchmarks/pulse_variants.py, shipped model, tracking on)
# 4.5 bpm MAE vs 8.8 for a binary mask at p >= 0.5 (without tracking 8.1 vs 10.6); 0.3 and 0.7 do worse too.
PULSE_TRACE = TraceOptions(threshold=None)


@dataclass(frozen=True)
class PulseOptions:
    """rPPG settings: method, window and step (seconds), detrending of the pulse signal."""

    method: str = "pos"
    window_s: float = 10.0
    step_s: float = 1.0
    detrend: str = "smooth"  # measured on UBFC: 1-2 bpm lower MAE than none/linear for every mask (POS)
    track: float = TRACK_BPM_PER_S  # heart-rate tracking across windows, bpm per second (0: each window alone)


@dataclass(frozen=True)
class ScoredWindow:
    """A window with the ground truth's bpm over the same frames (None where the GT has no samples)."""

    window: PulseWindow
    gt_bpm: float | None

    def to_dict(self) -> dict[str, object]:
        d = self.window.to_dict()
        d["gt_bpm"] = None if self.gt_bpm is None else round(self.gt_bpm, 2)
        err = self.error
        d["error"] = None if err is None else round(err, 2)
        return d

    @property
    def error(self) -> float | None:
        if self.window.bpm is None or self.gt_bpm is None:
            return None
        return self.window.bpm - self.gt_bpm


class RuleMasker:
    """A model stand-in for baselines: 'whole' weights every pixel, 'ycrcb' the Chai & Ngan rule pixels."""

    threshold = 0.5

    def __init__(self, kind: str) -> None:
        if kind not in ("whole", "ycrcb"):
            raise ValueError(f"unknown baseline mask {kind!r}")
        self.kind = kind

    def working_probabilities(self, frames: np.ndarray, stream: object = None) -> np.ndarray:
        """(B, H, W) 0/1 weights at the frames' own size (the rules need no working scale; a rule's mask is
        not smoothed over time, so ``stream`` is ignored)."""
        if self.kind == "whole":
            return np.ones(frames.shape[:3], np.float32)
        from .baselines import ycrcb_mask

        return np.stack([ycrcb_mask(f) for f in frames]).astype(np.float32)


class PulseRun:
    """One video through trace and rPPG. Iterate for windows (streamed); then read the summary attributes.

    ``model`` is a loaded SkinModel or a :class:`RuleMasker`. With ``gt`` (a UBFC ground-truth file or a
    GroundTruth) the windows come as :class:`ScoredWindow`. ``keep_trace`` keeps the (N, 3) colour
    trace for plotting (3 floats a frame); otherwise memory is one window, however long the video.
    """

    def __init__(
        self,
        model: object,
        video: str | Path,
        opts: PulseOptions = PulseOptions(),
        trace_opts: TraceOptions = PULSE_TRACE,
        gt: str | Path | GroundTruth | None = None,
        keep_trace: bool = False,
    ) -> None:
        self.model, self.video, self.opts, self.trace_opts = model, Path(video), opts, trace_opts
        self.gt = read_ubfc(gt) if isinstance(gt, (str, Path)) else gt
        self.keep_trace = keep_trace
        self.fps = 0.0
        self.frames = 0
        self.windows: list[PulseWindow] = []
        self.scored: list[ScoredWindow] = []
        self._rgb: list[tuple[float, float, float]] = []
        self._skin: list[float] = []

    @property
    def overall_bpm(self) -> float | None:
        return overall_bpm(self.windows)

    @property
    def rgb(self) -> np.ndarray:
        """(N, 3) colour trace, only with ``keep_trace``."""
        return np.asarray(self._rgb, np.float64).reshape(-1, 3)

    @property
    def skin_fraction(self) -> np.ndarray:
        return np.asarray(self._skin, np.float64)

    def __iter__(self) -> Iterator[PulseWindow | ScoredWindow]:
        from .media import VideoReader

        reader = VideoReader(self.video)
        self.fps = reader.info.fps
        if self.gt is not None and reader.info.declared_frames:
            check_length(self.gt, reader.info.declared_frames)  # fail before the slow part
        try:
            est = PulseEstimator(self.fps, self.opts.method, self.opts.window_s, self.opts.step_s, self.opts.detrend,
                                 track_bpm_per_s=self.opts.track)
        except ValueError as exc:
            reader.close()
            raise InputError(str(exc), self.video) from None
        rows = trace_frames(self.model, iter(reader), self.fps, self.trace_opts)  # type: ignore[arg-type]
        for row in rows:
            self.frames += 1
            if self.keep_trace:
                self._rgb.append((row.r, row.g, row.b))
                self._skin.append(row.skin_fraction)
            w = est.push((row.r, row.g, row.b))
            if w is not None:
                yield self._emit(w)
        reader.check_complete()
        if self.gt is not None:
            check_length(self.gt, self.frames)
        for w in est.finish():
            yield self._emit(w)

    def _emit(self, w: PulseWindow) -> PulseWindow | ScoredWindow:
        self.windows.append(w)
        if self.gt is None:
            return w
        sw = ScoredWindow(w, window_bpm(self.gt, w.start_frame, w.end_frame, self.fps))
        self.scored.append(sw)
        return sw


# -- evaluation --------------------------------------------------------------------------------


@dataclass
class Scores:
    """Window-level agreement with the ground truth: MAE, RMSE (bpm), Pearson r, and counts."""

    n: int
    missing: int
    mae: float
    rmse: float
    r: float

    def to_dict(self) -> dict[str, object]:
        return {k: (None if isinstance(v, float) and math.isnan(v) else (round(v, 3) if isinstance(v, float) else v))
                for k, v in self.__dict__.items()}


def score(windows: list[ScoredWindow]) -> Scores:
    """MAE / RMSE / Pearson r over windows that have both a bpm and a GT bpm (``missing``: no bpm)."""
    pairs = np.array([(w.window.bpm, w.gt_bpm) for w in windows if w.error is not None], np.float64).reshape(-1, 2)
    missing = sum(1 for w in windows if w.gt_bpm is not None and w.window.bpm is None)
    if len(pairs) == 0:
        return Scores(0, missing, math.nan, math.nan, math.nan)
    err = pairs[:, 0] - pairs[:, 1]
    r = math.nan
    if len(pairs) > 2 and pairs[:, 0].std() > 0 and pairs[:, 1].std() > 0:
        from scipy.stats import pearsonr

        r = float(pearsonr(pairs[:, 0], pairs[:, 1])[0])
    return Scores(len(pairs), missing, float(np.abs(err).mean()), float(np.sqrt((err**2).mean())), r)


@dataclass(frozen=True)
class Clip:
    name: str
    video: Path
    gt: Path


def find_clips(folder: str | Path) -> list[Clip]:
    """Clips under ``folder``: every sub-folder holding a video (vid.*) and ground_truth.txt or gtdump.xmp."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError("not a folder of clips (expected subject*/vid.mp4 + ground_truth.txt)", folder)
    clips = []
    for sub in sorted(p for p in folder.rglob("*") if p.is_dir()) + [folder]:
        gts = [sub / n for n in ("ground_truth.txt", "gtdump.xmp") if (sub / n).is_file()]
        vids = sorted(p for p in sub.glob("vid.*") if p.suffix.lower() in (".mp4", ".avi", ".mkv", ".mov", ".webm"))
        if gts and vids:
            clips.append(Clip(str(sub.relative_to(folder)) if sub != folder else sub.name, vids[0], gts[0]))
    if not clips:
        raise InputError("no clips found (expected sub-folders with vid.mp4 or vid.avi and ground_truth.txt)", folder)
    return sorted(clips, key=_natural_key)


def _natural_key(clip: Clip) -> tuple:
    import re

    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", clip.name))


@dataclass
class ClipResult:
    clip: Clip
    mask: str
    windows: list[ScoredWindow] = field(default_factory=list)

    @property
    def scores(self) -> Scores:
        return score(self.windows)


def evaluate_clip(
    clip: Clip, mask: str, model: object, opts: PulseOptions, trace_opts: TraceOptions
) -> ClipResult:
    """All windows of one clip under one mask source ('skinmask' uses ``model``)."""
    masker = model if mask == "skinmask" else RuleMasker(mask)
    topts = trace_opts if mask == "skinmask" else replace(trace_opts, threshold=None)
    run = PulseRun(masker, clip.video, opts, topts, gt=clip.gt)
    return ClipResult(clip, mask, [w for w in run if isinstance(w, ScoredWindow)])


def evaluate_clips(
    model: object, pairs: list[tuple[Clip, str]], opts: PulseOptions, trace_opts: TraceOptions
) -> Iterator[tuple[Clip, str, ClipResult | None, str | None]]:
    """:func:`evaluate_clip` for each (clip, mask): ``(clip, mask, result, None)`` or ``(clip, mask, None,
    error line)``. After a clip fails, its other masks are not tried (the clip is bad, not the mask)."""
    failed: set[str] = set()
    for clip, mask in pairs:
        if clip.name in failed:
            continue
        try:
            yield clip, mask, evaluate_clip(clip, mask, model, opts, trace_opts), None
        except SkinmaskError as exc:
            failed.add(clip.name)
            yield clip, mask, None, str(exc)


def evaluate_corpus(
    model: object, pairs: list[tuple[Clip, str]], opts: PulseOptions, trace_opts: TraceOptions, cluster: Any = None
) -> Iterator[tuple[Clip, str, ClipResult | None, str | None]]:
    """:func:`evaluate_clips` here, or with ``cluster`` (a :class:`skinmask.cluster.Cluster`) one task per
    (clip, mask) on its workers; results in ``pairs`` order either way."""
    if cluster is None:
        yield from evaluate_clips(model, pairs, opts, trace_opts)
        return
    calls = [([pair], opts, trace_opts) for pair in pairs]
    failed: set[str] = set()  # as in evaluate_clips: after a clip fails, its later masks are dropped
    for (clip, mask), (results, error) in zip(pairs, cluster.map_with_model(evaluate_clips, model, calls)):
        for row in results if error is None else [(clip, mask, None, f"{clip.video}: {error}")]:
            if clip.name not in failed:
                yield row
            if row[3] is not None:
                failed.add(clip.name)
