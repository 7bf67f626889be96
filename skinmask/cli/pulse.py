"""`skinmask pulse` and `skinmask pulse-eval`: heart rate from face video through the skin mask."""

from __future__ import annotations

import json
import math
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from . import common
from .common import ClusterOpt, DebugOpt, DeviceOpt, EngineOpt, QuietOpt, WeightsOpt


class Method(str, Enum):
    pos = "pos"
    chrom = "chrom"
    green = "green"


class Detrend(str, Enum):
    none = "none"
    linear = "linear"
    smooth = "smooth"


class Mask(str, Enum):
    skinmask = "skinmask"
    whole = "whole"
    ycrcb = "ycrcb"


MethodOpt = Annotated[Method, typer.Option("--method", "-m", help="rPPG method: pos (Wang 2017), chrom (de Haan "
                                           "2013) or green (Verkruysse 2008).")]
WindowOpt = Annotated[float, typer.Option("--window", min=2.0, help="Window length, seconds.")]
StepOpt = Annotated[float, typer.Option("--step", min=0.04, help="Step between window starts, seconds.")]
DetrendOpt = Annotated[Detrend, typer.Option("--detrend", help="Drift removal before the 0.7-3.5 Hz band-pass: "
                                             "none, linear, smooth (Tarvainen smoothness priors).")]
ThresholdOpt = Annotated[str, typer.Option(
    "--threshold", "-t", help="'soft': weight every pixel by its skin probability (the measured choice, README); "
    "a number or 'auto' (the weights' threshold): average only pixels at or above it.")]
KeepClippedOpt = Annotated[bool, typer.Option("--keep-clipped", help="Also average saturated and near-black pixels.")]
MaskScaleOpt = Annotated[Optional[float], typer.Option(
    "--mask-scale", min=0.05, max=1.0, help="Run the model on frames resized by this factor (smaller is "
    "faster); the colour is still averaged at full size. [default: the weights' own working scale]",
    show_default=False)]
TRACK_DEFAULT = 4.0  # = rppg.TRACK_BPM_PER_S; a literal so the CLI's start-up does not import numpy
TrackOpt = Annotated[float, typer.Option("--track", min=0.0, help="Track the heart rate across windows: how far "
                                         "it may move, bpm per second (1 sd); 0 takes each window's highest peak alone.")]
SmoothOpt = Annotated[float, typer.Option("--smooth", min=0.0, max=0.99, help="Temporal smoothing of the mask "
                                          "(weight of the previous frame's mask, 0 = off).")]


def _fmt(v: float | None, spec: str = ".1f") -> str:
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else format(v, spec)


def _options(method: Method, window: float, step: float, detrend: Detrend, track: float, threshold: str,
             keep_clipped: bool, mask_scale: Optional[float], smooth: float, model_threshold: float):
    from ..pulse import PulseOptions
    from ..trace import TraceOptions
    from .predict import parse_threshold

    popts = PulseOptions(method=method.value, window_s=window, step_s=step, detrend=detrend.value, track=track)
    thr = None if threshold == "soft" else parse_threshold(threshold, model_threshold)
    topts = TraceOptions(threshold=thr, exclude_clipped=not keep_clipped,
                         mask_scale=mask_scale, smooth=smooth)
    return popts, topts


def _load(mask: Mask, weights: Optional[str], device: str):
    from ..pulse import RuleMasker

    if mask is Mask.skinmask:
        from ..inference import load_model

        return load_model(weights, device, engine=common.state.engine)
    return RuleMasker(mask.value)


