"""Heart rate from a face video: ``trace`` rows -> rPPG windows -> overall bpm.

    from skinmask.inference import load_model
    from skinmask.pulse import PulseOptions, PulseRun
    run = PulseRun(load_model(), "face.mp4", PulseOptions(method="pos"))
    for window in run:            # streamed: each 10 s window as soon as its last frame is decoded
        print(window.bpm)
    print(run.overall_bpm)

The per-frame colour comes from :func:`skinmask.trace.trace_regions` (the same pipeline, regions and
weighted mean RGB as ``skinmask trace``), with each frame's presentation time; this module adds the
windows (cut by time on a uniform grid, :class:`skinmask.rppg.PulseEstimator`), the optional ground
truth, the waveform (``bvp``) and the pulse map. Several regions can be measured in one pass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from .errors import InputError, SkinmaskError
from .groundtruth import GroundTruth, check_length, read_ground_truth, window_bpm, window_bpm_at
from .rppg import TRACK_BPM_PER_S, PulseEstimator, PulseWindow, grid_rate, overall_bpm
from .trace import REGIONS, TraceOptions, needs_model, trace_regions

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


@dataclass
class RegionPulse:
    """One region's windows in a run (``scored`` only with ground truth)."""

    region: str
    estimator: PulseEstimator
    windows: list[PulseWindow] = field(default_factory=list)
    scored: list[ScoredWindow] = field(default_factory=list)

    @property
    def overall_bpm(self) -> float | None:
        return overall_bpm(self.windows)


