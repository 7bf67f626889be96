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
from .common import (DEFAULT_REGION, REGION_HELP, ClusterOpt, DebugOpt, DeviceOpt, EngineOpt, FaceOpt, QuietOpt, Region,
                     WeightsOpt)


class Method(str, Enum):
    pos = "pos"
    chrom = "chrom"
    green = "green"


class Detrend(str, Enum):
    none = "none"
    linear = "linear"
    smooth = "smooth"


class Mask(str, Enum):
    """The old --mask choices, kept as aliases of regions."""

    skinmask = "skinmask"
    whole = "whole"
    ycrcb = "ycrcb"


MASK_REGION = {Mask.skinmask: Region.skin, Mask.whole: Region.whole, Mask.ycrcb: Region.ycrcb}
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
             keep_clipped: bool, mask_scale: Optional[float], smooth: float, model_threshold: float,
             region: Region, face: Optional[int]):
    from ..pulse import PulseOptions
    from ..trace import TraceOptions
    from .predict import parse_threshold

    popts = PulseOptions(method=method.value, window_s=window, step_s=step, detrend=detrend.value, track=track)
    thr = None if threshold == "soft" else parse_threshold(threshold, model_threshold)
    topts = TraceOptions(region=region.value, face=face, threshold=thr, exclude_clipped=not keep_clipped,
                         mask_scale=mask_scale, smooth=smooth)
    return popts, topts


def _load(regions: list[Region], weights: Optional[str], device: str):
    """The skin model when a region needs it, else None."""
    from ..trace import needs_model

    if not needs_model(r.value for r in regions):
        return None
    from ..inference import load_model

    return load_model(weights, device, engine=common.state.engine)


def _regions(regions: Optional[list[Region]], masks: Optional[list[Mask]], default: list[Region]) -> list[Region]:
    """--region values, with the old --mask values mapped onto regions (both may be given)."""
    chosen = list(regions or []) + [MASK_REGION[m] for m in masks or []]
    return list(dict.fromkeys(chosen or default))


MaskAliasOpt = Annotated[Optional[list[Mask]], typer.Option(
    "--mask", hidden=True, help="Old name: skinmask = --region skin, whole, ycrcb.", show_default=False)]


