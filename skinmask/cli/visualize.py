"""`skinmask visualize`: what the 32 filters and the 1x1 projection do (filters, activations, overlay)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from . import common
from .common import DebugOpt, DeviceOpt, OverwriteOpt, QuietOpt, WeightsOpt

visualize_app = typer.Typer(
    name="visualize",
    help="Pictures of the network: its filters, one image's 32 activation maps, the mask over the input.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)


class Sort(str, Enum):
    index = "index"
    weight = "weight"


WidthOpt = Annotated[int, typer.Option("--width", min=640, max=8000, help="Sheet width in pixels.")]
SortOpt = Annotated[Sort, typer.Option("--sort", help="Tile order: filter index, or projection weight (+ to -).")]


def _check_output(output: Path, overwrite: bool, source: Path | None = None) -> None:
    """predict's rule: never over the input; an existing output is kept unless --overwrite."""
    from ..atomic import refuse_existing
    from ..errors import OutputError

    if source is not None and output.exists() and output.resolve() == source.resolve():
        raise OutputError(f"output would overwrite the input {source}; choose another -o", output)
    refuse_existing(output, overwrite)


@visualize_app.command("filters")
def filters(
    output: Annotated[Path, typer.Option("--output", "-o", help="Sheet file (.png).")] = Path("filters.png"),
    weights: WeightsOpt = None,
    device: DeviceOpt = "auto",
    overwrite: OverwriteOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Draw the model's 32 first-layer filters and its sorted 1x1 projection weights.

    Each 3x3 RGB kernel is enlarged in a 4x8 grid and labelled with its index and projection weight;
    beside it the 32 weights are a bar chart sorted by value, with the bias. For stem variants
    (softconv-ctx) conv1 does not see RGB: its tiles show per-feature-map weights, and the stem's
    first (RGB) layer is drawn above them.

    Example:

      skinmask visualize filters -o filters.png
    """
    common.setup(debug, quiet)
    from ..inference import load_model
    from ..visualize import filters_sheet, write_image

    _check_output(output, overwrite)
    model = load_model(weights, device)
    write_image(output, filters_sheet(model))
    common.info_line(f"[green]wrote[/] {output}")


@visualize_app.command("activations")
def activations(
    source: Annotated[Path, typer.Argument(metavar="INPUT", help="An image or a video.", show_default=False)],
    output: Annotated[Optional[Path], typer.Option(
        "--output", "-o", help="Sheet file (.png); with --every a folder. (default: <stem>.grid.png, "
        "<stem>.grids/)", show_default=False)] = None,
    frame: Annotated[Optional[int], typer.Option("--frame", min=0, help="Video frame to show (0-based). "
                                                 "(default: 0)", show_default=False)] = None,
    every: Annotated[Optional[int], typer.Option("--every", min=1, help="Video: a sheet for every Nth frame, "
                                                 "written as <folder>/NNNNNN.png.", show_default=False)] = None,
    sort: SortOpt = Sort.index,
    width: WidthOpt = 1600,
    weights: WeightsOpt = None,
    device: DeviceOpt = "auto",
    overwrite: OverwriteOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Draw one image's (or video frame's) 32 tanh activation maps beside the input, mask and overlay.

    Tiles share one -1..1 diverging scale (colour bar under the grid) and are labelled with the filter
    index and its projection weight. The same drawer makes `predict --grids`.

    Examples:

      skinmask visualize activations face.jpg -o grid.png

      skinmask visualize activations face.mp4 --frame 120 -o grid.png

      skinmask visualize activations face.mp4 -o grids/ --every 30
    """
    common.setup(debug, quiet)
    from ..errors import UsageError
    from ..inference import load_model
    from ..media import is_video, read_image, seek_frame
    from ..visualize import activations_sheet, video_activation_sheets, write_image

    video = is_video(source)
    if not video and (frame is not None or every is not None):
        raise UsageError(f"--frame and --every are for videos; {source} is read as an image")
    if frame is not None and every is not None:
        raise UsageError("--frame and --every do not go together: one sheet, or one per Nth frame")
    if every is not None:
        folder = output if output is not None else Path(source.stem + ".grids")
        if folder.exists() and not folder.is_dir():
            raise UsageError(f"with --every, -o names a folder; {folder} is a file")
        sheets = sorted(folder.glob("[0-9][0-9][0-9][0-9][0-9][0-9].png")) if folder.is_dir() else []
        if sheets:  # sheets of an earlier run: kept unless --overwrite
            _check_output(sheets[0], overwrite)
        model = load_model(weights, device)
        count = 0
        for index, sheet in video_activation_sheets(model, source, every, sort=sort.value, width=width):
            write_image(folder / f"{index:06d}.png", sheet)
            count += 1
        common.info_line(f"[green]wrote[/] {count} sheet(s) to {folder}/")
        return
    out = output if output is not None else Path(source.stem + ".grid.png")
    _check_output(out, overwrite, source)
    model = load_model(weights, device)
    if video:
        index = frame or 0
        picture = seek_frame(source, index)
        note, title = f"{source.name}, frame {index}", f"Activation maps - {source.name}, frame {index}"
    else:
        picture = read_image(source)
        note, title = source.name, f"Activation maps - {source.name}"
    write_image(out, activations_sheet(model, picture, sort=sort.value, width=width, note=note, title=title))
    common.info_line(f"[green]wrote[/] {out}")


@visualize_app.command("overlay")
def overlay(
    source: Annotated[Path, typer.Argument(metavar="INPUT", help="An image or a video.", show_default=False)],
    output: Annotated[Optional[Path], typer.Option(
        "--output", "-o", help="Image (.png/.jpg) or, for a video, an .mp4. (default: <stem>.overlay.png / "
        ".overlay.mp4)", show_default=False)] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Video frames per model call.")] = 4,
    weights: WeightsOpt = None,
    device: DeviceOpt = "auto",
    overwrite: OverwriteOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Tint the skin mask over the input (opacity from the probability) to judge quality at a glance.

    Videos become an H.264 .mp4 (yuv420p, index first: browsers play it); MPEG-4 Part 2 only where no
    H.264 encoder is at hand.

    Examples:

      skinmask visualize overlay face.jpg -o face.overlay.png

      skinmask visualize overlay face.mp4 -o face.overlay.mp4
    """
    common.setup(debug, quiet)
    from ..errors import UsageError
    from ..inference import load_model
    from ..media import is_video, read_image
    from ..visualize import overlay_image, write_image, write_overlay_video

    video = is_video(source)
    out = output if output is not None else Path(source.stem + (".overlay.mp4" if video else ".overlay.png"))
    if video and out.suffix.lower() != ".mp4":
        raise UsageError(f"a video's overlay is written as .mp4, not {out.suffix or 'no suffix'} ({out})")
    _check_output(out, overwrite, source)
    model = load_model(weights, device)
    if video:
        n = write_overlay_video(model, source, out, batch_size=batch_size)
        common.info_line(f"[green]wrote[/] {out} ({n} frames)")
    else:
        write_image(out, overlay_image(model, read_image(source)))
        common.info_line(f"[green]wrote[/] {out}")


def register(app: typer.Typer) -> None:
    app.add_typer(visualize_app, name="visualize")
