"""Many inputs on one machine: each input's own work (decode, model, encode) in a few threads at once.

OpenCV and onnxruntime release the GIL, so while one input is being decoded or encoded another
is in the model, and every core stays busy. Results come back in input order: at most ``jobs``
inputs run at once and at most ``window`` are started ahead of the oldest unfinished one (its
results wait, small records), so memory stays bounded however long the list, and one long video
does not leave the other cores idle.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from .errors import SkinmaskError

T = TypeVar("T")
R = TypeVar("R")


class Cancelled(BaseException):
    """Raised inside a worker thread when the run is being stopped (Ctrl-C, SIGTERM, an error)."""


def ordered_map(
    fn: Callable[[T, threading.Event], R], items: Sequence[T], jobs: int, window: int = 256
) -> Iterator[tuple[T, R | None, SkinmaskError | None]]:
    """Yield ``(item, fn(item, stop), None)``, or ``(item, None, error)`` for a SkinmaskError, in input order.

    ``fn`` runs in up to ``jobs`` threads (in this thread when ``jobs`` is 1 or there is one item, so a
    single video runs exactly as before). ``stop`` is set when the consumer stops early: a long ``fn``
    should check it and raise :class:`Cancelled`, so the run ends promptly and its outputs are cleaned
    up. Any other exception is a bug: it stops the run and propagates.
    """
    stop = threading.Event()
    if jobs <= 1 or len(items) <= 1:
        for item in items:
            try:
                value = fn(item, stop)
            except SkinmaskError as exc:
                yield item, None, exc
                continue
            yield item, value, None
        return

    def call(item: T) -> R:
        if stop.is_set():
            raise Cancelled
        return fn(item, stop)

    pool = ThreadPoolExecutor(jobs, thread_name_prefix="skinmask-input")
    pending: deque[tuple[T, Future]] = deque()
    todo = iter(items)
    end = object()
    try:
        for item in todo:
            pending.append((item, pool.submit(call, item)))
            if len(pending) >= max(window, jobs):
                break
        while pending:
            item, future = pending.popleft()
            try:
                value, error = future.result(), None
            except SkinmaskError as exc:
                value, error = None, exc
            nxt = next(todo, end)
            if nxt is not end:
                pending.append((nxt, pool.submit(call, nxt)))
            yield item, value, error
    finally:
        stop.set()
        for _, future in pending:
            future.cancel()
        pool.shutdown(wait=True)
