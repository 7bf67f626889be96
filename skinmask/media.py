"""Image and video I/O: decode images, stream timed video frames (OpenCV, or PyAV for what OpenCV cannot
decode), write masks and mask videos atomically."""

from __future__ import annotations

import contextlib
import errno
import math
import os
import sys
import tempfile
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from fractions import Fraction
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


class _StderrCapture:
    """fd 2 redirected to a temporary file while any thread decodes an image (refcounted, so overlapping
    captures in parallel threads nest instead of restoring each other's redirection), with Python's own
    ``sys.stderr`` pointed at the real stderr meanwhile, so error lines and progress from other threads
    still reach the terminal: only what C libraries write to fd 2 is captured."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._depth = 0
        self._file: Any = None
        self._python_stderr: Any = None
        self._real_fd = -1  # a dup of the real stderr, kept while fd 2 keeps pointing at the same file
        self._real: Any = None  # a text stream on it, Python's sys.stderr during a capture

    def _real_stderr(self) -> Any:
        st = os.fstat(2)
        if self._real_fd >= 0:
            kept = os.fstat(self._real_fd)
            if (kept.st_dev, kept.st_ino) == (st.st_dev, st.st_ino):
                return self._real
            os.close(self._real_fd)
        self._real_fd = os.dup(2)
        encoding = getattr(sys.stderr, "encoding", None) or "utf-8"
        self._real = open(self._real_fd, "w", buffering=1, encoding=encoding, errors="backslashreplace",
                          closefd=False)
        return self._real

    def enter(self) -> int:
        """Start (or join) the capture; returns where this caller's chatter starts in the file."""
        with self._lock:
            if self._depth == 0:
                if sys.stderr is not None:
                    sys.stderr.flush()
                real = self._real_stderr()
                self._file = tempfile.TemporaryFile()
                os.dup2(self._file.fileno(), 2)
                self._python_stderr, sys.stderr = sys.stderr, real
            self._depth += 1
            return os.fstat(self._file.fileno()).st_size

    def leave(self, start: int) -> list[str]:
        """End this caller's part; returns the non-empty lines written to fd 2 since ``start`` (by any thread:
        a detail for error messages, 64 kB at most)."""
        with self._lock:
            end = os.fstat(self._file.fileno()).st_size
            text = os.pread(self._file.fileno(), min(end - start, 65536), start).decode("utf-8", "replace")
            self._depth -= 1
            if self._depth == 0:
                self._real.flush()
                sys.stderr, self._python_stderr = self._python_stderr, None
                os.dup2(self._real_fd, 2)
                self._file.close()
                self._file = None
        return [ln.strip() for ln in text.splitlines() if ln.strip()]


_CAPTURE = _StderrCapture()


@contextlib.contextmanager
def native_stderr_captured() -> Iterator[list[str]]:
    """Capture what C libraries (libpng, libjpeg) print on fd 2; the lines land in the yielded list.

    Safe in parallel threads (see :class:`_StderrCapture`); with --debug nothing is captured, so the
    chatter reaches the terminal.
    """
    lines: list[str] = []
    if _DEBUG:
        yield lines
        return
    start = _CAPTURE.enter()
    try:
        yield lines
    finally:
        lines += _CAPTURE.leave(start)


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
    """What the container says: display size, frame rate, declared frame count (may be wrong or 0), codec."""

    width: int
    height: int
    fps: float
    declared_frames: int
    codec: str = ""  # the video stream's codec, e.g. "h264", "av1"
    backend: str = "opencv"  # the decoder that reads it: "opencv" or "pyav" (see VideoReader)


@dataclass(frozen=True)
class TimedFrame:
    """A decoded frame and its presentation time: seconds from the start of its video stream."""

    image: np.ndarray  # (H, W, 3) uint8 BGR
    time_s: float


def at_rate(frames: Iterable[np.ndarray], fps: float) -> Iterator[TimedFrame]:
    """Frames that carry no times of their own (raw frames, image sequences): frame i at i / fps."""
    for i, image in enumerate(frames):
        yield TimedFrame(image, i / fps)


def _valid_fps(fps: float) -> bool:
    return math.isfinite(fps) and 0 < fps <= 1000


class _OpenCvDecoder:
    """OpenCV's FFmpeg (the wheel's own build): the fast path for everything it can decode."""

    def __init__(self, cap: cv2.VideoCapture, first: np.ndarray) -> None:
        self._cap, self._first = cap, first
        self.first_time = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        fps = fps if _valid_fps(fps) else 30.0
        fourcc = int(cap.get(cv2.CAP_PROP_FOURCC) or 0)
        self.info = VideoInfo(int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)), fps,
                              _declared_count(cap), _fourcc_name(fourcc), "opencv")

    def frames(self) -> Iterator[tuple[np.ndarray, float | None]]:
        first, self._first = self._first, None
        if first is not None:
            yield first, self.first_time
        while True:
            ok, frame = self._cap.read()
            if not ok or frame is None:
                return
            yield frame, self._cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0  # the frame's PTS, from the stream start

    def close(self) -> None:
        self._cap.release()


