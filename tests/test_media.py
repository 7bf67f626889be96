from pathlib import Path

import cv2
import numpy as np
import pytest

from skinmask.errors import InputError, OutputError
from skinmask.media import MaskVideoWriter, VideoReader, decode_image, read_image, seek_frame

from .conftest import make_frame, read_mask_video, write_video


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
