"""Image and video I/O through OpenCV: decode, stream frames, write masks and mask videos atomically."""

from __future__ import annotations

import contextlib
import math
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# Keep OpenCV/FFmpeg chatter off the user's terminal unless --debug (must precede the cv2 import).
os.environ.setdefault("OPENCV_LOG_LEVEL", "SILENT")
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
os.environ.setdefault("OPENCV_VIDEOIO_DEBUG", "0")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)  # also when cv2 was imported before us

from .atomic import atomic_path, commit, discard, temp_beside  # noqa: E402
from .errors import IncompleteVideoError, InputError, OutputError  # noqa: E402

IMAGE_SUFFIXES = frozenset(
    ".jpg .jpeg .jpe .png .bmp .dib .tif .tiff .webp .jp2 .pbm .pgm .ppm .pnm .pxm .sr .ras .hdr .pic .exr".split()
)
VIDEO_SUFFIXES = frozenset(
    ".mp4 .m4v .mov .mkv .avi .webm .mpg .mpeg .wmv .flv .ts .mts .m2ts .3gp .ogv .y4m .mxf .gif".split()
)


def set_debug(debug: bool) -> None:
    """Let OpenCV/FFmpeg/libpng/libjpeg warnings through (debug) or keep them silent."""
    global _DEBUG
    _DEBUG = debug
    log = cv2.utils.logging
    log.setLogLevel(log.LOG_LEVEL_WARNING if debug else log.LOG_LEVEL_SILENT)


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_SUFFIXES