def _fourcc_name(fourcc: int) -> str:
    text = fourcc.to_bytes(4, "little").decode("ascii", "replace").strip("\x00 ").lower()
    return {"av01": "av1", "avc1": "h264", "hev1": "hevc", "hvc1": "hevc", "vp90": "vp9", "vp80": "vp8"}.get(text, text)


def _open_opencv(path: Path) -> tuple[_OpenCvDecoder | None, str]:
    """OpenCV's decoder for ``path`` when it opens the file and decodes a first frame; else (None, codec or '')."""
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    if not cap.isOpened():
        cap.release()
        return None, ""
    ok, frame = cap.read()
    if ok and frame is not None:
        return _OpenCvDecoder(cap, frame), ""
    codec = _fourcc_name(int(cap.get(cv2.CAP_PROP_FOURCC) or 0))
    cap.release()
    return None, codec


class _PyAvDecoder:
    """PyAV (its wheels bundle their own FFmpeg, with dav1d for AV1): for streams OpenCV's FFmpeg cannot decode."""

    def __init__(self, path: Path, codec_hint: str) -> None:
        try:
            import av
        except ImportError:
            what = f"its {codec_hint} video stream" if codec_hint else "it"
            raise InputError(f"OpenCV's FFmpeg cannot decode {what}; install PyAV (pip install av) to read more codecs",
                             path) from None
        av.logging.set_level(av.logging.WARNING if _DEBUG else None)
        try:
            self._container = av.open(str(path))
        except (av.FFmpegError, OSError, UnicodeDecodeError):
            raise InputError("cannot open as a video (unknown container or codec, or corrupt)", path) from None
        try:
            if not self._container.streams.video:
                raise InputError("cannot open as a video (no video stream in it: corrupt, or not a video)", path)
            stream = self._stream = self._container.streams.video[0]
            stream.thread_type = "AUTO"  # frame and slice threads, as OpenCV's FFmpeg uses
            ctx = stream.codec_context
            codec = ctx.codec.canonical_name if ctx is not None and ctx.codec is not None else (codec_hint or "unknown")
            if ctx is None:
                raise InputError(f"cannot decode its {codec} video stream: no decoder for it in OpenCV's or PyAV's "
                                 f"FFmpeg", path)
            tb = stream.time_base
            rate = float(stream.average_rate or stream.guessed_rate or 0)
            fps = rate if _valid_fps(rate) else 30.0
            # as OpenCV declares it: the container's packet count, else its duration x fps
            declared = int(stream.frames) or round(_container_extent(self._container)[2] * fps)
            self._start = stream.start_time or 0
            self._tb = tb
            self._frames = self._decode()
            try:
                first = next(self._frames, None)
            except av.FFmpegError as exc:
                raise InputError(f"cannot decode its {codec} video stream ({exc.strerror or exc})", path) from None
            if first is None:
                raise InputError(f"video has no decodable frames (its {codec} stream decoded to nothing)", path)
            self._first = first
            h, w = first[0].shape[:2]
            self.info = VideoInfo(w, h, fps, declared, codec, "pyav")
        except BaseException:
            self._container.close()
            raise

    def _decode(self) -> Iterator[tuple[np.ndarray, float | None]]:
        import av

        decoded = 0
        try:
            for frame in self._container.decode(self._stream):
                image = frame.to_ndarray(format="bgr24")
                turns = round((frame.rotation or 0) / 90) % 4  # the display matrix, counter-clockwise
                if turns:  # shown upright, as OpenCV shows it
                    image = np.ascontiguousarray(np.rot90(image, turns))
                t = float((frame.pts - self._start) * self._tb) if frame.pts is not None and self._tb else None
                decoded += 1
                yield image, t
        except av.FFmpegError:  # corrupt or cut data: the frames so far stand, check_complete judges the rest
            if not decoded:
                raise

    def frames(self) -> Iterator[tuple[np.ndarray, float | None]]:
        first, self._first = self._first, None
        if first is not None:
            yield first
        yield from self._frames

    def close(self) -> None:
        self._frames.close()
        self._container.close()


