"""Write-then-rename, so a crash never leaves a truncated file under its final name.

Each temporary output is locked (``flock``) by the process writing it until it is renamed or removed;
the kernel drops the lock when that process dies, even by SIGKILL, so :func:`sweep_stale` can tell a
dead writer's leftover from a live one's work in progress (another run, another Dask worker).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Collection, Iterator
from pathlib import Path

from .errors import OutputError
try:
    import fcntl
except ImportError:  # no flock (Windows): temporaries are written as before, never swept
    fcntl = None  # type: ignore[assignment]

PARTIAL_TAG = ".partial"
# What temp_beside names a temporary: "." + stem + "." + tempfile's 8 random characters + ".tmp" + suffix.
_TEMP_NAME = re.compile(r"^\.(?P<stem>.+)\.[a-z0-9_]{8}\.tmp(?P<suffix>\.[^.]*)?$")
_held: dict[str, int] = {}  # temporary path -> the descriptor that holds its lock
_held_guard = threading.Lock()


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
        _hold(tmp, os.open(tmp, os.O_RDONLY))
        return tmp
    fd, name = tempfile.mkstemp(prefix=f".{final.stem}.", suffix=f".tmp{final.suffix}", dir=final.parent)
    os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; outputs get the usual permissions
    _hold(Path(name), fd)
    return Path(name)


def _hold(tmp: Path, fd: int) -> None:
    """Keep ``fd`` open with an exclusive lock on ``tmp`` until :func:`_release`."""
    if fcntl is not None:
        with contextlib.suppress(OSError):  # a filesystem without locks: the temporary is simply never swept
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    with _held_guard:
        _held[str(tmp)] = fd


def _release(tmp: Path) -> None:
    with _held_guard:
        fd = _held.pop(str(tmp), None)
    if fd is not None:
        os.close(fd)


def final_name(temp_name: str) -> str | None:
    """The output name a temporary made by :func:`temp_beside` stands for (None: not one of ours)."""
    m = _TEMP_NAME.match(temp_name)
    return None if m is None else m["stem"] + (m["suffix"] or "")


def _abandoned(path: str) -> bool:
    """Whether no live process holds the lock of this temporary (its writer died)."""
    if fcntl is None:
        return False
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:  # held by a live writer (or locks unsupported): leave it
        return False
    finally:
        os.close(fd)


def sweep_stale(folder: Path, finals: Collection[str] | None = None) -> list[Path]:
    """Remove temporaries in ``folder`` whose writer died (a killed run or worker); return what went.

    Only temporaries of the output names in ``finals`` are considered (None: any). A temporary whose
    writer is alive, in this process or another, is locked and left alone.
    """
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        final = final_name(entry.name)
        if final is None or (finals is not None and final not in finals) or not _abandoned(entry.path):
            continue
        with contextlib.suppress(OSError):
            shutil.rmtree(entry.path) if entry.is_dir(follow_symlinks=False) else os.unlink(entry.path)
            removed.append(Path(entry.path))
    return removed


def partial_name(final: Path) -> Path:
    """Where an unfinished output is kept with --keep-partial: <stem>.partial<suffix>."""
    return final.with_name(final.stem + PARTIAL_TAG + final.suffix)


def discard(tmp: Path, final: Path, keep_partial: bool = False) -> None:
    """Remove a temporary output, or keep it under its partial name."""
    _release(tmp)
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
    try:
        os.replace(tmp, final)
    finally:
        _release(tmp)


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
