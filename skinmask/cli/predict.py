"""`skinmask predict`: images, folders, globs and videos -> skin masks."""

from __future__ import annotations

import json
import sys
import time
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from . import common
from .common import DebugOpt, DeviceOpt, QuietOpt, WeightsOpt


class VideoFormat(str, Enum):
    mkv = "mkv"
    png = "png"


def parse_threshold(value: str | None, default: float) -> float | None:
    """None -> soft masks; 'auto' -> the threshold stored with the weights; a number in 0..1."""
    from ..errors import UsageError

    if value is None:
        return None
    if value == "auto":
        return default
    try:
        t = float(value)
    except ValueError:
        raise UsageError(f"--threshold must be 'auto' or a number in 0..1, not {value!r}") from None
    if not 0.0 <= t <= 1.0:
        raise UsageError(f"--threshold must be in 0..1, not {t}")
    return t


def predict(
    inputs: Annotated[list[str], typer.Argument(help="Images, videos, folders (searched recursively) or quoted globs.",
                                                show_default=False)],
    output: Annotated[Path, typer.Option("--output", "-o", help="Output folder; mirrors the input tree.")] = Path("masks"),
    threshold: Annotated[Optional[str], typer.Option(
        "--threshold", "-t", help="0/255 masks at this probability, or 'auto' for the threshold stored with the "
        "weights. [default: soft masks, probability x 255]", show_default=False)] = None,
    video_format: Annotated[VideoFormat, typer.Option(
        "--video-format", help="Videos as one lossless FFV1 .mkv, or a folder of PNGs per video.")] = VideoFormat.mkv,
    grids: Annotated[bool, typer.Option("--grids", help="Also write the 32-filter activation grid "
                                        "(<stem>.grid.png; for videos <stem>.grids/NNNNNN.png).")] = False,
    grid_every: Annotated[int, typer.Option("--grid-every", min=1, help="With --grids on video: every Nth frame.")] = 30,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace outputs that already exist.")] = False,
    json_lines: Annotated[bool, typer.Option("--json", help="One JSON object per output on stdout.")] = False,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Video frames per model call.")] = 4,
    keep_partial: Annotated[bool, typer.Option("--keep-partial", help="On failure or Ctrl-C keep the unfinished "
                                               "video output as <stem>.partial.mkv.")] = False,
    weights: WeightsOpt = None,
    device: DeviceOpt = "auto",
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Write a skin mask for every image and video given.

    Masks are 8-bit single-channel PNGs (0..255 = skin probability x 255, or 0/255 with --threshold).
    A video becomes a lossless FFV1 .mkv mask video with the same frame count, size and fps.

    Examples:

      skinmask predict face.mp4 -o out/

      skinmask predict photos/ -o masks/ --threshold auto

      skinmask predict a.jpg 'shots/*.jpg' -o masks/ --grids
    """
    common.setup(debug, quiet)
    from ..inference import load_model
    from ..inputs import check_output_collisions, expand_inputs
    from ..runner import PredictOptions, predict_item
    from ..errors import SkinmaskError

    start = time.perf_counter()
    items, input_errors = expand_inputs(inputs, output)
    for err in input_errors:
        common.error_line(str(err))
    check_output_collisions(items)
    if not items:
        raise typer.Exit(common.EXIT_FAILED)

    model = load_model(weights, device)
    opts = PredictOptions(
        output_dir=output, threshold=parse_threshold(threshold, model.threshold), video_format=video_format.value,
        grids=grids, grid_every=grid_every, overwrite=overwrite, batch_size=batch_size, keep_partial=keep_partial,
    )
    failures = len(input_errors)
    frames = 0
    with common.make_progress() as progress:
        files_task = progress.add_task("files", total=len(items), rate="")
        frames_task = progress.add_task("frames", total=None, rate="")

        def on_frames(n: int) -> None:
            progress.advance(frames_task, n)
            done = progress.tasks[frames_task].completed
            progress.update(frames_task, rate=f"{done / max(time.perf_counter() - start, 1e-9):.1f} frames/s")

        for item in items:
            progress.update(files_task, description=item.path.name)
            try:
                record = predict_item(model, item, opts, on_frames=on_frames)
            except SkinmaskError as exc:
                failures += 1
                common.error_line(str(exc))
                if common.state.debug:
                    common.console.print_exception()
                progress.advance(files_task)
                continue
            frames += record.frames
            if not record.complete:
                failures += 1
                common.error_line(record.error or f"{item.path}: incomplete")
            if json_lines:
                sys.stdout.write(json.dumps(record.to_dict()) + "\n")
                sys.stdout.flush()
            progress.advance(files_task)
    elapsed = time.perf_counter() - start
    common.info_line(
        f"[green]done[/]: {len(items)} input(s), {len(items) + len(input_errors) - failures} written, {frames} frame(s), "
        f"{failures} failed, {elapsed:.1f} s ({frames / elapsed if elapsed else 0:.1f} frames/s) -> {output}"
    )
    if failures:
        raise typer.Exit(common.EXIT_FAILED)


def register(app: typer.Typer) -> None:
    app.command(no_args_is_help=True)(predict)