class VideoReader:
    """Stream BGR frames (and their presentation times) from a video file; always releases the decoder and
    counts what it really decoded.

    OpenCV's FFmpeg decodes whatever it can (fastest here); a stream it cannot decode (AV1 in the PyPI
    wheel) is read through PyAV instead, with the same BGR frames, times, rotation and counting.
    ``iter(reader)`` gives the frames, :meth:`timed` gives :class:`TimedFrame` records. ``backend``
    ("opencv" or "pyav") forces one decoder (benchmarks, tests); ``info.backend`` says which reads.
    """

    def __init__(self, path: str | Path, backend: str = "auto") -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise InputError("no such file", self.path)
        if self.path.is_dir():
            raise InputError("is a directory, expected a video file", self.path)
        if self.path.stat().st_size == 0:
            raise InputError("empty file (0 bytes)", self.path)
        if backend not in ("auto", "opencv", "pyav"):
            raise ValueError(f"unknown video backend {backend!r}; use auto, opencv or pyav")
        decoder, codec = _open_opencv(self.path) if backend != "pyav" else (None, "")
        if decoder is None and backend == "opencv":
            raise InputError(f"OpenCV's FFmpeg cannot open or decode {f'its {codec} stream' if codec else 'it'}", self.path)
        self._decoder: _OpenCvDecoder | _PyAvDecoder = decoder or _PyAvDecoder(self.path, codec)
        self.info = self._decoder.info
        self.frames_read = 0
        self.end_s = 0.0  # where the decoded frames end: the last one's time plus one frame interval

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._decoder.close()

    def __iter__(self) -> Iterator[np.ndarray]:
        timed = self.timed()
        try:
            for frame in timed:
                yield frame.image
        finally:
            timed.close()

    def timed(self) -> Iterator[TimedFrame]:
        """The frames as :class:`TimedFrame` records, each at its presentation time from the container.

        A frame without a usable time (no PTS, or not after the previous one) is put one nominal frame
        interval after the previous one.
        """
        step = 1.0 / self.info.fps
        prev: float | None = None
        try:
            for image, t in self._decoder.frames():
                if t is None or not math.isfinite(t) or (prev is not None and t <= prev):
                    t = 0.0 if prev is None else prev + step
                if prev is not None:
                    step = t - prev
                prev = t
                self.frames_read += 1
                self.end_s = t + step
                yield TimedFrame(image, t)
        finally:
            self.close()
        if self.frames_read == 0:
            raise InputError("video has no decodable frames", self.path)

    def check_complete(self) -> None:
        """Raise IncompleteVideoError when the video clearly ended before the container says it does.

        Fewer frames than declared is proof where the container counts its packets (MP4's sample table).
        Where it does not (Matroska, WebM: the declared count is duration x nominal fps, which a
        variable-frame-rate file never meets) the decoded frames must also end before the container's
        duration.
        """
        declared = self.info.declared_frames
        if not declared or self.frames_read >= declared - max(2, declared // 100):
            return
        packets, start_s, duration_s = container_extent(self.path)
        end_s = start_s + self.end_s  # on the container's clock, where its duration is measured
        if packets or not duration_s or end_s < duration_s - max(2.0 / self.info.fps, duration_s / 100):
            raise IncompleteVideoError(
                f"video ended early: decoded {self.frames_read} of {declared} declared frames "
                f"(damaged or truncated); output kept as incomplete",
                self.path,
                frames=self.frames_read,
            )


def container_extent(path: Path) -> tuple[int, float, float]:
    """(packets the container counts (0: it does not), first frame's time, duration) of a video's first video
    stream, in seconds, read from its headers by PyAV; (0, 0.0, 0.0) where that cannot be read."""
    try:
        import av
    except ImportError:
        return 0, 0.0, 0.0
    try:
        with av.open(str(path)) as container:
            return _container_extent(container)
    except (av.FFmpegError, OSError, IndexError):
        return 0, 0.0, 0.0


def _container_extent(container: Any) -> tuple[int, float, float]:
    stream = container.streams.video[0]
    start = float(stream.start_time * stream.time_base) if stream.start_time is not None and stream.time_base else 0.0
    if container.duration:
        duration = container.duration / 1e6
    elif stream.duration and stream.time_base:
        duration = float(stream.duration * stream.time_base)
    else:
        duration = 0.0
    return int(stream.frames or 0), start, duration


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


class PyAvEncoder:
    """cv2.VideoWriter's calls (``write``, ``release``) over a PyAV encoder, e.g. H.264 yuv420p with the index
    (moov) before the data (``+faststart``), or FFV1 gray. A frame is written at its own time when given
    (so a variable-frame-rate input keeps its timing), else at index / fps. Failed writes (disk full) raise
    OutputError naming ``name``, the output's final path."""

    TIME_BASE = Fraction(1, 90000)

    def __init__(self, path: Path, codec: str, fps: float, size: tuple[int, int], pix_fmt: str = "yuv420p",
                 options: dict[str, str] | None = None, container_options: dict[str, str] | None = None,
                 name: Path | None = None) -> None:
        import av

        av.logging.set_level(av.logging.WARNING if _DEBUG else None)
        self._fps, self._name = fps, name or path
        self._format = "gray" if pix_fmt == "gray" else "bgr24"
        self._out = None
        with self._write_errors():
            self._out = av.open(str(path), "w", options=dict(container_options or {}))
        try:
            self._stream = self._out.add_stream(codec, rate=Fraction(fps).limit_denominator(1001),
                                                options=dict(options or {}))
            self._stream.width, self._stream.height = size
            self._stream.pix_fmt = pix_fmt
            self._stream.time_base = self._stream.codec_context.time_base = self.TIME_BASE  # frames keep their times
        except BaseException:
            self._out.close()
            raise
        self._frames = 0
        self._last_pts = -1

    def write(self, frame: np.ndarray, time_s: float | None = None) -> None:
        import av

        t = time_s if time_s is not None and math.isfinite(time_s) else self._frames / self._fps
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format=self._format)
        vf.pts = self._last_pts = max(round(t / self.TIME_BASE), self._last_pts + 1)
        vf.time_base = self.TIME_BASE
        with self._write_errors():
            self._out.mux(self._stream.encode(vf))
        self._frames += 1

    def release(self) -> None:
        if self._out is None:
            return
        out, self._out = self._out, None
        with self._write_errors():
            try:
                out.mux(self._stream.encode())  # flush the encoder's delayed frames
            finally:
                out.close()

    @contextlib.contextmanager
    def _write_errors(self) -> Iterator[None]:
        import av

        try:
            yield
        except (OSError, av.FFmpegError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            full = getattr(exc, "errno", None) in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)
            raise OutputError(f"cannot write the video ({reason}{'; disk full?' if full else ''})", self._name) from None


