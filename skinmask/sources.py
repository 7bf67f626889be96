"""Frame sources and mask sinks for shell pipelines: stdin/stdout, ffmpeg rawvideo frames, path lists.

A source is one input that is not a plain file on disk, or that is read as a stream: an encoded image
on stdin, raw frames (``ffmpeg -f rawvideo -pix_fmt bgr24|rgb24|gray -``) on stdin or in a file, or an
image/video file whose masks go to stdout. Its frames are :class:`skinmask.media.TimedFrame` records
of uint8 BGR (H, W, 3) images (a video's container times, raw frames at index / fps, an image at 0),
ready for :func:`skinmask.pipeline.run_frames`. A sink takes the uint8 masks: PNG or raw gray frames on a binary
stream (stdout), or a PNG / mask video on disk.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np

from .atomic import refuse_existing
from .errors import IncompleteVideoError, InputError, OutputError, UsageError
from .inputs import InputItem, expand_inputs
from .media import (MaskVideoWriter, TimedFrame, VideoReader, at_rate, decode_image, encode_png, is_video, read_image,
                    write_png)

STDIN = "-"
STDIN_NAME = "<stdin>"
STDOUT_NAME = "<stdout>"
RAW_CHANNELS = {"bgr24": 3, "rgb24": 3, "gray": 1}  # ffmpeg -pix_fmt names -> bytes per pixel


def parse_size(text: str) -> tuple[int, int]:
    """'528x592' -> (528, 592), width first as in ffmpeg's ``-s``; anything else is a UsageError."""
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not m or int(m[1]) == 0 or int(m[2]) == 0:
        raise UsageError(f"--raw wants the frame size as WIDTHxHEIGHT, such as 528x592, not {text!r}")
    return int(m[1]), int(m[2])


def raw_frame_bytes(width: int, height: int, pix_fmt: str) -> int:
    """Bytes in one rawvideo frame."""
    if pix_fmt not in RAW_CHANNELS:
        raise UsageError(f"--pix-fmt must be one of {', '.join(RAW_CHANNELS)}, not {pix_fmt!r}")
    return width * height * RAW_CHANNELS[pix_fmt]


def _read_exact(stream: BinaryIO, view: memoryview) -> int:
    """Fill ``view`` from ``stream``; return the bytes read (less than its size only at end of input)."""
    got = 0
    while got < len(view):
        n = stream.readinto(view[got:]) or 0  # pipes may hand over less than asked
        if n == 0:
            break
        got += n
    return got


class RawFrameReader:
    """Stream uint8 BGR frames (H, W, 3) from ffmpeg rawvideo bytes (bgr24, rgb24 or gray).

    Frames are read with exact-size reads. Like :class:`skinmask.media.VideoReader`, a stream that
    ends inside a frame yields every whole frame first, then :meth:`check_complete` raises
    IncompleteVideoError naming the byte count; a stream without one whole frame raises InputError.
    """

    def __init__(self, stream: BinaryIO, width: int, height: int, pix_fmt: str = "bgr24",
                 name: str = STDIN_NAME, close: bool = False) -> None:
        self.frame_bytes = raw_frame_bytes(width, height, pix_fmt)
        self.stream, self.width, self.height, self.pix_fmt, self.name = stream, width, height, pix_fmt, name
        self._close = close
        self.frames_read = 0
        self.short_bytes = 0  # bytes of an unfinished last frame, 0 when the stream ended cleanly

    def __iter__(self) -> Iterator[np.ndarray]:
        import cv2

        w, h = self.width, self.height
        # bgr24 is read straight into a fresh frame (no copy); other formats into one reused buffer,
        # then converted into a fresh BGR frame (frames may still be queued or batched downstream).
        buf = np.empty((h, w, 3) if RAW_CHANNELS[self.pix_fmt] == 3 else (h, w), np.uint8)
        try:
            while True:
                frame = np.empty((h, w, 3), np.uint8) if self.pix_fmt == "bgr24" else buf
                got = _read_exact(self.stream, memoryview(frame).cast("B"))
                if got == 0:
                    break
                if got < self.frame_bytes:
                    self.short_bytes = got
                    break
                self.frames_read += 1
                if self.pix_fmt == "rgb24":
                    yield cv2.cvtColor(buf, cv2.COLOR_RGB2BGR)
                elif self.pix_fmt == "gray":
                    yield cv2.cvtColor(buf, cv2.COLOR_GRAY2BGR)
                else:
                    yield frame
        finally:
            if self._close:
                self.stream.close()
        if self.frames_read == 0:
            raise InputError(self._short_message() if self.short_bytes else
                             "no raw frames: the input is empty (0 bytes)", self.name)

    def _short_message(self) -> str:
        return (f"last raw frame is short: got {self.short_bytes} of {self.frame_bytes} bytes (after "
                f"{self.frames_read} whole frame(s); check --raw {self.width}x{self.height} and --pix-fmt {self.pix_fmt})")

    def check_complete(self) -> None:
        """Raise IncompleteVideoError when the stream ended inside a frame (the whole frames were yielded)."""
        if self.short_bytes:
            raise IncompleteVideoError(self._short_message(), self.name, frames=self.frames_read)