def pulse(
    video: Annotated[Path, typer.Argument(help="A face video.", show_default=False)],
    json_lines: Annotated[bool, typer.Option("--json", help="JSON lines on stdout: one object per window, then "
                                             "one with \"overall\": true.")] = False,
    plot: Annotated[Optional[Path], typer.Option("--plot", help="Also draw a PNG: colour trace, filtered pulse, "
                                                 "spectrum, bpm over time.", show_default=False)] = None,
    map_png: Annotated[Optional[Path], typer.Option(
        "--map", help="Also draw a PNG of a frame tinted by each block's pulse SNR at the tracked heart rate over "
        "the whole recording (where the heartbeat is visible), the face region outlined.", show_default=False)] = None,
    bvp: Annotated[Optional[Path], typer.Option(
        "--bvp", help="Also write the combined, filtered pulse signal on the uniform time grid as CSV "
        "(time_s,bvp), streamed.", show_default=False)] = None,
    gt: Annotated[Optional[Path], typer.Option("--gt", help="Contact PPG to score each window against: UBFC "
                                               "ground_truth.txt / gtdump.xmp (one sample per frame) or a CSV "
                                               "with time_s,ppg columns (matched by time).", show_default=False)] = None,
    region: Annotated[Optional[Region], typer.Option("--region", "-r", help=REGION_HELP, show_default=False)] = None,
    face: FaceOpt = None,
    method: MethodOpt = Method.pos,
    window: WindowOpt = 10.0,
    step: StepOpt = 1.0,
    detrend: DetrendOpt = Detrend.smooth,
    track: TrackOpt = TRACK_DEFAULT,
    mask: MaskAliasOpt = None,
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

    Windows are cut by the frames' presentation times (variable frame rate is fine) and print as soon
    as their last frame is decoded. [default region: face] Examples:

      skinmask pulse face.mp4 --plot pulse.png --map map.png

      skinmask pulse hand.mp4 --region skin
    """
    common.setup(debug, quiet, engine)
    from ..errors import UsageError
    from ..pulse import PulseRun, ScoredWindow, score

    chosen = _regions([region] if region else None, mask, [DEFAULT_REGION])
    if len(chosen) > 1:
        raise UsageError(f"pulse measures one region; got {', '.join(r.value for r in chosen)} (pulse-eval compares them)")
    reg = chosen[0]
    model = _load(chosen, weights, device)
    popts, topts = _options(method, window, step, detrend, track, threshold, keep_clipped, mask_scale, smooth,
                            getattr(model, "threshold", 0.5), reg, face)
    run = PulseRun(model, video, popts, topts, gt=gt, keep_trace=plot is not None, bvp=bvp,
                   pulse_map=map_png is not None)
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
                                  "method": popts.method, "region": reg.value}
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

        write_png(plot, draw_pulse(run, title=f"{video.name}  {popts.method.upper()}  region={reg.value}"))
        common.info_line(f"plot: {plot}")
    if map_png is not None:
        _write_map(run, map_png, f"{video.name}: pulse SNR at the tracked rate ({popts.method.upper()})")
    if bvp is not None:
        common.info_line(f"pulse signal: {bvp}")
    if json_lines:
        sys.stdout.write(json.dumps(summary) + "\n")
    else:
        sys.stdout.write(("nan" if overall is None else f"{overall:.1f}") + "\n")
    sys.stdout.flush()
    if overall is None:
        raise typer.Exit(common.EXIT_FAILED)


def _write_map(run, path: Path, title: str) -> None:
    from ..media import write_png

    pm = run.map
    if pm is None or pm.frame is None or pm.snr_db() is None:
        common.warn_line(f"{path}: no pulse map (the video is shorter than one window)")
        return
    outline = None
    if pm.face is not None:
        from ..face import face_region

        outline = face_region(pm.face, pm.frame.shape[:2])
    write_png(path, pm.draw(outline, title))
    common.info_line(f"map: {path}")


def pulse_eval(
    folder: Annotated[Path, typer.Argument(help="A folder of clips: subject*/vid.mp4 + ground_truth.txt (UBFC "
                                           "layout) or ground_truth.csv (time_s,ppg).", show_default=False)],
    regions: Annotated[Optional[list[Region]], typer.Option(
        "--region", "-r", help="Regions to compare (repeat). " + REGION_HELP + " [default: all five]",
        show_default=False)] = None,
    masks: MaskAliasOpt = None,
    json_lines: Annotated[bool, typer.Option("--json", help="JSON lines: one per clip and region, then the totals.")] = False,
    plot: Annotated[Optional[Path], typer.Option(
        "--plot", help="Also draw into this folder a Bland-Altman plot of all windows per region and each clip's "
        "bpm over time against the contact PPG.", show_default=False)] = None,
    cluster: ClusterOpt = None,
    face: FaceOpt = None,
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

    Every region is measured from one pass over each video. Totals go to stdout (TSV, or JSON lines);
    the per-clip table to stderr. Example:

      skinmask pulse-eval ../shared/data/ubfc_rppg --plot eval/

      skinmask pulse-eval ../shared/data/ubfc_rppg --cluster local    # clips as Dask tasks
    """
    common.setup(debug, quiet, engine)
    from rich.table import Table

    from ..pulse import evaluate_corpus, find_clips, score

    common.check_cluster(cluster)
    chosen = _regions(regions, masks, list(Region))
    clips = find_clips(folder)
    model = _load(chosen, weights, device)
    popts, topts = _options(method, window, step, detrend, track, threshold, keep_clipped, mask_scale, smooth,
                            getattr(model, "threshold", 0.5), chosen[0], face)
    all_windows: dict[Region, list] = {r: [] for r in chosen}
    per_clip: dict[tuple[str, Region], object] = {}
    results = []
    failed = 0
    with common.open_cluster(cluster) as workers:
        for clip, res, error in evaluate_corpus(model, clips, [r.value for r in chosen], popts, topts, workers):
            if error is not None:  # one bad clip must not hide the others; reported and counted
                common.error_line(error)
                failed += 1
                continue
            results.append(res)
            for r in chosen:
                s = res[r.value].scores
                per_clip[(clip.name, r)] = s
                all_windows[r].extend(res[r.value].windows)
                if json_lines:
                    sys.stdout.write(json.dumps({"clip": clip.name, "region": r.value, **s.to_dict()}) + "\n")
                    sys.stdout.flush()
                common.info_line(f"{clip.name:>12s} {r.value:>9s}: MAE {_fmt(s.mae, '.2f'):>6s} bpm over {s.n} windows")
    totals = {r: score(all_windows[r]) for r in chosen}
    if not common.state.quiet:
        table = Table(title=f"bpm vs contact PPG, {popts.method.upper()}, {window:g} s windows, {step:g} s step")
        table.add_column("clip")
        for r in chosen:
            table.add_column(f"{r.value} MAE", justify="right")
        for clip in clips:
            table.add_row(clip.name, *[_fmt(getattr(per_clip.get((clip.name, r)), "mae", None), ".2f") for r in chosen])
        for label, key, spec in (("MAE (all windows)", "mae", ".2f"), ("RMSE", "rmse", ".2f"), ("Pearson r", "r", ".3f")):
            table.add_row(f"[bold]{label}[/]", *[_fmt(getattr(totals[r], key), spec) for r in chosen])
        table.add_row("windows", *[str(totals[r].n) for r in chosen])
        common.console.print(table)
    if plot is not None and results:
        from ..pulseplot import write_eval_plots

        for path in write_eval_plots(plot, results, [r.value for r in chosen]):
            common.info_line(f"plot: {path}")
    if json_lines:
        for r in chosen:
            sys.stdout.write(json.dumps({"overall": True, "region": r.value, "method": popts.method,
                                         **totals[r].to_dict()}) + "\n")
    else:
        sys.stdout.write("region\twindows\tmae\trmse\tr\n")
        for r in chosen:
            t = totals[r]
            sys.stdout.write(f"{r.value}\t{t.n}\t{_fmt(t.mae, '.3f')}\t{_fmt(t.rmse, '.3f')}\t{_fmt(t.r, '.4f')}\n")
    sys.stdout.flush()
    if failed:
        raise typer.Exit(common.EXIT_FAILED)


def register(app: typer.Typer) -> None:
    app.command(no_args_is_help=True)(pulse)
    app.command("pulse-eval", no_args_is_help=True)(pulse_eval)
