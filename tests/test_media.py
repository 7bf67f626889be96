from pathlib import Path

import cv2
import numpy as np
import pytest

from skinmask.errors import IncompleteVideoError, InputError, OutputError
from skinmask.media import MaskVideoWriter, VideoReader, at_rate, decode_image, read_image, seek_frame

from .conftest import container_times, make_frame, read_mask_video, write_coded_video, write_video


def _encode(ext: str, image: np.ndarray, params: list[int] | None = None) -> bytes:
    ok, buf = cv2.imencode(ext, image, params or [])
    assert ok
    return buf.tobytes()


@pytest.mark.parametrize("kind", ["bgr", "gray", "bgra", "gray16", "bgr16"])
def test_common_image_kinds_decode_to_bgr8(kind: str, tmp_path: Path) -> None:
    base = make_frame(7, 9)
    image = {
        "bgr": base,
        "gray": base[..., 1],
        "bgra": np.dstack([base, np.full(base.shape[:2], 128, np.uint8)]),
        "gray16": base[..., 1].astype(np.uint16) * 257,
        "bgr16": base.astype(np.uint16) * 257,
    }[kind]
    path = tmp_path / f"{kind}.png"
    path.write_bytes(_encode(".png", image))
    out = read_image(path)
    assert out.shape == (7, 9, 3) and out.dtype == np.uint8
    if kind in ("bgr", "bgra", "bgr16"):
        assert np.array_equal(out, base)


