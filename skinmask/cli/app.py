"""The `skinmask` Typer app: command registration and the single error-to-exit-code mapping."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import traceback
from typing import NoReturn

import typer

from . import common

app = typer.Typer(
    name="skinmask",
    help="Skin masks from images and videos with a 1x1-projection (softconv) network.\n\n"
    "Exit codes: 0 all good, 1 some input failed, 2 usage error, 130/143 interrupted.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", help="Print the version and exit.", is_eager=True),
) -> None:
    if version:
        from .. import __version__

        typer.echo(f"skinmask {__version__}")
        raise typer.Exit()


# Each command module adds its commands to the app.
from . import predict as _predict  # noqa: E402
from . import trace as _trace  # noqa: E402
from . import visualize as _visualize  # noqa: E402
from . import train as _train  # noqa: E402
from . import evaluate as _evaluate  # noqa: E402
from . import pulse as _pulse  # noqa: E402

_predict.register(app)
_trace.register(app)
_visualize.register(app)
_train.register(app)
_evaluate.register(app)
_pulse.register(app)


class _Terminated(SystemExit):
    """SIGTERM, raised in the main thread so every `with` block closes its outputs on the way out."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise _Terminated(143)


def _is_broken_pipe(exc: BaseException | None) -> bool:
    """Whether ``exc`` is a write to a closed pipe, or was raised while handling one.

    Typer turns a BrokenPipeError inside a command into ``sys.exit(1)``; the SystemExit it raises
    carries the BrokenPipeError as its context.
    """
    while exc is not None:
        if isinstance(exc, BrokenPipeError):
            return True
        exc = exc.__context__
    return False


def _exit_quietly_on_closed_pipe() -> NoReturn:
    # Downstream closed the pipe (`| head -3`): stop quietly with 0, as Unix filters do. Point fd 1 at
    # /dev/null so the interpreter's final flush of anything still buffered cannot raise again.
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.__stdout__.fileno())
    sys.exit(0)


def _flush_stdout() -> None:
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _exit_quietly_on_closed_pipe()


def main() -> None:
    """Console-script entry point: run the app, map typed errors to one line and an exit code."""
    from ..errors import SkinmaskError

    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        code = app(standalone_mode=False)
    except typer.TyperException as exc:  # usage errors (bad option, missing argument): exit 2
        show = getattr(exc, "show", None)
        show() if show else common.error_line(exc.format_message())
        sys.exit(exc.exit_code)
    except SkinmaskError as exc:
        if common.state.debug:
            traceback.print_exc()
        common.error_line(str(exc))
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        common.error_line("interrupted")
        sys.exit(130)
    except BrokenPipeError:
        _exit_quietly_on_closed_pipe()
    except typer.Exit as exc:
        _flush_stdout()
        sys.exit(exc.exit_code)
    except _Terminated:
        common.error_line("terminated")
        sys.exit(143)
    except SystemExit as exc:
        if _is_broken_pipe(exc):
            _exit_quietly_on_closed_pipe()
        raise
    except Exception as exc:  # a bug, not a user error: still one line unless --debug
        if common.state.debug:
            traceback.print_exc()
        common.error_line(f"internal error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)")
        sys.exit(1)
    _flush_stdout()
    sys.exit(code if isinstance(code, int) else 0)
