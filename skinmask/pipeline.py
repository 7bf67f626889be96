"""The one frame pipeline behind predict, visualize and trace: frames in, probabilities (and maps) out.

Decoding runs in a background thread feeding a bounded queue (OpenCV releases the GIL), frames of one
size are batched for the model, and nothing holds more than a few frames, so memory stays flat
however long the video is.

Time travels with each frame: sources hand over :class:`skinmask.media.TimedFrame` records (a video's
presentation times from its container; raw frames and image sequences at index / fps), and every
:class:`FrameResult` carries its frame's ``time_s``.
"""

from __future__ import annotations

import math
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .inference import SkinModel
from .maps import mask_from_working, upsample_map
from .media import TimedFrame, VideoReader, is_video, read_image
from .temporal import FrameStream

_DONE = object()


@dataclass
class FrameResult:
    """One processed frame: its index and time, the BGR frame, the probability map and optionally the 32 maps.

    The map is carried at the network's working size (``small_prob``); ``prob`` upsamples it to the
    frame's size on first use and ``mask`` makes the 8-bit mask without a full-size float map.
    """

    index: int
    time_s: float  # presentation time in seconds from the stream's start (see skinmask.media.TimedFrame)
    frame: np.ndarray  # (H, W, 3) uint8 BGR
    small_prob: np.ndarray  # (h, w) float32 in 0..1, at the working size
    activations: np.ndarray | None = None  # (32, h, w) float32 in -1..1, when asked for
    _prob: np.ndarray | None = field(default=None, repr=False)

    @property
    def prob(self) -> np.ndarray:
        """(H, W) float32 skin probability at the frame's size."""
        if self._prob is None:
            self._prob = upsample_map(self.small_prob, self.frame.shape[:2])
        return self._prob

    def mask(self, threshold: float | None = None) -> np.ndarray:
        """(H, W) uint8 mask: see :func:`skinmask.maps.mask_from_working`."""
        return mask_from_working(self.small_prob, self.frame.shape[:2], threshold)


def iter_frames(path: str | Path) -> Iterator[np.ndarray]:
    """BGR frames of an image (one) or a video (streamed), raising InputError naming the file."""
    path = Path(path)
    if is_video(path):
        yield from VideoReader(path)
    else:
        yield read_image(path)


def prefetch(items: Iterable[np.ndarray], depth: int = 8) -> Iterator[np.ndarray]:
    """Iterate ``items`` in a background thread through a bounded queue; errors are re-raised here."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def worker() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(_DONE)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            q.put(exc)
        finally:
            close = getattr(items, "close", None)
            if stop.is_set() and close is not None:
                close()

    thread = threading.Thread(target=worker, name="skinmask-decode", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # drain so a blocked put can see the stop flag
            try:
                q.get_nowait()
            except queue.Empty:
                thread.join(0.05)


def timed(frames: Iterable[np.ndarray | TimedFrame], fps: float | None = None) -> Iterator[TimedFrame]:
    """The frames as TimedFrame records: those that come timed keep their time, plain arrays are at
    index / fps (NaN without an fps)."""
    for i, item in enumerate(frames):
        yield item if isinstance(item, TimedFrame) else TimedFrame(item, i / fps if fps else math.nan)


def batches(frames: Iterable[TimedFrame], size: int) -> Iterator[list[TimedFrame]]:
    """Group consecutive frames of the same shape into lists of at most ``size``."""
    batch: list[TimedFrame] = []
    for frame in frames:
        if batch and frame.image.shape != batch[0].image.shape:
            yield batch
            batch = []
        batch.append(frame)
        if len(batch) >= size:  # hand a full batch on now, not when the next frame arrives (live pipes)
            yield batch
            batch = []
    if batch:
        yield batch


def run_frames(
    model: SkinModel,
    frames: Iterable[np.ndarray | TimedFrame],
    batch_size: int = 4,
    want_activations: Callable[[int], bool] | None = None,
    fps: float | None = None,
    stream: FrameStream | None = None,
) -> Iterator[FrameResult]:
    """Run the model over a frame stream (the frames of one video), yielding one FrameResult per frame, in order.

    ``frames`` are TimedFrame records (e.g. :meth:`skinmask.media.VideoReader.timed`) or plain BGR
    arrays, which are timed at index / ``fps`` (see :func:`timed`).

    ``want_activations(i)`` says which frames also carry their 32 activation maps (costly: keep rare).
    ``stream`` carries the video's state (:class:`skinmask.temporal.FrameStream`: the person prior
    refreshed every few frames, the motion-adaptive smoothing of the maps); default: a fresh one.
    The model runs in its own thread, a bounded queue ahead of the consumer, so whatever the caller
    does with each result (encode, write, statistics) overlaps the next batch's inference.
    """
    size = max(1, batch_size)
    return prefetch(_run_batches(model, timed(frames, fps), size, want_activations, stream or FrameStream()),
                    depth=size)


def _run_batches(
    model: SkinModel,
    frames: Iterable[TimedFrame],
    batch_size: int,
    want_activations: Callable[[int], bool] | None,
    stream: FrameStream,
) -> Iterator[FrameResult]:
    index = 0
    for batch in batches(frames, batch_size):
        stack = np.stack([f.image for f in batch])  # (B, H, W, 3)
        wanted = [want_activations is not None and want_activations(index + k) for k in range(len(batch))]
        if any(wanted):
            probs, acts = model.working_probabilities_and_activations(stack, stream)
        else:
            probs, acts = model.working_probabilities(stack, stream), None
        for k, frame in enumerate(batch):
            yield FrameResult(index, frame.time_s, frame.image, probs[k],
                              acts[k] if acts is not None and wanted[k] else None)
            index += 1