def pulse(
    video: Annotated[Path, typer.Argument(help="A face video.", show_default=False)],
    json_lines: Annotated[bool, typer.Option("--json", help="JSON lines on stdout: one object per window, then "
                                             "one with \"overall\": true.")] = False,
    plot: Annotated[Optional[Path], typer.Option("--plot", help="Also draw a PNG: colour trace, filtered pulse, "
                                                 "spectrum, bpm over time.", show_default=False)] = None,
    gt: Annotated[Optional[Path], typer.Option("--gt", help="UBFC ground truth (ground_truth.txt or gtdump.xmp): "
                                               "score each window against the PPG.", show_default=False)] = None,
    method: MethodOpt = Method.pos,
    window: WindowOpt = 10.0,
    step: StepOpt = 1.0,
    detrend: DetrendOpt = Detrend.smooth,
    track: TrackOpt = TRACK_DEFAULT,
    mask: Annotated[Mask, typer.Option("--mask", help="Where colour is averaged: skinmask (the model), or the "
                                       "baselines whole (every pixel) and ycrcb (Chai & Ngan rule).")] = Mask.skinmask,
    threshold: ThresholdOpt = "soft",
    keep_clipped: KeepClippedOpt = False,
    mask_scale: MaskScaleOpt = None,
    smooth: SmoothOpt = 0.0,
    weights: WeightsOpt = None,
    device: DeviceOpt = "auto",
    engine: EngineOpt = common.EngineChoice.auto,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Heart rate (bpm) from a face video: the overall bpm on stdout, a per-window table on stderr.

    Windows print as soon as their last frame is decoded. Example:

      skinmask pulse face.mp4 --plot pulse.png
    """
    common.setup(debug, quiet, engine)
    from ..pulse import PulseRun, ScoredWindow, score

    model = _load(mask, weights, device)
    popts, topts = _options(method, window, step, detrend, track, threshold, keep_clipped, mask_scale, smooth,
                            getattr(model, "threshold", 0.5))
    run = PulseRun(model, video, popts, topts, gt=gt, keep_trace=plot is not None)
    show = not common.state.quiet
    head = f"{'frames':>13s} {'seconds':>13s} {'bpm':>6s} {'snr dB':>6s}" + (f" {'gt':>6s} {'error':>6s}" if gt else "")
    for k, item in enumerate(run):
        w = item.window if isinstance(item, ScoredWindow) else item
        if show and k == 0:  # the table header once the video has opened and a window is ready
            common.console.print(f"[bold]{head}[/]")
        if json_lines:
            sys.stdout.write(json.dumps(item.to_dict()) + "\n")
            sys.stdout.flush()
        if show:
            line = (f"{w.start_frame:>6d}-{w.end_frame:<6d} {w.start_s:6.1f}-{w.end_s:<6.1f} "
                    f"{_fmt(w.bpm):>6s} {_fmt(w.snr):>6s}")
            if isinstance(item, ScoredWindow):
                line += f" {_fmt(item.gt_bpm):>6s} {_fmt(item.error, '+.1f'):>6s}"
            common.console.print(line, highlight=False)
    overall = run.overall_bpm
    summary: dict[str, object] = {"overall": True, "bpm": None if overall is None else round(overall, 2),
                                  "windows": len(run.windows), "frames": run.frames, "fps": round(run.fps, 3),
                                  "method": popts.method, "mask": mask.value}
    if gt is not None:
        summary.update(score(run.scored).to_dict())
        s = score(run.scored)
        common.info_line(f"vs ground truth: MAE {_fmt(s.mae, '.2f')} bpm, RMSE {_fmt(s.rmse, '.2f')}, "
                         f"r {_fmt(s.r, '.3f')} over {s.n} windows")
    if not run.windows:
        common.warn_line(f"{video}: too short for a heart rate ({run.frames} frames at {run.fps:.3g} fps; "
                         f"need at least 4 s)")
    if plot is not None:
        from ..pulseplot import draw_pulse
        from ..media import write_png

        write_png(plot, draw_pulse(run, title=f"{video.name}  {popts.method.upper()}  mask={mask.value}"))
        common.info_line(f"plot: {plot}")
    if json_lines:
        sys.stdout.write(json.dumps(summary) + "\n")
    else:
        sys.stdout.write(("nan" if overall is None else f"{overall:.1f}") + "\n")
    sys.stdout.flush()
    if overall is None:
        raise typer.Exit(common.EXIT_FAILED)


def pulse_eval(
    folder: Annotated[Path, typer.Argument(help="A folder of clips: subject*/vid.mp4 + ground_truth.txt (UBFC "
                                           "layout).", show_default=False)],
    masks: Annotated[Optional[list[Mask]], typer.Option("--mask", help="Mask sources to compare (repeat). "
                                                        "[default: skinmask, whole, ycrcb]", show_default=False)] = None,
    json_lines: Annotated[bool, typer.Option("--json", help="JSON lines: one per clip and mask, then the totals.")] = False,
    cluster: ClusterOpt = None,
    method: MethodOpt = Method.pos,
    window: WindowOpt = 10.0,
    step: StepOpt = 1.0,
    detrend: DetrendOpt = Detrend.smooth,
    track: TrackOpt = TRACK_DEFAULT,
    threshold: ThresholdOpt = "soft",
    keep_clipped: KeepClippedOpt = False,
    mask_scale: MaskScaleOpt = None,
    smooth: SmoothOpt = 0.0,
    weights: WeightsOpt = None,
    device: DeviceOpt = "auto",
    engine: EngineOpt = common.EngineChoice.auto,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Score heart rate against contact PPG on every clip: MAE, RMSE, Pearson r over all windows.

    The skin mask is compared with two built-in baselines (whole-frame average, YCrCb rule mask).
    Totals go to stdout (TSV, or JSON lines); the per-clip table to stderr. Example:

      skinmask pulse-eval ../shared/data/ubfc_rppg

      skinmask pulse-eval ../shared/data/ubfc_rppg --cluster local    # clips and masks as Dask tasks
    """
    common.setup(debug, quiet, engine)
    from rich.table import Table

    from ..pulse import evaluate_corpus, find_clips, score

    common.check_cluster(cluster)
    chosen = list(dict.fromkeys(masks or list(Mask)))
    clips = find_clips(folder)
    model = _load(Mask.skinmask, weights, device) if Mask.skinmask in chosen else None
    popts, topts = _options(method, window, step, detrend, track, threshold, keep_clipped, mask_scale, smooth,
                            getattr(model, "threshold", 0.5))
    all_windows: dict[Mask, list] = {m: [] for m in chosen}
    per_clip: dict[tuple[str, Mask], object] = {}
    failed = 0
    pairs = [(clip, m.value) for clip in clips for m in chosen]
    with common.open_cluster(cluster) as workers:
        for clip, mask_name, res, error in evaluate_corpus(model, pairs, popts, topts, workers):
            if error is not None:  # one bad clip must not hide the others; reported and counted
                common.error_line(error)
                failed += 1
                continue
            m = Mask(mask_name)
            s = res.scores
            per_clip[(clip.name, m)] = s
            all_windows[m].extend(res.windows)
            if json_lines:
                sys.stdout.write(json.dumps({"clip": clip.name, "mask": m.value, **s.to_dict()}) + "\n")
                sys.stdout.flush()
            common.info_line(f"{clip.name:>12s} {m.value:>9s}: MAE {_fmt(s.mae, '.2f'):>6s} bpm over {s.n} windows")
    totals = {m: score(all_windows[m]) for m in chosen}
    if not common.state.quiet:
        table = Table(title=f"bpm vs contact PPG, {popts.method.upper()}, {window:g} s windows, {step:g} s step")
        table.add_column("clip")
        for m in chosen:
            table.add_column(f"{m.value} MAE", justify="right")
        for clip in clips:
            table.add_row(clip.name, *[_fmt(getattr(per_clip.get((clip.name, m)), "mae", None), ".2f") for m in chosen])
        for label, key, spec in (("MAE (all windows)", "mae", ".2f"), ("RMSE", "rmse", ".2f"), ("Pearson r", "r", ".3f")):
            table.add_row(f"[bold]{label}[/]", *[_fmt(getattr(totals[m], key), spec) for m in chosen])
        table.add_row("windows", *[str(totals[m].n) for m in chosen])
        common.console.print(table)
    if json_lines:
        for m in chosen:
            sys.stdout.write(json.dumps({"overall": True, "mask": m.value, "method": popts.method,
                                         **totals[m].to_dict()}) + "\n")
    else:
        sys.stdout.write("mask\twindows\tmae\trmse\tr\n")
        for m in chosen:
            t = totals[m]
            sys.stdout.write(f"{m.value}\t{t.n}\t{_fmt(t.mae, '.3f')}\t{_fmt(t.rmse, '.3f')}\t{_fmt(t.r, '.4f')}\n")
    sys.stdout.flush()
    if failed:
        raise typer.Exit(common.EXIT_FAILED)


def register(app: typer.Typer) -> None:
    app.command(no_args_is_help=True)(pulse)
    app.command("pulse-eval", no_args_is_help=True)(pulse_eval)
