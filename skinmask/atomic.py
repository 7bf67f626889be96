"""Write-then-rename, so a crash never leaves a truncated file under its final name."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

PARTIAL_TAG = ".partial"


@contextlib.contextmanager
def atomic_path(final: Path, keep_partial: bool = False) -> Iterator[Path]:
    """Yield a unique temporary path beside ``final`` (same suffix); rename it into place on success.

    On any exception (KeyboardInterrupt included) the temporary file is removed, or renamed to
    ``<stem>.partial<suffix>`` when ``keep_partial`` is set.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{final.stem}.", suffix=f".tmp{final.suffix}", dir=final.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            if keep_partial and tmp.exists() and tmp.stat().st_size > 0:
                os.replace(tmp, final.with_name(final.stem + PARTIAL_TAG + final.suffix))
            else:
                tmp.unlink()
        raise
