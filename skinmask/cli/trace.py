"""`skinmask trace`: per-frame skin fraction and mask-weighted mean RGB, as CSV or JSON lines on stdout."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from . import common
from .common import DebugOpt, DeviceOpt, QuietOpt, WeightsOpt


def trace(
    video: Annotated[Path, typer.Argument(help="A video (or image) file.", show_default=False)],
    json_lines: Annotated[bool, typer.Option("--json", help="JSON lines instead of CSV.")] = False,
    threshold: Annotated[Optional[str], typer.Option(
        "--threshold", "-t", help="Average only pixels at or above this probability ('auto': the weights' "
        "threshold). [default: weight every pixel by its skin probability]", show_default=False)] = None,
    keep_clipped: Annotated[bool, typer.Option("--keep-clipped", help="Also average saturated and near-black "
                                               "pixels (dropped by default: they carry no pulse).")] = False,
    weights: WeightsOpt = None,
    device: DeviceOpt = "auto",
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Print the per-frame skin signal: index, time_s, skin_fraction, r, g, b (CSV with a header).

    r, g, b are the mask-weighted mean colour of the frame, the raw signal that rPPG methods
    (POS, CHROM) start from. Rows stream as frames are processed.

    Example:

      skinmask trace face.mp4 > trace.csv
    """
    common.setup(debug, quiet)
    from ..inference import load_model
    from ..media import VideoReader, is_video, read_image
    from ..trace import TRACE_FIELDS, TraceOptions, trace_frames
    from .predict import parse_threshold

    model = load_model(weights, device)
    opts = TraceOptions(threshold=parse_threshold(threshold, model.threshold), exclude_clipped=not keep_clipped)
    if is_video(video):
        reader = VideoReader(video)
        frames, fps = iter(reader), reader.info.fps
    else:
        reader, frames, fps = None, iter([read_image(video)]), 1.0
    writer = None if json_lines else csv.writer(sys.stdout, lineterminator="\n")
    if writer is not None:
        writer.writerow(TRACE_FIELDS)
    for row in trace_frames(model, frames, fps, opts):
        if writer is not None:
            writer.writerow([row.index, f"{row.time_s:.6f}", f"{row.skin_fraction:.6f}",
                             f"{row.r:.4f}", f"{row.g:.4f}", f"{row.b:.4f}"])
        else:
            sys.stdout.write(json.dumps(row.to_dict()) + "\n")
        sys.stdout.flush()
    if reader is not None:
        reader.check_complete()


def register(app: typer.Typer) -> None:
    app.command(no_args_is_help=True)(trace)