def _read_bytes(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError("no such file", path) from None
    except IsADirectoryError:
        raise InputError("is a directory, expected an image file", path) from None
    except OSError as exc:
        raise InputError(f"cannot read ({exc.strerror})", path) from None
    if not data:
        raise InputError("empty file (0 bytes)", path)
    return data


_DEBUG = False

_MAGIC = {
    b"\xff\xd8\xff": "JPEG",
    b"\x89PNG\r\n\x1a\n": "PNG",
    b"BM": "BMP",
    b"GIF8": "GIF",
    b"II*\x00": "TIFF",
    b"MM\x00*": "TIFF",
}


@contextlib.contextmanager
def native_stderr_captured() -> Iterator[list[str]]:
    """Capture what C libraries (libpng, libjpeg) print on fd 2; the lines land in the yielded list.

    With --debug nothing is captured, so the chatter reaches the terminal.
    """
    lines: list[str] = []
    if _DEBUG:
        yield lines
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with tempfile.TemporaryFile() as tmp:
            os.dup2(tmp.fileno(), 2)
            try:
                yield lines
            finally:
                os.dup2(saved, 2)
                tmp.seek(0)
                lines += [ln.strip() for ln in tmp.read(4096).decode("utf-8", "replace").splitlines() if ln.strip()]
    finally:
        os.close(saved)


def _diagnose(data: bytes, chatter: list[str]) -> str:
    """Why undecodable bytes failed, in words a user can act on."""
    fmt = next((name for magic, name in _MAGIC.items() if data.startswith(magic)), None)
    detail = f" ({chatter[0]})" if chatter else ""
    if fmt == "JPEG" and b"\xff\xd9" not in data[-64:]:
        return f"truncated JPEG (the file ends before the end-of-image marker, {len(data)} bytes)"
    if fmt == "PNG" and b"IEND" not in data[-64:]:
        return f"truncated PNG (no IEND chunk, {len(data)} bytes)"
    if fmt is not None:
        return f"corrupt {fmt} data{detail}"
    head = data[:512]
    if head and sum(32 <= c < 127 or c in (9, 10, 13) for c in head) / len(head) > 0.95:
        return "a text file, not an image"
    return "not an image (unknown format or corrupt data)"


def decode_image(data: bytes, name: str | Path = "<stdin>") -> np.ndarray:
    """Encoded image bytes -> uint8 BGR (H, W, 3); gray, alpha, palette, 16-bit and EXIF rotation handled."""
    if not data:
        raise InputError("empty input (0 bytes)", name)
    with native_stderr_captured() as chatter:
        try:
            image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        except cv2.error as exc:  # OpenCV refuses absurd sizes with an assertion
            if "IMAGE_WIDTH" in str(exc) or "IMAGE_HEIGHT" in str(exc) or "IMAGE_PIXELS" in str(exc):
                raise InputError("image dimensions exceed OpenCV's limit (2^30 pixels; corrupt header?)", name) from None
            raise InputError(f"corrupt image data ({str(exc).strip().splitlines()[-1][:100]})", name) from None
    if image is None or image.size == 0:
        raise InputError(_diagnose(data, chatter), name)
    return image


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as uint8 BGR (H, W, 3), or raise InputError naming the file."""
    path = Path(path)
    return decode_image(_read_bytes(path), path)


def encode_png(image: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", image)
    if not ok:
        raise OutputError("PNG encoding failed")
    return buf.tobytes()


def write_file_atomic(path: Path, data: bytes) -> None:
    """Write bytes to a temporary file beside ``path`` and rename it into place."""
    try:
        with atomic_path(path) as tmp:
            tmp.write_bytes(data)
    except OSError as exc:
        raise OutputError(f"cannot write ({exc.strerror or exc})", path) from None


def write_png(path: Path, image: np.ndarray) -> None:
    write_file_atomic(path, encode_png(image))


@dataclass(frozen=True)
class VideoInfo:
    """What the container says: size, frame rate, declared frame count (may be wrong or 0)."""

    width: int
    height: int
    fps: float
    declared_frames: int


class VideoReader:
    """Stream BGR frames from a video file; always releases the capture, counts what it really decoded."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise InputError("no such file", self.path)
        if self.path.is_dir():
            raise InputError("is a directory, expected a video file", self.path)
        if self.path.stat().st_size == 0:
            raise InputError("empty file (0 bytes)", self.path)
        self._cap = cv2.VideoCapture(str(self.path), cv2.CAP_FFMPEG)
        if not self._cap.isOpened():
            self._cap.release()
            raise InputError("cannot open as a video (unknown container or codec, or corrupt)", self.path)
        fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        if not math.isfinite(fps) or fps <= 0 or fps > 1000:
            fps = 30.0
        self.info = VideoInfo(
            width=int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
            height=int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
            fps=fps,
            declared_frames=_declared_count(self._cap),
        )
        self.frames_read = 0

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._cap.release()

    def __iter__(self) -> Iterator[np.ndarray]:
        try:
            while True:
                ok, frame = self._cap.read()
                if not ok or frame is None:
                    break
                self.frames_read += 1
                yield frame
        finally:
            self.close()
        if self.frames_read == 0:
            raise InputError("video has no decodable frames", self.path)

    def check_complete(self) -> None:
        """Raise IncompleteVideoError when clearly fewer frames decoded than the container declares."""
        declared = self.info.declared_frames
        if declared and self.frames_read < declared - max(2, declared // 100):
            raise IncompleteVideoError(
                f"video ended early: decoded {self.frames_read} of {declared} declared frames "
                f"(damaged or truncated); output kept as incomplete",
                self.path,
                frames=self.frames_read,
            )


def _declared_count(cap: cv2.VideoCapture) -> int:
    """The frame count an open capture's container declares; 0 when missing, negative or not a number."""
    n = cap.get(cv2.CAP_PROP_FRAME_COUNT)
    return int(n) if math.isfinite(n) and 0 < n < 1e9 else 0


def declared_frames(path: str | Path) -> int:
    """The frame count a video's container declares (0 when unknown or unreadable); for progress only."""
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    try:
        return _declared_count(cap) if cap.isOpened() else 0
    finally:
        cap.release()


def count_packets(path: Path) -> int:
    """Frames stored in a video file, counted from its packets without decoding (fast)."""
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    try:
        if not cap.isOpened():
            return 0
        cap.set(cv2.CAP_PROP_FORMAT, -1)  # raw packets: no decoding
        n = 0
        while cap.grab():
            n += 1
        return n
    finally:
        cap.release()


def seek_frame(path: str | Path, index: int) -> np.ndarray:
    """Frame ``index`` (0-based) of a video, decoded by reading up to it (exact even where seeking is not)."""
    if index < 0:
        raise InputError(f"frame index {index} is negative", path)
    reader = VideoReader(path)
    for i, frame in enumerate(reader):
        if i == index:
            reader.close()
            return frame
    raise InputError(f"frame {index} does not exist: the video has {reader.frames_read} frames", path)


class AtomicVideoWriter:
    """A video written under a temporary name beside its final path, opened on the first frame.

    ``commit`` checks that every frame reached the disk (FFmpeg only logs failed writes, e.g. on a
    full disk) and renames the file into place; leaving the ``with`` block without commit (an error,
    Ctrl-C) removes the temporary output, or keeps it as ``<stem>.partial<suffix>``. Subclasses say
    how to open the encoder and write one frame.
    """

    directory = False  # True: the output is a folder of images

    def __init__(self, path: Path, fps: float, keep_partial: bool = False) -> None:
        self.path = Path(path)
        self.fps = fps
        self.keep_partial = keep_partial
        self.frames = 0
        self._writer: cv2.VideoWriter | None = None
        self._tmp: Path | None = None
        self._size: tuple[int, int] | None = None

    def __enter__(self) -> "AtomicVideoWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        if self._tmp is not None:
            self._discard()

    def _frame_size(self, frame: np.ndarray) -> tuple[int, int]:
        return frame.shape[1], frame.shape[0]

    def _open_writer(self, size: tuple[int, int]) -> None:
        raise NotImplementedError

    def _encode(self, frame: np.ndarray) -> None:
        assert self._writer is not None
        self._writer.write(frame)

    def write(self, frame: np.ndarray) -> None:
        """Append one frame; all frames must have the size of the first."""
        size = self._frame_size(frame)
        if self._tmp is None:
            try:
                self._tmp = temp_beside(self.path, directory=self.directory)
            except OSError as exc:
                raise OutputError(f"cannot write ({exc.strerror or exc})", self.path) from None
            self._size = size
            try:
                self._open_writer(size)
            except BaseException:
                self._discard()
                raise
        elif self._size != size:
            raise OutputError(f"frame size changed from {self._size} to {size} mid-video", self.path)
        self._encode(frame)
        self.frames += 1

    def commit(self) -> None:
        """Finish the file, verify it, and move it under its final name."""
        if self._writer is not None:
            self._writer.release()
            self._writer = None
            stored = count_packets(self._tmp) if self._tmp is not None else 0
            if stored != self.frames:
                self._discard()
                raise OutputError(f"only {stored} of {self.frames} frames reached the disk (disk full?)", self.path)
        if self._tmp is None:
            raise OutputError("no frames were written", self.path)
        try:
            commit(self._tmp, self.path)
        except OSError as exc:
            self._discard()
            raise OutputError(f"cannot write ({exc.strerror or exc})", self.path) from None
        self._tmp = None

    def _discard(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        tmp, self._tmp = self._tmp, None
        if tmp is not None:
            discard(tmp, self.path, self.keep_partial)


class MaskVideoWriter(AtomicVideoWriter):
    """Single-channel uint8 masks as a lossless FFV1 .mkv, or (``video_format='png'``) a folder of PNGs."""

    def __init__(self, path: Path, fps: float, video_format: str = "mkv", keep_partial: bool = False) -> None:
        if video_format not in ("mkv", "png"):
            raise OutputError(f"unknown video format {video_format!r} (use mkv or png)", path)
        super().__init__(path, fps, keep_partial)
        self.format = video_format
        self.directory = video_format == "png"

    def _open_writer(self, size: tuple[int, int]) -> None:
        if self.format == "png":
            return
        self._writer = cv2.VideoWriter(str(self._tmp), cv2.CAP_FFMPEG, cv2.VideoWriter_fourcc(*"FFV1"),
                                       self.fps, size, isColor=False)
        if not self._writer.isOpened():
            raise OutputError("cannot open an FFV1 video writer (OpenCV built without FFmpeg?)", self.path)

    def _encode(self, mask: np.ndarray) -> None:
        if self.format == "mkv":
            super()._encode(mask)
        elif not cv2.imwrite(str(self._tmp / f"{self.frames:06d}.png"), mask):
            raise OutputError(f"cannot write frame {self.frames} (disk full or not writable?)", self.path)