def open_raw(source: str | Path, width: int, height: int, pix_fmt: str = "bgr24") -> RawFrameReader:
    """A RawFrameReader over a file, or over stdin when ``source`` is '-' (a file is closed when read)."""
    if str(source) == STDIN:
        return RawFrameReader(sys.stdin.buffer, width, height, pix_fmt, STDIN_NAME)
    raw_frame_bytes(width, height, pix_fmt)
    try:
        stream = open(source, "rb")
    except OSError as exc:
        raise InputError(f"cannot read ({exc.strerror or exc})", source) from None
    return RawFrameReader(stream, width, height, pix_fmt, str(source), close=True)


def read_stdin_image(stream: BinaryIO | None = None) -> np.ndarray:
    """Decode one encoded image (PNG, JPEG, ...) from stdin as uint8 BGR (H, W, 3)."""
    stream = sys.stdin.buffer if stream is None else stream
    return decode_image(stream.read(), STDIN_NAME)


def stdin_is_data() -> bool:
    """True when stdin is a pipe or a redirected file, so '-' can be implied; never for a terminal."""
    import stat

    try:
        mode = os.fstat(sys.stdin.fileno()).st_mode
    except (OSError, ValueError, AttributeError):
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISREG(mode)


# --- path lists ------------------------------------------------------------------------------------


def read_path_list(stream: BinaryIO, nul: bool = False) -> list[str]:
    """Paths one a line (or NUL-separated with ``nul``), as `find` and `find -print0` write them.

    Blank entries are skipped; a trailing CR is dropped (lists made on Windows); spaces are kept.
    Names that are not valid UTF-8 survive (decoded as the OS decodes file names).
    """
    data = stream.read()
    entries = data.split(b"\0") if nul else data.split(b"\n")
    paths = []
    for entry in entries:
        if not nul and entry.endswith(b"\r"):
            entry = entry[:-1]
        if entry.strip():
            paths.append(os.fsdecode(entry))
    return paths


def read_path_list_from(source: str, nul: bool = False) -> list[str]:
    """:func:`read_path_list` from a file, or from stdin when ``source`` is '-'."""
    if source == STDIN:
        return read_path_list(sys.stdin.buffer, nul)
    try:
        with open(source, "rb") as stream:
            return read_path_list(stream, nul)
    except OSError as exc:
        raise InputError(f"cannot read the path list ({exc.strerror or exc})", source) from None


def expand_path_list(paths: list[str], output_dir: Path | None = None) -> tuple[list[InputItem], list[InputError]]:
    """Listed paths -> inputs, plus one error per path that does not exist (the others still run).

    Listed files mirror their tree below the folder that holds them all, as if that folder had been
    given (``find data -name '*.jpg'`` writes masks/sub/a.png for data/sub/a.jpg); listed folders are
    searched as :func:`skinmask.inputs.expand_inputs` does.
    """
    items: list[InputItem] = []
    errors: list[InputError] = []
    files: list[Path] = []
    for entry in paths:
        path = Path(entry)
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            found, errs = expand_inputs([entry], output_dir)
            items += found
            errors += errs
        else:
            errors.append(InputError("no such file (listed in --from)", path))
    if files:
        absolute = [os.path.abspath(f) for f in files]
        root = os.path.commonpath([os.path.dirname(a) for a in absolute])
        items += [InputItem(f, Path(os.path.relpath(a, root)).with_suffix("")) for f, a in zip(files, absolute)]
    return items, errors


