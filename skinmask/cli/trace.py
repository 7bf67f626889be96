"""`skinmask trace`: per-frame skin fraction and mask-weighted mean RGB, as CSV or JSON lines on stdout."""

from __future__ import annotations

import csv
import json
import sys
from typing import Annotated, Optional

import typer

from . import common
from .common import DebugOpt, DeviceOpt, EngineOpt, QuietOpt, WeightsOpt
from .predict import FpsOpt, PixFmt, PixFmtOpt, RawOpt


def trace(
    video: Annotated[Optional[str], typer.Argument(
        help="A video (or image) file, or with --raw a rawvideo file or '-' for stdin (implied when stdin is "
        "a pipe).", show_default=False)] = None,
    json_lines: Annotated[bool, typer.Option("--json", help="JSON lines instead of CSV.")] = False,
    threshold: Annotated[Optional[str], typer.Option(
        "--threshold", "-t", help="Average only pixels at or above this probability ('auto': the weights' "
        "threshold). [default: weight every pixel by its skin probability]", show_default=False)] = None,
    keep_clipped: Annotated[bool, typer.Option("--keep-clipped", help="Also average saturated and near-black "
                                               "pixels (dropped by default: they carry no pulse).")] = False,
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

    r, g, b are the mask-weighted mean colour of the frame, the raw signal that rPPG methods
    (POS, CHROM) start from. Rows stream as frames are processed.

    stdout carries only the CSV (a header, then one row per frame) or the JSON lines (one object per
    frame, same fields); everything else goes to stderr. time_s is the frame's presentation time from the
    video's container (variable frame rate video is timed right), or index / --fps for raw frames.

    Examples:

      skinmask trace face.mp4 > trace.csv

      ffmpeg -i face.mp4 -f rawvideo -pix_fmt bgr24 - | skinmask trace --raw 528x592 --fps 30 --json

    Exit codes: 0 all good, 1 the input failed (or ended early), 2 usage error.
    """
    common.setup(debug, quiet, engine)
    from ..inference import load_model
    from ..errors import UsageError
    from ..pipeline import prefetch
    from ..sources import STDIN, open_source, parse_size, stdin_is_data
    from ..trace import TRACE_FIELDS, TraceOptions, trace_frames
    from .predict import parse_threshold

    parse_threshold(threshold, 0.5)  # usage errors before any work
    if video is None:
        if raw is None or not stdin_is_data():
            raise UsageError("no input: give a video, or --raw WxH with '-' to read raw frames from stdin")
        video = STDIN
    if video == STDIN and raw is None:
        raise UsageError("reading stdin needs --raw WxH (and --pix-fmt): pipe ffmpeg rawvideo frames in")
    source = open_source(video, parse_size(raw) if raw is not None else None, pix_fmt.value,
                         fps if raw is not None else 1.0)
    model = load_model(weights, device, common.state.engine)
    opts = TraceOptions(threshold=parse_threshold(threshold, model.threshold), exclude_clipped=not keep_clipped)
    frames = prefetch(source.frames) if source.kind == "raw" else iter(source.frames)
    writer = None if json_lines else csv.writer(sys.stdout, lineterminator="\n")
    if writer is not None:
        writer.writerow(TRACE_FIELDS)
    for row in trace_frames(model, frames, source.fps, opts):
        if writer is not None:
            writer.writerow([row.index, f"{row.time_s:.6f}", f"{row.skin_fraction:.6f}",
                             f"{row.r:.4f}", f"{row.g:.4f}", f"{row.b:.4f}"])
        else:
            # NaN (no skin pixel) is not JSON: strict parsers reject it, so it becomes null
            fields = {k: (None if isinstance(v, float) and v != v else v) for k, v in row.to_dict().items()}
            sys.stdout.write(json.dumps(fields, allow_nan=False) + "\n")
        sys.stdout.flush()
    source.check_complete()


def register(app: typer.Typer) -> None:
    app.command(no_args_is_help=True)(trace)
