"""`skinmask trace`: per-frame region share and weighted mean RGB, as CSV or JSON lines (stdout or files)."""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from . import common
from .common import (DEFAULT_REGION, REGION_HELP, ClusterOpt, DebugOpt, DeviceOpt, EngineOpt, FaceOpt, QuietOpt, Region,
                     SkipExistingOpt, WeightsOpt)
from .predict import FpsOpt, PixFmt, PixFmtOpt, RawOpt


def trace(
    inputs: Annotated[Optional[list[str]], typer.Argument(
        help="A video (or image) file, or with --raw a rawvideo file or '-' for stdin (implied when stdin is "
        "a pipe). With -o: any number of videos, folders (searched recursively) or quoted globs.",
        show_default=False)] = None,
    output: Annotated[Optional[Path], typer.Option(
        "--output", "-o", help="Write one trace per input into this folder (<stem>.csv, or .jsonl with --json), "
        "mirroring the input tree, instead of one trace on stdout.", show_default=False)] = None,
    json_lines: Annotated[bool, typer.Option("--json", help="JSON lines instead of CSV.")] = False,
    region: Annotated[Region, typer.Option("--region", "-r", help=REGION_HELP)] = DEFAULT_REGION,
    face: FaceOpt = None,
    threshold: Annotated[Optional[str], typer.Option(
        "--threshold", "-t", help="Average only pixels at or above this probability ('auto': the weights' "
        "threshold). [default: weight every pixel by its skin probability]", show_default=False)] = None,
    keep_clipped: Annotated[bool, typer.Option("--keep-clipped", help="Also average saturated and near-black "
                                               "pixels (dropped by default: they carry no pulse).")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="With -o: replace traces that already exist.")] = False,
    skip_existing: SkipExistingOpt = False,
    cluster: ClusterOpt = None,
    raw: RawOpt = None,
    pix_fmt: PixFmtOpt = PixFmt.bgr24,
    fps: FpsOpt = 30.0,
    weights: WeightsOpt = None,
    device: DeviceOpt = "auto",
    engine: EngineOpt = common.EngineChoice.auto,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Print the per-frame skin signal: index, time_s, skin_fraction, r, g, b (CSV with a header).

    r, g, b are the weighted mean colour of the region (default: the tracked face, minus eyes and
    mouth), the raw signal that rPPG methods (POS, CHROM) start from. Rows stream as frames are processed.

    stdout carries only the CSV (a header, then one row per frame) or the JSON lines (one object per
    frame, same fields); everything else goes to stderr. time_s is the frame's presentation time from the
    video's container (variable frame rate video is timed right), or index / --fps for raw frames.
    With -o FOLDER each input's trace becomes a file there instead, several inputs at once.

    Examples:

      skinmask trace face.mp4 > trace.csv

      ffmpeg -i face.mp4 -f rawvideo -pix_fmt bgr24 - | skinmask trace --raw 528x592 --fps 30 --json

      skinmask trace videos/ -o traces/ --cluster local --skip-existing

    Exit codes: 0 all good, 1 the input failed (or ended early), 2 usage error.
    """
    common.setup(debug, quiet, engine)
    from ..inference import load_model
    from ..errors import UsageError
    from ..pipeline import prefetch
    from ..sources import STDIN, open_source, parse_size, stdin_is_data
    from ..trace import RowWriter, TraceOptions, needs_model, trace_frames
    from .predict import parse_threshold

    parse_threshold(threshold, 0.5)  # usage errors before any work
    common.check_resume_options(overwrite, skip_existing)
    common.check_cluster(cluster)
    specs = list(inputs or [])
    if output is not None:
        if raw is not None or STDIN in specs:
            raise UsageError("-o writes one trace file per input file; stdin and --raw trace to stdout (drop -o)")
        if not specs:
            raise UsageError("no input: give videos, folders or globs to trace into -o")
        _trace_files(specs, output, json_lines, threshold, keep_clipped, overwrite, skip_existing, cluster,
                     weights, device, region, face)
        return
    for flag, on in (("--cluster", cluster is not None), ("--skip-existing", skip_existing), ("--overwrite", overwrite)):
        if on:
            raise UsageError(f"{flag} works with -o FOLDER (one trace file per input)")
    if len(specs) > 1:
        raise UsageError(f"stdout holds one trace; got {len(specs)} inputs: add -o FOLDER for one file per input")
    video = specs[0] if specs else None
    if video is None:
        if raw is None or not stdin_is_data():
            raise UsageError("no input: give a video, or --raw WxH with '-' to read raw frames from stdin")
        video = STDIN
    if video == STDIN and raw is None:
        raise UsageError("reading stdin needs --raw WxH (and --pix-fmt): pipe ffmpeg rawvideo frames in")
    source = open_source(video, parse_size(raw) if raw is not None else None, pix_fmt.value,
                         fps if raw is not None else 1.0)
    model = load_model(weights, device, common.state.engine) if needs_model([region.value]) else None
    opts = TraceOptions(region=region.value, face=face, exclude_clipped=not keep_clipped,
                        threshold=parse_threshold(threshold, getattr(model, "threshold", 0.5)))
    frames = prefetch(source.frames) if source.kind == "raw" else iter(source.frames)
    writer = RowWriter(sys.stdout, json_lines)
    for row in trace_frames(model, frames, source.fps, opts, name=video):
        writer.write(row)
        sys.stdout.flush()
    source.check_complete()


def _trace_files(specs: list[str], output: Path, json_lines: bool, threshold: Optional[str], keep_clipped: bool,
                 overwrite: bool, skip_existing: bool, cluster: Optional[str], weights: Optional[str],
                 device: str, region: Region, face: Optional[int]) -> None:
    """trace -o FOLDER: every input into its own file, several at once (or on --cluster workers)."""
    from ..inference import load_model
    from ..inputs import expand_inputs
    from ..trace import TraceFiles, TraceOptions, needs_model, trace_corpus
    from .predict import parse_threshold

    start = time.perf_counter()
    items, input_errors = expand_inputs(specs, output)
    common.checked_items(items, input_errors)
    model = load_model(weights, device, common.state.engine) if needs_model([region.value]) else None
    topts = TraceOptions(region=region.value, face=face, exclude_clipped=not keep_clipped,
                         threshold=parse_threshold(threshold, getattr(model, "threshold", 0.5)))
    opts = TraceFiles(output, json_lines, overwrite, skip_existing, topts)
    tally = common.Tally(len(items), failed=len(input_errors))
    with common.open_cluster(cluster) as workers, common.make_progress() as progress:
        files_task = progress.add_task("files", total=len(items), rate="")
        frames_task = progress.add_task("frames", total=None, rate="")
        with contextlib.closing(trace_corpus(items, opts, model, workers,
                                             lambda n: progress.advance(frames_task, n))) as outcomes:
            for outcome in outcomes:
                progress.update(files_task, description=outcome.item.path.name)
                progress.advance(files_task)
                tally.take(outcome)
    common.info_line(tally.summary(time.perf_counter() - start, output))
    if tally.failed:
        raise typer.Exit(common.EXIT_FAILED)


def register(app: typer.Typer) -> None:
    app.command(no_args_is_help=True)(trace)