# --- one streamed input and where its masks go ---------------------------------------------------------


@dataclass
class FrameSource:
    """One input read as a stream of BGR frames."""

    name: str  # how errors and --json name it: the path, or "<stdin>"
    kind: str  # "image" (one frame), "video" (a file) or "raw" (rawvideo frames)
    frames: Iterable[TimedFrame]  # uint8 BGR (H, W, 3) images and their times in seconds
    fps: float = 30.0
    stem: str = "stdin"  # output file name without suffix when written to a folder
    reader: VideoReader | RawFrameReader | None = field(default=None, repr=False)

    def check_complete(self) -> None:
        """Raise IncompleteVideoError when a video or raw stream ended early (its whole frames were read)."""
        if self.reader is not None:
            self.reader.check_complete()


def open_source(spec: str, raw_size: tuple[int, int] | None = None, pix_fmt: str = "bgr24",
                fps: float = 30.0) -> FrameSource:
    """'-' or a path, read as raw frames (``raw_size`` = (width, height)), an image or a video."""
    if fps <= 0:
        raise UsageError(f"--fps must be positive, not {fps}")
    from_stdin = spec == STDIN
    name = STDIN_NAME if from_stdin else spec
    stem = "stdin" if from_stdin else Path(spec).stem
    if raw_size is not None:
        width, height = raw_size
        reader = open_raw(spec, width, height, pix_fmt)
        return FrameSource(name, "raw", at_rate(reader, fps), fps, stem, reader)
    if from_stdin:
        return FrameSource(name, "image", _lazy_one(read_stdin_image), fps, stem)
    path = Path(spec)
    if is_video(path):
        reader = VideoReader(path)
        return FrameSource(name, "video", reader.timed(), reader.info.fps, stem, reader)
    return FrameSource(name, "image", _lazy_one(lambda: read_image(path)), fps, stem)


def _lazy_one(read) -> Iterator[TimedFrame]:
    yield TimedFrame(read(), 0.0)


class StreamSink:
    """Masks onto a binary stream: one PNG for an image, raw gray frames (ffmpeg ``-pix_fmt gray``) otherwise."""

    def __init__(self, stream: BinaryIO, kind: str) -> None:
        self.stream = stream
        self.kind = kind
        self.frames = 0
        self._size: tuple[int, int] | None = None

    def __enter__(self) -> "StreamSink":
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def write(self, mask: np.ndarray) -> None:
        """Append one (H, W) uint8 mask."""
        if self.kind == "image":
            if self.frames:
                raise OutputError("one PNG per stream: a second image cannot follow", STDOUT_NAME)
            self.stream.write(encode_png(mask))
        else:
            if self._size is None:
                self._size = mask.shape
            elif mask.shape != self._size:  # a raw stream has one frame size, fixed by the reader downstream
                raise OutputError(f"frame size changed from {self._size} to {mask.shape} mid-stream", STDOUT_NAME)
            self.stream.write(np.ascontiguousarray(mask, np.uint8).data)
        self.stream.flush()
        self.frames += 1

    def commit(self) -> None:
        self.stream.flush()


class _PngSink:
    """One image mask as a PNG file, written atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self) -> "_PngSink":
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def write(self, mask: np.ndarray) -> None:
        write_png(self.path, mask)

    def commit(self) -> None:
        pass


def sink_path(output: Path, source: FrameSource, video_format: str = "mkv") -> Path:
    """Where a streamed source's masks go inside an output folder."""
    if source.kind == "image":
        return output / f"{source.stem}.png"
    return output / (source.stem + (".mkv" if video_format == "mkv" else ""))


def open_sink(output: str | Path, source: FrameSource, video_format: str = "mkv", overwrite: bool = False,
              keep_partial: bool = False):
    """A sink for ``source``'s masks: stdout when ``output`` is '-', else a PNG or mask video in that folder.

    Returns an object with ``write(mask)``, ``commit()`` and context-manager support.
    """
    if str(output) == STDIN:
        return StreamSink(sys.stdout.buffer, source.kind)
    path = sink_path(Path(output), source, video_format)
    refuse_existing(path, overwrite)
    if source.kind == "image":
        return _PngSink(path)
    return MaskVideoWriter(path, source.fps, video_format, keep_partial)