def test_bad_images_name_the_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match=r"empty\.jpg: empty file"):
        read_image(empty)
    junk = tmp_path / "junk.png"
    junk.write_text("this is not a picture")
    with pytest.raises(InputError, match=r"junk\.png: a text file, not an image"):
        read_image(junk)
    with pytest.raises(InputError, match="no such file"):
        read_image(tmp_path / "missing.jpg")
    with pytest.raises(InputError, match="is a directory"):
        read_image(tmp_path)
    jpg = _encode(".jpg", make_frame(64, 64))
    with pytest.raises(InputError, match="truncated"):
        decode_image(jpg[: len(jpg) // 2], "half.jpg")


def test_video_reader_counts_frames_by_reading(video_file: Path) -> None:
    reader = VideoReader(video_file)
    assert (reader.info.width, reader.info.height) == (64, 48)
    assert reader.info.fps == pytest.approx(25.0)
    frames = list(reader)
    assert len(frames) == reader.frames_read == 12
    assert np.array_equal(frames[3], make_frame(48, 64, seed=3))  # FFV1 is lossless
    reader.check_complete()


def test_seek_frame(video_file: Path) -> None:
    assert np.array_equal(seek_frame(video_file, 5), make_frame(48, 64, seed=5))
    with pytest.raises(InputError, match="frame 12 does not exist: the video has 12 frames"):
        seek_frame(video_file, 12)


@pytest.mark.parametrize("fmt", ["mkv", "png"])
def test_mask_writer_is_lossless_and_atomic(tmp_path: Path, fmt: str) -> None:
    masks = [np.random.default_rng(i).integers(0, 256, (30, 40), dtype=np.uint8) for i in range(5)]
    final = tmp_path / ("m.mkv" if fmt == "mkv" else "m")
    with MaskVideoWriter(final, 30.0, fmt) as writer:
        for m in masks:
            writer.write(m)
        assert not final.exists()  # nothing under the final name until commit
        writer.commit()
    if fmt == "mkv":
        got, fps = read_mask_video(final)
        assert fps == pytest.approx(30.0)
    else:
        got = [cv2.imread(str(p), cv2.IMREAD_UNCHANGED) for p in sorted(final.iterdir())]
    assert len(got) == 5 and all(np.array_equal(a, b) for a, b in zip(got, masks))
    assert sorted(p.name for p in tmp_path.iterdir()) == [final.name]


def test_mask_writer_discards_or_keeps_partial(tmp_path: Path) -> None:
    final = tmp_path / "v.mkv"
    with pytest.raises(RuntimeError):
        with MaskVideoWriter(final, 25.0) as writer:
            writer.write(np.zeros((8, 8), np.uint8))
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(KeyboardInterrupt):
        with MaskVideoWriter(final, 25.0, keep_partial=True) as writer:
            writer.write(np.zeros((8, 8), np.uint8))
            raise KeyboardInterrupt
    assert [p.name for p in tmp_path.iterdir()] == ["v.partial.mkv"]


def test_mask_writer_rejects_size_change(tmp_path: Path) -> None:
    with MaskVideoWriter(tmp_path / "v.mkv", 25.0) as writer:
        writer.write(np.zeros((8, 8), np.uint8))
        with pytest.raises(OutputError, match="frame size changed"):
            writer.write(np.zeros((9, 8), np.uint8))


def test_mp4_video(tmp_path: Path) -> None:
    path = write_video(tmp_path / "c.mp4", n=5, fourcc="mp4v")
    assert len(list(VideoReader(path))) == 5


VFR = [i / 15 for i in range(150)] + [10 + i / 30 for i in range(300)]  # 10 s at 15 fps, then 10 s at 30 fps


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_variable_frame_rate_times_come_from_the_container(tmp_path: Path, suffix: str) -> None:
    """Each frame carries its container time (within 2 ms), and a VFR Matroska file, whose declared count is
    duration x nominal fps (600 here), is not taken for a truncated one."""
    path = write_coded_video(tmp_path / f"vfr{suffix}", VFR)
    expected = container_times(path)
    reader = VideoReader(path)
    times = [f.time_s for f in reader.timed()]
    assert len(times) == reader.frames_read == len(expected) == 450
    assert np.abs(np.array(times) - expected).max() < 0.002
    assert np.abs(np.array(times) - VFR).max() < 0.002
    reader.check_complete()


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
@pytest.mark.parametrize("first", [0, 135])  # from 0 s, or from 9 s (a clip cut out of a longer one)
def test_cut_video_is_still_reported_incomplete(tmp_path: Path, suffix: str, first: int) -> None:
    """A VFR file cut in the middle ends before the container's duration: incomplete; whole, it is complete."""
    full = write_coded_video(tmp_path / f"full{suffix}", VFR[first:], faststart=True)
    whole = VideoReader(full)
    assert sum(1 for _ in whole) == 450 - first
    whole.check_complete()
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size * 6 // 10])
    reader = VideoReader(cut)
    n = sum(1 for _ in reader)
    assert 0 < n < 450 - first
    with pytest.raises(IncompleteVideoError, match="video ended early"):
        reader.check_complete()


def test_frames_without_container_times_are_timed_by_rate() -> None:
    frames = [make_frame(4, 4, s) for s in range(3)]
    assert [f.time_s for f in at_rate(frames, 25.0)] == [0.0, 0.04, 0.08]


def test_pyav_decodes_what_opencv_cannot_and_matches_it_where_both_can(tmp_path: Path) -> None:
    """AV1 (no decoder in OpenCV wheels before 5.x) is read through PyAV where OpenCV cannot; on a rotated, VFR
    H.264 clip PyAV gives the same BGR frames, times, rotation, count and declared length as OpenCV."""
    import cv2

    path = write_coded_video(tmp_path / "a.mkv", 5, "libsvtav1")
    opencv_reads = cv2.VideoCapture(str(path)).read()[0]
    av1 = VideoReader(path)
    assert (av1.info.codec, av1.info.declared_frames) == ("av1", 5)
    assert av1.info.backend == ("opencv" if opencv_reads else "pyav")
    assert len(list(av1)) == 5
    forced = VideoReader(path, backend="pyav")
    assert forced.info.backend == "pyav" and len(list(forced)) == 5
    clip = write_coded_video(tmp_path / "r.mp4", VFR[140:170], rotation=90)
    cv = VideoReader(clip)
    assert cv.info.backend == "opencv"
    ref = list(cv.timed())
    pa = VideoReader(clip, backend="pyav")
    assert pa.info.backend == "pyav"
    assert (pa.info.width, pa.info.height, pa.info.declared_frames) == (cv.info.width, cv.info.height, 30) == (48, 64, 30)
    got = list(pa.timed())
    assert len(got) == len(ref) == 30
    assert all(np.array_equal(a.image, b.image) for a, b in zip(got, ref))
    assert np.abs(np.array([a.time_s for a in got]) - [b.time_s for b in ref]).max() < 1e-6
    pa.check_complete()


def test_native_chatter_is_captured_safely_in_parallel_threads(tmp_path: Path) -> None:
    """Overlapping captures in threads (parallel corpus runs) each see their C-level chatter, Python's own
    stderr lines from any thread still get through meanwhile, and fd 2 is restored at the end (checked in a
    child process: its fd 2 and sys.stderr are the real ones)."""
    import subprocess
    import sys

    script = tmp_path / "capture.py"
    script.write_text("""
import os, sys, threading, time
from skinmask.media import native_stderr_captured
missed = []
def work(k):
    for i in range(30):
        with native_stderr_captured() as lines:
            os.write(2, f"libfake: chatter {k}.{i}\\n".encode())  # as a C library writes
            time.sleep(0.001)  # let the other threads in mid-capture
            if i % 10 == 0:
                print(f"python line {k}.{i}", file=sys.stderr)
        if f"libfake: chatter {k}.{i}" not in lines:
            missed.append(f"{k}.{i}")
threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
[t.start() for t in threads]
[t.join() for t in threads]
os.write(2, b"fd 2 after\\n")
print("missed", missed)
""")
    res = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60,
                         cwd=Path(__file__).resolve().parents[1])
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "missed []"
    assert "libfake" not in res.stderr
    assert all(f"python line {k}.{i}" in res.stderr for k in range(4) for i in (0, 10, 20)), res.stderr
    assert res.stderr.endswith("fd 2 after\n")
