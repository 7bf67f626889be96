"""Image and video I/O through OpenCV: decode, stream frames, write masks and mask videos atomically."""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# Keep OpenCV/FFmpeg chatter off the user's terminal unless --debug (must precede the cv2 import).
os.environ.setdefault("OPENCV_LOG_LEVEL", "SILENT")
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
os.environ.setdefault("OPENCV_VIDEOIO_DEBUG", "0")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from .atomic import atomic_path, commit, discard, temp_beside  # noqa: E402
from .errors import IncompleteVideoError, InputError, OutputError  # noqa: E402

IMAGE_SUFFIXES = frozenset(
    ".jpg .jpeg .jpe .png .bmp .dib .tif .tiff .webp .jp2 .pbm .pgm .ppm .pnm .pxm .sr .ras .hdr .pic .exr".split()
)
VIDEO_SUFFIXES = frozenset(
    ".mp4 .m4v .mov .mkv .avi .webm .mpg .mpeg .wmv .flv .ts .mts .m2ts .3gp .ogv .y4m .mxf .gif".split()
)


def set_debug(debug: bool) -> None:
    """Let OpenCV/FFmpeg warnings through (debug) or keep them silent."""
    with contextlib.suppress(Exception):
        cv2.setLogLevel(3 if debug else 0)  # 3 = warning, 0 = silent


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


def decode_image(data: bytes, name: str | Path = "<stdin>") -> np.ndarray:
    """Encoded image bytes -> uint8 BGR (H, W, 3); gray, alpha, 16-bit and EXIF rotation handled."""
    if not data:
        raise InputError("empty input (0 bytes)", name)
    if _looks_truncated(data):
        raise InputError("truncated image data (the file ends before the image does)", name)
    buf = np.frombuffer(data, np.uint8)
    image = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if image is None or image.size == 0:
        raise InputError("not a readable image (unknown format or corrupt data)", name)
    return image


def _looks_truncated(data: bytes) -> bool:
    """JPEGs that lack their end marker decode as grey-padded pictures without an error: catch them."""
    if data[:3] == b"\xff\xd8\xff":
        return b"\xff\xd9" not in data[-4096:]
    return False


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
            declared_frames=max(int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0), 0),
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


class MaskVideoWriter:
    """Write single-channel uint8 masks as a lossless FFV1 .mkv, or as a folder of PNGs.

    Opens on the first frame; writes into a temporary name and renames into place on ``commit``.
    Without commit (error, Ctrl-C) the temporary output is removed, or kept as ``*.partial``.
    """

    def __init__(self, path: Path, fps: float, video_format: str = "mkv", keep_partial: bool = False) -> None:
        if video_format not in ("mkv", "png"):
            raise OutputError(f"unknown video format {video_format!r} (use mkv or png)", path)
        self.path = Path(path)
        self.fps = fps
        self.format = video_format
        self.keep_partial = keep_partial
        self.frames = 0
        self._writer: cv2.VideoWriter | None = None
        self._tmp: Path | None = None
        self._size: tuple[int, int] | None = None

    def __enter__(self) -> "MaskVideoWriter":
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if self._tmp is not None:
            self._discard()

    def _open(self, size: tuple[int, int]) -> None:
        self._size = size
        try:
            self._tmp = temp_beside(self.path, directory=self.format == "png")
        except OSError as exc:
            raise OutputError(f"cannot write ({exc.strerror or exc})", self.path) from None
        if self.format == "png":
            return
        self._writer = cv2.VideoWriter(str(self._tmp), cv2.CAP_FFMPEG, cv2.VideoWriter_fourcc(*"FFV1"),
                                       self.fps, size, isColor=False)
        if not self._writer.isOpened():
            self._discard()
            raise OutputError("cannot open an FFV1 video writer (OpenCV built without FFmpeg?)", self.path)

    def write(self, mask: np.ndarray) -> None:
        """Append one (H, W) uint8 mask."""
        h, w = mask.shape[:2]
        if self._tmp is None:
            self._open((w, h))
        elif self._size != (w, h):
            raise OutputError(f"frame size changed from {self._size} to {(w, h)} mid-video", self.path)
        if self.format == "png":
            if not cv2.imwrite(str(self._tmp / f"{self.frames:06d}.png"), mask):
                raise OutputError(f"cannot write frame {self.frames} (disk full or not writable?)", self.path)
        else:
            assert self._writer is not None
            self._writer.write(mask)
        self.frames += 1

    def commit(self) -> None:
        """Finish the file and move it under its final name."""
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        if self._tmp is None:
            raise OutputError("no frames were written", self.path)
        if self.format == "mkv" and self._tmp.stat().st_size == 0:
            self._discard()
            raise OutputError("video writer produced an empty file (disk full?)", self.path)
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
