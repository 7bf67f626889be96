"""Heap tuning: freed large blocks stay in the process for reuse instead of going back to the kernel.

glibc gives blocks above its mmap threshold (at most 32 MiB by default) their own mapping and unmaps them on
free. A training step allocates activations and gradients of that size (16 x 32 x 128 x 128 float32 = 32 MiB)
and frees them again, so each step page-faulted them back in: a third of a step went to the kernel. Kept in
the heap, the same training runs ~1.6-2x faster with bit-identical weights (``benchmarks/bench_train.py``).
Only training applies it: for ``predict`` no gain was measured. ``SKINMASK_MALLOC_TUNING=0`` keeps glibc's
defaults (for that benchmark).
"""

from __future__ import annotations

import os
import sys

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameters (malloc.h)
_KEEP_BYTES = 1 << 30


def reuse_freed_memory() -> bool:
    """Ask glibc to keep freed blocks of up to 1 GiB for reuse rather than return them to the kernel at once.
    True where it took effect; False off glibc, or with SKINMASK_MALLOC_TUNING=0. Changes no result."""
    import ctypes
    import ctypes.util

    if os.environ.get("SKINMASK_MALLOC_TUNING", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, _KEEP_BYTES)) and bool(mallopt(_M_TRIM_THRESHOLD, 2 * _KEEP_BYTES))
