"""`skinmask predict`: images, folders, globs and videos -> skin masks."""

from __future__ import annotations

import contextlib
import json
import sys
import time
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from . import common
from .common import ClusterOpt, DebugOpt, DeviceOpt, EngineOpt, QuietOpt, SkipExistingOpt, WeightsOpt


class VideoFormat(str, Enum):
    mkv = "mkv"
    png = "png"


class PixFmt(str, Enum):
    """ffmpeg rawvideo pixel formats read by --raw."""

    bgr24 = "bgr24"
    rgb24 = "rgb24"
    gray = "gray"


# Options shared with `skinmask trace` for ffmpeg rawvideo input.
RawOpt = Annotated[Optional[str], typer.Option(
    "--raw", metavar="WxH", help="Read the input ('-': stdin) as ffmpeg rawvideo frames of this size, "
    "e.g. 528x592 (ffmpeg ... -f rawvideo -pix_fmt bgr24 -).", show_default=False)]
PixFmtOpt = Annotated[PixFmt, typer.Option("--pix-fmt", help="Pixel format of --raw frames.")]
FpsOpt = Annotated[float, typer.Option("--fps", min=0.001, help="Frame rate of --raw frames (for times and "
                                       "mask videos).")]


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
    inputs: Annotated[Optional[list[str]], typer.Argument(
        help="Images, videos, folders (searched recursively) or quoted globs; '-' reads one image (or --raw "
        "frames) from stdin, implied when stdin is a pipe and no input is given.", show_default=False)] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="Output folder; mirrors the input tree. '-': "
                                         "stdout (a PNG for an image, raw gray frames for video and --raw).")
                      ] = Path("masks"),
    threshold: Annotated[Optional[str], typer.Option(
        "--threshold", "-t", help="0/255 masks at this probability, or 'auto' for the threshold stored with the "
        "weights. [default: soft masks, probability x 255]", show_default=False)] = None,
    video_format: Annotated[VideoFormat, typer.Option(
        "--video-format", help="Videos as one lossless FFV1 .mkv, or a folder of PNGs per video.")] = VideoFormat.mkv,
    grids: Annotated[bool, typer.Option("--grids", help="Also write the 32-filter activation grid "
                                        "(<stem>.grid.png; for videos <stem>.grids/NNNNNN.png).")] = False,
    grid_every: Annotated[int, typer.Option("--grid-every", min=1, help="With --grids on video: every Nth frame.")] = 30,
    overlay: Annotated[bool, typer.Option("--overlay", help="Also write the mask tinted over the input, to judge "
                                          "it at a glance (<stem>.overlay.png; for videos <stem>.overlay.mp4).")] = False,
    overwrite: common.OverwriteOpt = False,
    skip_existing: SkipExistingOpt = False,
    cluster: ClusterOpt = None,
    json_lines: Annotated[bool, typer.Option("--json", help="One JSON object per output on stdout (schema in "
                                             "the README); progress and summary stay on stderr.")] = False,
    from_list: Annotated[Optional[str], typer.Option(
        "--from", metavar="FILE", help="Also read input paths from FILE ('-': stdin), one a line; blank lines "
        "are skipped.", show_default=False)] = None,
    nul: Annotated[bool, typer.Option("--null", "-0", help="--from paths are NUL-separated (find -print0).")] = False,
    raw: RawOpt = None,
    pix_fmt: PixFmtOpt = PixFmt.bgr24,
    fps: FpsOpt = 30.0,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Video frames per model call.")] = 4,
    keep_partial: Annotated[bool, typer.Option("--keep-partial", help="On failure or Ctrl-C keep the unfinished "
                                               "video output as <stem>.partial.mkv.")] = False,
    weights: WeightsOpt = None,
    device: DeviceOpt = "auto",
    engine: EngineOpt = common.EngineChoice.auto,
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

      skinmask predict - -o - < face.jpg > mask.png

      ffmpeg -i face.mp4 -f rawvideo -pix_fmt bgr24 - | skinmask predict --raw 528x592 - -o - > masks.gray

      find data -name '*.jpg' | skinmask predict --from - -o masks/

      skinmask predict corpus/ -o masks/ --cluster local:2 --skip-existing

    Exit codes: 0 all good, 1 some input failed, 2 usage error.
    """
    common.setup(debug, quiet, engine)
    from ..inference import load_model
    from ..media import declared_frames
    from ..inputs import expand_inputs
    from ..runner import PredictOptions, predict_corpus

    from ..errors import UsageError
    from ..sources import STDIN, expand_path_list, read_path_list_from, stdin_is_data

    start = time.perf_counter()
    parse_threshold(threshold, 0.5)  # usage errors before any work
    common.check_resume_options(overwrite, skip_existing)
    common.check_cluster(cluster)
    specs = list(inputs or [])
    if nul and from_list is None:
        raise UsageError("-0/--null describes the --from list; add --from FILE (or --from - for stdin)")
    if not specs and from_list is None:
        if not stdin_is_data():
            raise UsageError("no input: give files, folders or globs, '-' for stdin, or --from FILE")
        specs = [STDIN]  # `cat face.jpg | skinmask predict -o -`
    if from_list == STDIN and STDIN in specs:
        raise UsageError("stdin cannot carry both an image and the --from path list")
    if raw is not None or STDIN in specs or str(output) == STDIN:
        for flag, on in (("--overlay", overlay), ("--cluster", cluster is not None), ("--skip-existing", skip_existing)):
            if on:
                raise UsageError(f"{flag} needs file inputs and an output folder, not stdin, --raw or -o -")
        code = _predict_stream(specs, output, raw, pix_fmt.value, fps, threshold, video_format.value, grids,
                               overwrite, json_lines, batch_size, keep_partial, weights, device, start)
        raise typer.Exit(code)
    items, input_errors = expand_inputs(specs, output)
    if from_list is not None:
        listed, list_errors = expand_path_list(read_path_list_from(from_list, nul), output)
        items, input_errors = items + listed, input_errors + list_errors
        if not items and not input_errors:
            common.error_line(f"--from {from_list}: the path list is empty")
    common.checked_items(items, input_errors)
    model = load_model(weights, device, common.state.engine)
    opts = PredictOptions(
        output_dir=output, threshold=parse_threshold(threshold, model.threshold), video_format=video_format.value,
        grids=grids, grid_every=grid_every, overwrite=overwrite, skip_existing=skip_existing, batch_size=batch_size,
        keep_partial=keep_partial, overlay=overlay,
    )
    tally = common.Tally(len(items), failed=len(input_errors))
    progress_shown = common.progress_enabled()
    with common.open_cluster(cluster) as workers, common.make_progress() as progress:
        files_task = progress.add_task("files", total=len(items), rate="")
        # Frame total for the ETA: what the containers declare (counted for real while decoding).
        expected = sum(declared_frames(i.path) if i.kind == "video" else 1 for i in items) if progress_shown else 0
        frames_task = progress.add_task("frames", total=expected or None, rate="")

        def on_frames(n: int) -> None:
            progress.advance(frames_task, n)
            done = progress.tasks[frames_task].completed
            progress.update(frames_task, rate=f"{done / max(time.perf_counter() - start, 1e-9):.1f} frames/s")

        with contextlib.closing(predict_corpus(items, opts, model, workers, on_frames)) as outcomes:
            for outcome in outcomes:
                progress.update(files_task, description=outcome.item.path.name)
                progress.advance(files_task)
                record = tally.take(outcome)
                if record is not None and json_lines:
                    sys.stdout.write(json.dumps(record.to_dict()) + "\n")
                    sys.stdout.flush()
    common.info_line(tally.summary(time.perf_counter() - start, output))
    if tally.failed:
        raise typer.Exit(common.EXIT_FAILED)


def _predict_stream(specs: list[str], output: Path, raw: str | None, pix_fmt: str, fps: float,
                    threshold: str | None, video_format: str, grids: bool, overwrite: bool, json_lines: bool,
                    batch_size: int, keep_partial: bool, weights: str | None, device: str, start: float) -> int:
    """One input read as a stream (stdin, --raw) and/or written to stdout (-o -); returns the exit code."""
    from ..errors import UsageError
    from ..inference import load_model
    from ..runner import PredictOptions, predict_stream
    from ..sources import STDIN, STDOUT_NAME, open_sink, open_source, parse_size, sink_path

    to_stdout = str(output) == STDIN
    if len(specs) != 1:
        raise UsageError("stdin ('-'), --raw and -o - work on exactly one input; "
                         f"got {len(specs)}: {' '.join(specs)}")
    if grids:
        raise UsageError("--grids needs file inputs and an output folder, not stdin, --raw or -o -")
    if to_stdout and json_lines:
        raise UsageError("--json and -o - would both write to stdout; drop one")
    if to_stdout and sys.stdout.isatty():
        raise UsageError("-o - writes binary masks to stdout, which is a terminal; redirect it (> mask.png) or pipe it")
    source = open_source(specs[0], parse_size(raw) if raw is not None else None, pix_fmt, fps)
    model = load_model(weights, device, common.state.engine)
    opts = PredictOptions(output_dir=Path(".") if to_stdout else output,
                          threshold=parse_threshold(threshold, model.threshold), video_format=video_format,
                          overwrite=overwrite, batch_size=batch_size, keep_partial=keep_partial)
    sink = open_sink(output, source, video_format, overwrite, keep_partial)
    target = STDOUT_NAME if to_stdout else str(sink_path(output, source, video_format))
    record = predict_stream(model, source, sink, opts, target)
    if not record.complete:
        common.error_line(record.error or f"{source.name}: incomplete")
    if json_lines:
        sys.stdout.write(json.dumps(record.to_dict()) + "\n")
        sys.stdout.flush()
    elapsed = time.perf_counter() - start
    common.info_line(f"[green]done[/]: {source.name} ({source.kind}), {record.frames} frame(s) {record.width}x"
                     f"{record.height}, {elapsed:.1f} s -> {target}")
    return common.EXIT_OK if record.complete else common.EXIT_FAILED


def register(app: typer.Typer) -> None:
    # No no_args_is_help: `cat face.jpg | skinmask predict` reads stdin; on a terminal it is a usage error.
    app.command()(predict)