class PulseRun:
    """One video through trace and rPPG. Iterate for windows (streamed); then read the summary attributes.

    ``model`` is a loaded SkinModel (None when no region needs it). ``regions`` (default: the trace
    options' region) are measured in one pass; iteration yields the first region's windows, and
    ``by_region`` holds every region's. With ``gt`` (a ground-truth file or a GroundTruth) the windows
    come as :class:`ScoredWindow`. ``keep_trace`` keeps the first region's (N, 3) colour trace and the
    frame times for plotting (4 floats a frame); ``bvp`` writes the first region's combined pulse
    signal to that CSV as it goes (``time_s,bvp``); ``pulse_map`` accumulates a
    :class:`skinmask.pulsemap.PulseMap` of the frame. Otherwise memory is one window, however long the video.
    """

    def __init__(
        self,
        model: object | None,
        video: str | Path,
        opts: PulseOptions = PulseOptions(),
        trace_opts: TraceOptions = PULSE_TRACE,
        gt: str | Path | GroundTruth | None = None,
        keep_trace: bool = False,
        regions: Sequence[str] | None = None,
        bvp: str | Path | None = None,
        pulse_map: bool = False,
    ) -> None:
        self.model, self.video, self.opts, self.trace_opts = model, Path(video), opts, trace_opts
        self.gt = read_ground_truth(gt) if isinstance(gt, (str, Path)) else gt
        self.regions = tuple(dict.fromkeys(regions or (trace_opts.region,)))
        for r in self.regions:
            if r not in REGIONS:
                raise ValueError(f"unknown region {r!r}; expected one of {', '.join(REGIONS)}")
        if needs_model(self.regions) and model is None:
            raise ValueError("the skin regions need a model")
        self.keep_trace = keep_trace
        self.bvp_path = None if bvp is None else Path(bvp)
        self.want_map = pulse_map
        self.map = None
        self.fps = 0.0  # the container's nominal frame rate
        self.rate = 0.0  # the uniform grid's rate
        self.frames = 0
        self.by_region: dict[str, RegionPulse] = {}
        self._rgb: list[tuple[float, float, float]] = []
        self._times: list[float] = []
        self._skin: list[float] = []

    @property
    def primary(self) -> RegionPulse:
        return self.by_region[self.regions[0]]

    @property
    def windows(self) -> list[PulseWindow]:
        return self.primary.windows if self.by_region else []

    @property
    def scored(self) -> list[ScoredWindow]:
        return self.primary.scored if self.by_region else []

    @property
    def overall_bpm(self) -> float | None:
        return overall_bpm(self.windows)

    @property
    def rgb(self) -> np.ndarray:
        """(N, 3) colour trace of the first region, only with ``keep_trace``."""
        return np.asarray(self._rgb, np.float64).reshape(-1, 3)

    @property
    def times(self) -> np.ndarray:
        """(N,) frame times, seconds, only with ``keep_trace``."""
        return np.asarray(self._times, np.float64)

    @property
    def skin_fraction(self) -> np.ndarray:
        return np.asarray(self._skin, np.float64)

    def __iter__(self) -> Iterator[PulseWindow | ScoredWindow]:
        from contextlib import ExitStack

        from .media import VideoReader

        reader = VideoReader(self.video)
        self.fps = reader.info.fps
        self.rate = grid_rate(self.fps)
        if self.gt is not None and reader.info.declared_frames:
            check_length(self.gt, reader.info.declared_frames)  # fail before the slow part
        try:
            for region in self.regions:
                est = PulseEstimator(self.rate, self.opts.method, self.opts.window_s, self.opts.step_s,
                                     self.opts.detrend, track_bpm_per_s=self.opts.track,
                                     keep_bvp=self.bvp_path is not None and region == self.regions[0])
                self.by_region[region] = RegionPulse(region, est)
        except ValueError as exc:
            reader.close()
            raise InputError(str(exc), self.video) from None
        if self.want_map:
            from .pulsemap import PulseMap

            self.map = PulseMap(self.primary.estimator)
        with ExitStack() as stack:
            bvp_out = stack.enter_context(_BvpWriter(self.bvp_path)) if self.bvp_path is not None else None
            traced = trace_regions(self.model, reader.timed(), self.fps, self.trace_opts,  # type: ignore[arg-type]
                                   self.regions, name=self.video)
            primary = self.regions[0]
            for item in traced:
                self.frames += 1
                if self.keep_trace:
                    row = item.rows[primary]
                    self._rgb.append((row.r, row.g, row.b))
                    self._times.append(row.time_s)
                    self._skin.append(row.skin_fraction)
                for region, rp in self.by_region.items():
                    row = item.rows[region]
                    for w in rp.estimator.push((row.r, row.g, row.b), row.time_s):
                        scored = self._emit(rp, w)
                        if region == primary:
                            yield scored
                if self.map is not None:  # after the estimator: the window a frame completes brings its rate
                    self.map.push(item.result.frame, item.result.time_s, item.face)
                if bvp_out is not None:
                    bvp_out.write(self.primary.estimator.pop_bvp())
            reader.check_complete()
            if self.gt is not None:
                check_length(self.gt, self.frames)
            for region, rp in self.by_region.items():
                for w in rp.estimator.finish():
                    scored = self._emit(rp, w)
                    if region == primary:
                        yield scored
            if self.map is not None:
                self.map.finish()
            if bvp_out is not None:
                bvp_out.write(self.primary.estimator.pop_bvp())
                bvp_out.commit()
        if self.gt is not None and self.gt.by_time and self.windows and not any(
                s.gt_bpm is not None for s in self.scored):
            raise InputError(f"the ground truth ({self.gt.times[0]:.1f}-{self.gt.times[-1]:.1f} s) covers none of "
                             f"the video's windows ({self.windows[0].start_s:.1f}-{self.windows[-1].end_s:.1f} s)",
                             self.gt.path)

    def _emit(self, rp: RegionPulse, w: PulseWindow) -> PulseWindow | ScoredWindow:
        rp.windows.append(w)
        if self.map is not None and rp is self.primary:
            self.map.add_window(w)
        if self.gt is None:
            return w
        if self.gt.by_time:
            gt_bpm = window_bpm_at(self.gt, w.start_s, w.end_s)
        else:
            gt_bpm = window_bpm(self.gt, w.start_frame, w.end_frame, self.fps)
        sw = ScoredWindow(w, gt_bpm)
        rp.scored.append(sw)
        return sw


