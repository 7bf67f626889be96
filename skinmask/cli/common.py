"""Options shared by many commands, the stderr console, and the one place errors become exit codes."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

# Data goes to stdout (files, CSV, JSON lines); everything a person reads goes to stderr.
console = Console(stderr=True, highlight=False)

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


@dataclass
class RunState:
    debug: bool = False
    quiet: bool = False
    engine: str = "auto"  # --engine, for every load_model call of the command


state = RunState()

WeightsOpt = Annotated[
    Optional[str],
    typer.Option("--weights", "-w", help="Weights file (.safetensors) or a shipped model name. [default: the shipped default]",
                 show_default=False, metavar="PATH"),
]
DeviceOpt = Annotated[
    str, typer.Option("--device", help="auto | cpu | cuda. Asking for cuda where there is none is an error.")
]


class EngineChoice(str, Enum):
    auto = "auto"
    onnxruntime = "onnxruntime"
    torch = "torch"


EngineOpt = Annotated[
    EngineChoice,
    typer.Option("--engine", help="What runs the network: onnxruntime (fast; the default when installed), "
                 "torch (eager PyTorch, the reference), or auto. Masks agree within 1/255."),
]


class Region(str, Enum):
    """Where trace and pulse average colour (values = skinmask.trace.REGIONS)."""

    face_skin = "face-skin"
    face = "face"
    skin = "skin"
    whole = "whole"
    ycrcb = "ycrcb"


DEFAULT_REGION = Region.face  # = trace.DEFAULT_REGION; a literal so the CLI's start-up does not import numpy
REGION_HELP = ("Where colour is averaged: face-skin (the tracked face, minus eyes and mouth, weighted by skin "
               "probability), face (the same region, every pixel alike), skin (the skin model anywhere in the "
               "frame: no face needed), and the baselines whole (every pixel) and ycrcb (Chai & Ngan rule).")
FaceOpt = Annotated[Optional[int], typer.Option("--face", min=0, help="Which face when there are several: its "
                                                "index, left to right from 0. [default: the largest]",
                                                show_default=False)]

QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Only error lines on stderr: no progress, no summary.")]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show tracebacks and OpenCV/FFmpeg warnings.")]
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help="Replace outputs that already exist.")]
ClusterOpt = Annotated[Optional[str], typer.Option(
    "--cluster", metavar="ADDRESS", help="Spread the inputs over Dask workers: 'local' (one worker process per "
    "core here), 'local:N', a scheduler address (tcp://host:8786) or 'env' ($DASK_SCHEDULER_ADDRESS). Workers "
    "must see the same paths. Needs pip install 'skinmask[cluster]'.", show_default=False)]
SkipExistingOpt = Annotated[bool, typer.Option(
    "--skip-existing", help="Skip inputs whose outputs all exist (a resumed run); they count as skipped, not "
    "failed. Outputs are only ever complete, so an existing one is a finished one.")]
OutputDirOpt = Annotated[Path, typer.Option("--output", "-o", help="Output folder ('-' for stdout where supported).")]


def setup(debug: bool = False, quiet: bool = False, engine: str | EngineChoice = "auto") -> None:
    """Record the verbosity flags (and --engine) and apply them to the libraries underneath."""
    state.debug, state.quiet = debug, quiet
    state.engine = engine.value if isinstance(engine, EngineChoice) else str(engine)
    from .. import media

    media.set_debug(debug)


def check_cluster(address: str | None) -> None:
    """--cluster usage errors (bad address, Dask not installed) before any work."""
    if address is not None:
        from ..cluster import parse_address, require_dask

        parse_address(address)
        require_dask()


def open_cluster(address: str | None):
    """A :class:`skinmask.cluster.Cluster` for --cluster, or a do-nothing context without it."""
    import contextlib

    if address is None:
        return contextlib.nullcontext(None)
    from ..cluster import Cluster

    cluster = Cluster(address)
    if cluster.worker_count() == 0:
        warn_line(f"--cluster {address}: the scheduler has no workers yet; the tasks wait for them")
    return cluster


def checked_items(items: list, input_errors: list) -> None:
    """One error line per input that matched nothing; stop (exit 1) when nothing is left to do."""
    from ..inputs import check_output_collisions

    for err in input_errors:
        error_line(str(err))
    check_output_collisions(items)
    if not items:
        raise typer.Exit(EXIT_FAILED)


@dataclass
class Tally:
    """Counts for a run over many inputs, and its summary line."""

    inputs: int
    failed: int = 0  # start with the inputs that matched nothing
    written: int = 0
    skipped: int = 0
    frames: int = 0

    def take(self, outcome) -> object | None:
        """Count one :class:`skinmask.corpus.Outcome`, print its error line; its record when it has one."""
        record = outcome.record
        if outcome.skipped:
            self.skipped += 1
            return None
        if outcome.error is not None:
            self.failed += 1
            error_line(outcome.error)
            return None
        self.frames += record.frames
        if record.complete:
            self.written += 1
        else:
            self.failed += 1
            error_line(record.error or f"{outcome.item.path}: incomplete")
        return record

    def summary(self, elapsed: float, output: Path) -> str:
        return (f"[green]done[/]: {self.inputs} input(s), {self.written} written, {self.skipped} skipped, "
                f"{self.frames} frame(s), {self.failed} failed, {elapsed:.1f} s "
                f"({self.frames / elapsed if elapsed else 0:.1f} frames/s) -> {output}")


def check_resume_options(overwrite: bool, skip_existing: bool) -> None:
    from ..errors import UsageError

    if overwrite and skip_existing:
        raise UsageError("--overwrite redoes every input, --skip-existing keeps finished ones; choose one")


def error_line(message: str) -> None:
    """One red line on stderr (the message is shown as is: brackets in file names are not markup)."""
    from rich.markup import escape

    console.print(f"[bold red]error:[/] {escape(message)}", markup=True, highlight=False, soft_wrap=True)


def warn_line(message: str) -> None:
    if not state.quiet:
        console.print(f"[yellow]warning:[/] {message}", soft_wrap=True)


def info_line(message: str) -> None:
    if not state.quiet:
        console.print(message, soft_wrap=True)


def progress_enabled() -> bool:
    return not state.quiet and sys.stderr.isatty()


def make_progress():
    """A Rich progress display on stderr (disabled when quiet or stderr is not a terminal)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(), TimeRemainingColumn(), console=console, disable=not progress_enabled(), transient=True,
    )
