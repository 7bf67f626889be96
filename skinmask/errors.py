"""Typed errors. Each carries a one-line message that names the file and the problem."""

from __future__ import annotations

from pathlib import Path


class SkinmaskError(Exception):
    """Base class: a problem a user can act on, shown as one line without a traceback."""

    exit_code = 1

    def __init__(self, message: str, path: str | Path | None = None) -> None:
        self.path = None if path is None else str(path)
        super().__init__(f"{self.path}: {message}" if self.path else message)


class InputError(SkinmaskError):
    """An input file or stream cannot be read or decoded."""


class IncompleteVideoError(InputError):
    """A video stopped decoding early; the frames before the damage were processed."""

    def __init__(self, message: str, path: str | Path | None = None, frames: int = 0) -> None:
        self.frames = frames
        super().__init__(message, path)


class OutputError(SkinmaskError):
    """An output cannot be written (permissions, disk full, would overwrite, clashes with input)."""


class WeightsError(SkinmaskError):
    """A weights file is missing, corrupt or does not fit the model."""


class UsageError(SkinmaskError):
    """The command was called with options that do not fit together."""

    exit_code = 2


class DeviceError(SkinmaskError):
    """The requested compute device is not available."""

    exit_code = 2


class NoFaceError(InputError):
    """A face region was asked for and no frame of the input holds a face."""