class _BvpWriter:
    """``time_s,bvp`` rows streamed to a temporary file beside the output, renamed into place on commit."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._tmp: Path | None = None
        self._fh = None

    def __enter__(self) -> "_BvpWriter":
        from .atomic import temp_beside
        from .errors import OutputError

        try:
            self._tmp = temp_beside(self.path)
            self._fh = open(self._tmp, "w", encoding="ascii", newline="\n")
            self._fh.write("time_s,bvp\n")
        except OSError as exc:
            self._close()
            raise OutputError(f"cannot write ({exc.strerror or exc})", self.path) from None
        return self

    def write(self, samples: list[tuple[float, float]]) -> None:
        assert self._fh is not None
        for t, v in samples:
            self._fh.write(f"{t:.6f},{v:.6f}\n" if math.isfinite(v) else f"{t:.6f},nan\n")
        if samples:
            self._fh.flush()

    def commit(self) -> None:
        from .atomic import commit
        from .errors import OutputError

        assert self._fh is not None and self._tmp is not None
        try:
            self._fh.close()
            commit(self._tmp, self.path)
        except OSError as exc:
            raise OutputError(f"cannot write ({exc.strerror or exc})", self.path) from None
        self._fh, self._tmp = None, None

    def _close(self) -> None:
        from .atomic import discard

        if self._fh is not None:
            self._fh.close()
            self._fh = None
        if self._tmp is not None:
            discard(self._tmp, self.path)
            self._tmp = None

    def __exit__(self, *exc: object) -> None:
        self._close()


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
    """Clips under ``folder``: every sub-folder holding a video (vid.*) and ground_truth.txt, gtdump.xmp or
    ground_truth.csv (``time_s,ppg``)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError("not a folder of clips (expected subject*/vid.mp4 + ground_truth.txt)", folder)
    clips = []
    for sub in sorted(p for p in folder.rglob("*") if p.is_dir()) + [folder]:
        gts = [sub / n for n in ("ground_truth.txt", "gtdump.xmp", "ground_truth.csv") if (sub / n).is_file()]
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
    region: str
    windows: list[ScoredWindow] = field(default_factory=list)

    @property
    def scores(self) -> Scores:
        return score(self.windows)


def evaluate_clip(
    clip: Clip, regions: Sequence[str], model: object | None, opts: PulseOptions, trace_opts: TraceOptions
) -> dict[str, ClipResult]:
    """All windows of one clip for each region, from one pass over the video."""
    run = PulseRun(model, clip.video, opts, trace_opts, gt=clip.gt, regions=regions)
    for _ in run:
        pass
    return {r: ClipResult(clip, r, list(run.by_region[r].scored)) for r in run.regions}


def evaluate_clips(
    model: object | None, clips: list[Clip], regions: Sequence[str], opts: PulseOptions, trace_opts: TraceOptions
) -> Iterator[tuple[Clip, dict[str, ClipResult] | None, str | None]]:
    """:func:`evaluate_clip` for each clip: ``(clip, results by region, None)`` or ``(clip, None, error line)``."""
    for clip in clips:
        try:
            yield clip, evaluate_clip(clip, regions, model, opts, trace_opts), None
        except SkinmaskError as exc:
            yield clip, None, str(exc)


def evaluate_corpus(
    model: object | None, clips: list[Clip], regions: Sequence[str], opts: PulseOptions, trace_opts: TraceOptions,
    cluster: Any = None,
) -> Iterator[tuple[Clip, dict[str, ClipResult] | None, str | None]]:
    """:func:`evaluate_clips` here, or with ``cluster`` (a :class:`skinmask.cluster.Cluster`) one task per clip
    (all regions in its one pass) on its workers; results in ``clips`` order either way."""
    if cluster is None:
        yield from evaluate_clips(model, clips, regions, opts, trace_opts)
        return
    calls = [([clip], regions, opts, trace_opts) for clip in clips]
    for clip, (results, error) in zip(clips, cluster.map_with_model(evaluate_clips, model, calls)):
        yield from (results if error is None else [(clip, None, f"{clip.video}: {error}")])
