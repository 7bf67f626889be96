"""A run over many inputs: leftovers swept, finished inputs skipped, the rest processed, results in input order.

The processing itself is a callable (:func:`each` on this machine's threads, or
:meth:`skinmask.cluster.Cluster.process` on Dask workers) over the library call that a single input goes
through, so a corpus run and a one-file run write the same bytes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .atomic import sweep_stale
from .inputs import InputItem
from .parallel import Cancelled, ordered_map

FramesCallback = Callable[[int], None]


@dataclass
class Outcome:
    """What became of one input: the library call's record, or the one-line error, or skipped."""

    item: InputItem
    record: Any = None  # a runner.Record (predict) or trace.TraceRecord
    error: str | None = None  # one line naming the input
    skipped: bool = False  # --skip-existing: all its outputs were already there


def default_jobs() -> int:
    """Inputs processed at once on this machine: one per core (SKINMASK_THREADS overrides)."""
    from .engines import default_threads

    return default_threads()


def each(
    fn: Callable[[InputItem, FramesCallback], Any],
    items: list[InputItem],
    on_frames: FramesCallback | None = None,
    jobs: int | None = None,
) -> Iterator[Outcome]:
    """``fn(item, on_frames)`` for every item, several at once, as Outcomes in input order.

    ``fn`` raises a SkinmaskError for a failed input (it becomes the Outcome's error line); when the
    run stops early the next ``on_frames`` call inside ``fn`` raises, so a long video ends promptly.
    """

    def one(item: InputItem, stop: threading.Event) -> Any:
        def frames(n: int) -> None:
            if stop.is_set():
                raise Cancelled
            if on_frames is not None:
                on_frames(n)

        return fn(item, frames)

    for item, record, error in ordered_map(one, items, jobs or default_jobs()):
        yield Outcome(item, record, None if error is None else str(error))


def _finished(item: InputItem, outputs: list[Path]) -> bool:
    """All outputs exist, and none of them is the input itself (that stays an error, not a skip)."""
    return all(p.exists() for p in outputs) and not any(p.resolve() == item.path.resolve() for p in outputs)


def run(
    items: list[InputItem],
    outputs_of: Callable[[InputItem], list[Path]],
    process: Callable[[list[InputItem]], Iterator[Outcome]],
    skip_existing: bool = False,
    sweep_in: Callable[[InputItem], Iterable[Path]] | None = None,
) -> Iterator[Outcome]:
    """Process ``items`` with ``process``, yielding one Outcome per item in input order.

    Before and after, temporaries of these outputs that a dead writer left (a killed run, a lost
    worker) are removed; folders from ``sweep_in`` lose every abandoned temporary. With
    ``skip_existing`` an item whose ``outputs_of`` all exist is skipped: outputs appear only
    complete (written under a temporary name, renamed when done), so existing means finished.
    """
    scope: dict[Path, set[str] | None] = {}
    for item in items:
        for out in outputs_of(item):
            names = scope.setdefault(out.parent, set())
            if names is not None:
                names.add(out.name)
        for folder in sweep_in(item) if sweep_in is not None else ():
            scope[folder] = None

    def sweep() -> None:
        for folder, names in scope.items():
            sweep_stale(folder, names)

    sweep()
    done = [skip_existing and _finished(item, outputs_of(item)) for item in items]
    results = process([item for item, d in zip(items, done) if not d])
    try:
        for item, d in zip(items, done):
            yield Outcome(item, skipped=True) if d else next(results)
    finally:
        close = getattr(results, "close", None)
        if close is not None:
            close()
    sweep()
