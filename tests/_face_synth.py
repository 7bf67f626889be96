"""Face videos with a known pulse, made from the shipped astronaut sample: still or moving, constant or variable rate."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "astronaut.jpg"
FACE_CENTRE, FACE_AXES = (215, 122), (44, 58)  # the astronaut's face in the 512x512 sample (x, y), ellipse half-axes
PULSE_BGR = np.array([0.53, 0.77, 0.33])  # relative pulse strength per channel (B, G, R) of real skin


def face_pulse_frames(times: Sequence[float], bpm: float, size: int = 256, amplitude: float = 0.02,
                      motion: bool = False, seed: int = 0) -> Iterator[np.ndarray]:
    """BGR frames (size x size) of the sample whose face (only) pulses at ``bpm`` at each time in ``times``.

    ``motion``: each frame is shifted and rotated a little from the last (a slow random walk of about
    a pixel and a quarter degree per frame, bounded to +-8 px and +-5 degrees), as a sitting person moves.
    """
    rng = np.random.default_rng(seed)
    img = cv2.imread(str(SAMPLE)).astype(np.float32)
    face = np.zeros(img.shape[:2], np.float32)
    cv2.ellipse(face, FACE_CENTRE, FACE_AXES, 0, 0, 360, 1.0, -1)
    face = cv2.GaussianBlur(face, (0, 0), 4)[..., None]
    dx = dy = angle = 0.0
    for t in times:
        pulse = 1.0 + amplitude * PULSE_BGR * np.sin(2 * np.pi * bpm / 60.0 * t)
        frame = img * (1 + face * (pulse - 1))
        if motion:
            dx = float(np.clip(dx + rng.normal(0, 1.0), -8, 8))
            dy = float(np.clip(dy + rng.normal(0, 1.0), -8, 8))
            angle = float(np.clip(angle + rng.normal(0, 0.25), -5, 5))
            m = cv2.getRotationMatrix2D(FACE_CENTRE, angle, 1.0)
            m[:, 2] += (dx, dy)
            frame = cv2.warpAffine(frame, m, (img.shape[1], img.shape[0]), borderMode=cv2.BORDER_REFLECT)
        frame = cv2.resize(frame, (size, size), interpolation=cv2.INTER_AREA)
        yield np.clip(np.rint(frame), 0, 255).astype(np.uint8)


def write_cfr(path: Path, bpm: float, seconds: float, fps: float = 30.0, **kw) -> Path:
    """A constant-rate lossless (FFV1 .mkv) face video through OpenCV."""
    frames = face_pulse_frames(np.arange(int(seconds * fps)) / fps, bpm, **kw)
    first = next(frames)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FFV1"), fps, first.shape[1::-1])
    assert writer.isOpened()
    writer.write(first)
    for f in frames:
        writer.write(f)
    writer.release()
    return path


def vfr_times(seconds_each: float = 10.0, slow: float = 15.0, fast: float = 30.0) -> np.ndarray:
    """Frame times of a phone-like recording: ``slow`` fps, then ``fast`` fps."""
    a = np.arange(int(round(seconds_each * slow))) / slow
    b = seconds_each + np.arange(int(round(seconds_each * fast))) / fast
    return np.concatenate([a, b])


def write_vfr(path: Path, bpm: float, seconds_each: float = 10.0, size: int = 256) -> np.ndarray:
    """A variable-rate H.264 video (MP4 or MKV by suffix) with ffmpeg's concat: 15 fps then 30 fps, as phones
    record; returns the frame times it was made with."""
    import imageio_ffmpeg

    times = vfr_times(seconds_each)
    frames = list(face_pulse_frames(times, bpm, size=size))
    half = int(round(seconds_each * 15))
    raws = []
    for k, part in enumerate((frames[:half], frames[half:])):
        raw = path.with_name(f"{path.stem}.part{k}.raw")
        raw.write_bytes(b"".join(f.tobytes() for f in part))
        raws.append(raw)
    src = ["-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{size}x{size}"]
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", *src, "-r", "15", "-i", str(raws[0]),
           *src, "-r", "30", "-i", str(raws[1]), "-filter_complex", "[0:v][1:v]concat=n=2:v=1[v]", "-map", "[v]",
           "-fps_mode", "vfr", "-c:v", "libx264", "-qp", "0", "-pix_fmt", "yuv444p", str(path)]
    subprocess.run(cmd, check=True)
    for raw in raws:
        raw.unlink()
    return times
