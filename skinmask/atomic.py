"""Write-then-rename, so a crash never leaves a truncated file under its final name."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .errors import OutputError

PARTIAL_TAG = ".partial"


def refuse_existing(path: Path, overwrite: bool) -> None:
    """The rule for every output: an existing file (or folder) is kept unless ``overwrite`` (--overwrite)."""
    if Path(path).exists() and not overwrite:
        raise OutputError("already exists (use --overwrite to replace it)", path)


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _read_umask()  # read once at import: os.umask is process-wide and not thread-safe to probe


def temp_beside(final: Path, directory: bool = False) -> Path:
    """A new, uniquely named hidden file (or folder) next to ``final``, keeping its suffix for OpenCV."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    if directory:
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
        os.chmod(tmp, 0o777 & ~_UMASK)
        return tmp
    fd, name = tempfile.mkstemp(prefix=f".{final.stem}.", suffix=f".tmp{final.suffix}", dir=final.parent)
    os.close(fd)
    os.chmod(name, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; outputs get the usual permissions
    return Path(name)


def partial_name(final: Path) -> Path:
    """Where an unfinished output is kept with --keep-partial: <stem>.partial<suffix>."""
    return final.with_name(final.stem + PARTIAL_TAG + final.suffix)


def discard(tmp: Path, final: Path, keep_partial: bool = False) -> None:
    """Remove a temporary output, or keep it under its partial name."""
    with contextlib.suppress(OSError):
        if not tmp.exists():
            return
        has_content = any(tmp.iterdir()) if tmp.is_dir() else tmp.stat().st_size > 0
        if keep_partial and has_content:
            target = partial_name(final)
            if target.is_dir():
                shutil.rmtree(target)
            os.replace(tmp, target)
        elif tmp.is_dir():
            shutil.rmtree(tmp)
        else:
            tmp.unlink()


def commit(tmp: Path, final: Path) -> None:
    """Move a finished temporary output under its final name (replacing an older one)."""
    if tmp.is_dir():
        if final.is_dir():
            shutil.rmtree(final)
    else:  # writers that replace the temp file themselves (safetensors) leave it 0600
        os.chmod(tmp, 0o666 & ~_UMASK)
    os.replace(tmp, final)


@contextlib.contextmanager
def atomic_path(final: Path, keep_partial: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``final``; rename it into place on success, discard it on any exception."""
    final = Path(final)
    tmp = temp_beside(final)
    try:
        yield tmp
        commit(tmp, final)
    except BaseException:
        discard(tmp, final, keep_partial)
        raise
