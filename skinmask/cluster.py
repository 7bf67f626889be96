"""Corpus runs on Dask distributed: a LocalCluster here, or a running scheduler's workers.

One task per video and one per chunk of images; each task calls the library function a run
without a cluster calls (``predict_items``, ``trace_items``, ``evaluate_clip``), so the outputs are
the same bytes. A worker process loads the model once and keeps it. Dask schedules, moves and
retries the work: a task whose worker is lost runs again elsewhere, and since outputs are written
under a temporary name and renamed, nothing partial ever appears under a final name.

Workers must have skinmask installed and see the inputs, outputs and weights at the same paths
(a shared filesystem). Needs ``pip install 'skinmask[cluster]'``.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from .corpus import Outcome
from .errors import UsageError
from .inputs import InputItem

RETRIES = 2  # a task that raised is tried again this often; lost workers are Dask's allowed-failures (3)
IMAGES_PER_TASK = 16  # big enough that a task outweighs its scheduling, small enough to spread a folder
ENV_ADDRESS = "DASK_SCHEDULER_ADDRESS"


@dataclass(frozen=True)
class ModelSpec:
    """How a worker loads the model: the arguments of :func:`skinmask.inference.load_model`."""

    weights: str | None
    device: str = "auto"
    engine: str = "auto"


_models: dict[ModelSpec, Any] = {}
_models_guard = threading.Lock()


def worker_model(spec: ModelSpec) -> Any:
    """The model for ``spec``, loaded once per worker process."""
    with _models_guard:
        if spec not in _models:
            from .inference import load_model

            if not _models:
                _adaptive_malloc()
            _models[spec] = load_model(spec.weights, spec.device, spec.engine)
        return _models[spec]


def _adaptive_malloc() -> None:
    """Undo what Dask's nanny's MALLOC_TRIM_THRESHOLD_ does to frames.

    Setting it turns off glibc's adaptive mmap threshold, so every decoded frame (a megabyte at 480p)
    becomes a fresh mmap, page faults and munmap: measured 5x the system time of a plain run on a
    640x480 video. Thresholds near what the adaptive rule reaches bring it back; memory stays bounded
    by the pipeline's queues either way.
    """
    if "MALLOC_TRIM_THRESHOLD_" not in os.environ or not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc
        return
    m_trim_threshold, m_mmap_threshold = -1, -3
    mallopt(m_mmap_threshold, 32 * 1024 * 1024)  # glibc's ceiling for the adaptive threshold (64-bit)
    mallopt(m_trim_threshold, 64 * 1024 * 1024)  # twice it, as the adaptive rule keeps it


def model_spec(model: Any) -> ModelSpec:
    """The spec that loads ``model`` again in another process (same weights file, device, engine)."""
    path = getattr(model, "weights_path", None)
    return ModelSpec(None if path is None else str(path.resolve()), str(model.device), model.engine)


def parse_address(address: str) -> tuple[str, int | None]:
    """'local' / 'local:N' -> ('local', N or None); 'env' -> $DASK_SCHEDULER_ADDRESS; else a scheduler address."""
    if address == "env":
        value = os.environ.get(ENV_ADDRESS, "").strip()
        if not value:
            raise UsageError(f"--cluster env reads the scheduler address from {ENV_ADDRESS}, which is not set")
        return value, None
    if address == "local":
        return "local", None
    if address.startswith("local:"):
        n = address.partition(":")[2]
        if not n.isdigit() or int(n) < 1:
            raise UsageError(f"--cluster {address}: the worker count after 'local:' must be a positive integer")
        return "local", int(n)
    if "://" not in address and ":" not in address:
        raise UsageError(f"--cluster {address!r}: use local, local:N, env, or a scheduler address such as "
                         "tcp://host:8786")
    return address, None


def require_dask() -> Any:
    """The distributed module, or a UsageError saying how to install it."""
    try:
        import distributed
    except ImportError:
        raise UsageError("--cluster needs Dask distributed: pip install 'skinmask[cluster]'") from None
    return distributed


class Cluster:
    """A Dask client (and the LocalCluster it started, if any); use as a context manager.

    ``local:N`` starts N single-threaded worker processes here, the model in each running on
    cores / N threads (``local``: one worker per core).
    """

    def __init__(self, address: str) -> None:
        where, n = parse_address(address)
        distributed = require_dask()
        self._local = None
        if where == "local":
            from .engines import default_threads

            cores = default_threads()
            n = n or cores
            with warnings.catch_warnings():  # "port 8787 in use": its health endpoint moves elsewhere, harmlessly
                warnings.simplefilter("ignore", UserWarning)
                self._local = distributed.LocalCluster(
                    n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                    env={"SKINMASK_THREADS": str(max(1, cores // n))}, silence_logs=50)
            self.client = distributed.Client(self._local)
        else:
            try:
                self.client = distributed.Client(where, timeout="20s")
            except OSError as exc:
                raise UsageError(f"--cluster {address}: cannot reach a Dask scheduler there ({exc})") from None

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def worker_count(self) -> int:
        """Workers connected to the scheduler now (a SLURM or Kubernetes cluster may still be starting them)."""
        return len(self.client.scheduler_info().get("workers", {}))

    def close(self) -> None:
        self.client.close()
        if self._local is not None:
            self._local.close()

    def map_ordered(self, fn: Callable[..., Any], calls: Sequence[tuple], on_done: Callable[[int, Any], None] | None
                    = None) -> Iterator[tuple[Any, str | None]]:
        """Run ``fn(*args)`` for each ``args`` in ``calls`` as tasks; yield ``(result, None)`` or ``(None,
        error line)`` in call order. ``on_done(index, result)`` runs as each task finishes (any order)."""
        distributed = require_dask()
        futures = [self.client.submit(fn, *args, pure=False, retries=RETRIES) for args in calls]
        index = {f.key: i for i, f in enumerate(futures)}
        ready: dict[int, tuple[Any, str | None]] = {}
        nxt = 0
        try:
            for future in distributed.as_completed(futures):
                i = index[future.key]
                if future.status == "finished":
                    ready[i] = (future.result(), None)
                else:
                    try:
                        exc = future.exception()
                    except Exception as lost:  # cancelled by the scheduler (e.g. it restarted)
                        exc = lost
                    what = ("its worker was lost too often" if type(exc).__name__ == "KilledWorker"
                            else f"{type(exc).__name__}: {exc}")
                    ready[i] = (None, f"task failed on the cluster ({what})")
                futures[i] = None  # type: ignore[call-overload]  # let the scheduler forget it
                if on_done is not None:
                    on_done(i, ready[i][0])
                while nxt in ready:
                    yield ready.pop(nxt)
                    nxt += 1
        finally:
            live = [f for f in futures if f is not None]
            if live:
                self.client.cancel(live)

    def map_with_model(self, fn: Callable[..., Iterable[Any]], model: Any, calls: Sequence[tuple],
                       on_done: Callable[[int, Any], None] | None = None) -> Iterator[tuple[list | None, str | None]]:
        """``list(fn(model, *args))`` for each ``args`` as tasks, as :meth:`map_ordered`; each worker loads
        ``model``'s weights once (``model`` None: ``fn`` gets None)."""
        spec = None if model is None else model_spec(model)
        return self.map_ordered(_with_model, [(fn, spec, *args) for args in calls], on_done)

    def process(self, items_fn: Callable[..., Iterator[Outcome]], model: Any, opts: Any,
                on_frames: Callable[[int], None] | None = None) -> Callable[[list[InputItem]], Iterator[Outcome]]:
        """A ``process`` for :func:`skinmask.corpus.run`: ``items_fn(model, chunk, opts)`` on the workers, one
        task per video and per chunk of images; ``on_frames`` counts each task's frames as it finishes."""

        def done(i: int, outcomes: list[Outcome] | None) -> None:
            if on_frames is not None and outcomes:
                on_frames(sum(getattr(o.record, "frames", 0) for o in outcomes if o.record is not None))

        def run(items: list[InputItem]) -> Iterator[Outcome]:
            chunks = chunk_items(items)
            with contextlib.closing(self.map_with_model(items_fn, model, [(c, opts) for c in chunks], done)) as results:
                for chunk, (outcomes, error) in zip(chunks, results):
                    if error is not None:
                        outcomes = [Outcome(item, error=f"{item.path}: {error}") for item in chunk]
                    yield from outcomes or []

        return run


def _with_model(fn: Callable[..., Iterable[Any]], spec: ModelSpec | None, *args: Any) -> list:
    """One task: a plain-run library function with this worker's cached model."""
    return list(fn(None if spec is None else worker_model(spec), *args))


def chunk_items(items: list[InputItem], size: int = IMAGES_PER_TASK) -> list[list[InputItem]]:
    """Consecutive inputs grouped into tasks: each video alone, images up to ``size`` together."""
    chunks: list[list[InputItem]] = []
    for item in items:
        if item.kind == "video" or not chunks or chunks[-1][0].kind == "video" or len(chunks[-1]) >= size:
            chunks.append([item])
        else:
            chunks[-1].append(item)
    return chunks