def pyav_encoder_available(codec: str) -> bool:
    """Whether PyAV is installed and its FFmpeg has this encoder (e.g. libx264)."""
    try:
        import av
    except ImportError:
        return False
    return codec in av.codecs_available


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
        self._writer: cv2.VideoWriter | PyAvEncoder | None = None
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

    def _encode(self, frame: np.ndarray, time_s: float | None = None) -> None:
        assert self._writer is not None
        if isinstance(self._writer, PyAvEncoder):
            self._writer.write(frame, time_s)
        else:  # OpenCV's writer: constant frame rate
            self._writer.write(frame)

    def write(self, frame: np.ndarray, time_s: float | None = None) -> None:
        """Append one frame (at ``time_s`` seconds where the encoder keeps times, else at index / fps);
        all frames must have the size of the first."""
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
        self._encode(frame, time_s)
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
        writer, self._writer = self._writer, None
        if writer is not None:
            with contextlib.suppress(OutputError):  # already failing (disk full): the temporary file goes anyway
                writer.release()
        tmp, self._tmp = self._tmp, None
        if tmp is not None:
            discard(tmp, self.path, self.keep_partial)


class MaskVideoWriter(AtomicVideoWriter):
    """Single-channel uint8 masks as a lossless FFV1 .mkv (through PyAV, so each mask keeps its frame's time;
    OpenCV's writer, at constant fps, without PyAV), or (``video_format='png'``) a folder of PNGs."""

    def __init__(self, path: Path, fps: float, video_format: str = "mkv", keep_partial: bool = False) -> None:
        if video_format not in ("mkv", "png"):
            raise OutputError(f"unknown video format {video_format!r} (use mkv or png)", path)
        super().__init__(path, fps, keep_partial)
        self.format = video_format
        self.directory = video_format == "png"

    def _open_writer(self, size: tuple[int, int]) -> None:
        if self.format == "png":
            return
        if pyav_encoder_available("ffv1"):
            self._writer = PyAvEncoder(self._tmp, "ffv1", self.fps, size, "gray", name=self.path)
            return
        self._writer = cv2.VideoWriter(str(self._tmp), cv2.CAP_FFMPEG, cv2.VideoWriter_fourcc(*"FFV1"),
                                       self.fps, size, isColor=False)
        if not self._writer.isOpened():
            raise OutputError("cannot open an FFV1 video writer (OpenCV built without FFmpeg?)", self.path)

    def _encode(self, mask: np.ndarray, time_s: float | None = None) -> None:
        if self.format == "mkv":
            super()._encode(mask, time_s)
        elif not cv2.imwrite(str(self._tmp / f"{self.frames:06d}.png"), mask):
            raise OutputError(f"cannot write frame {self.frames} (disk full or not writable?)", self.path)
