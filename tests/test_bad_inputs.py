"""Every bad input: one error line naming the file, a non-zero exit, no traceback, no partial output."""

import io
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from .conftest import make_frame, write_video


def _jpeg(h: int = 64, w: int = 64) -> bytes:
    return cv2.imencode(".jpg", make_frame(h, w))[1].tobytes()


def _png(h: int = 64, w: int = 64) -> bytes:
    return cv2.imencode(".png", make_frame(h, w))[1].tobytes()


BAD_FILES = {
    "zero.jpg": (b"", "empty file"),
    "random.jpg": (bytes(np.random.default_rng(0).integers(0, 256, 3000, dtype=np.uint8)), "not an image"),
    "text.png": (b"just some words\nin a text file\n" * 20, "a text file, not an image"),
    "trunc.jpg": (_jpeg()[:900], "truncated JPEG"),
    "trunc.png": (_png()[:2000], "truncated PNG"),
    "crc.png": (_png()[:60] + b"\x00" * 40 + _png()[100:], "corrupt PNG"),
    "junk.mp4": (os.urandom(4000), "cannot open as a video"),
}


def _assert_one_clean_error(res, name: str, reason: str) -> None:
    lines = [ln for ln in res.err.splitlines() if ln.strip()]
    assert res.code == 1, res
    assert len(lines) == 1, f"expected one line, got: {lines}"
    assert lines[0].startswith("error: ") and name in lines[0] and reason in lines[0]
    assert "Traceback" not in res.err and "libpng" not in res.err.lower() or reason in lines[0]


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_file(run_cli, tmp_path: Path, weights_file: Path, name: str) -> None:
    data, reason = BAD_FILES[name]
    src = tmp_path / "in" / name
    src.parent.mkdir()
    src.write_bytes(data)
    out = tmp_path / "out"
    res = run_cli("predict", src, "-o", out, "-w", weights_file, "-q")
    _assert_one_clean_error(res, name, reason)
    assert not out.exists() or list(out.rglob("*")) == []
    assert src.read_bytes() == data  # the input is never touched


@pytest.mark.parametrize(
    "args,reason",
    [
        (["missing.jpg"], "no such file or folder"),
        (["emptydir"], "folder holds no images or videos"),
        (["nomatch/*.jpg"], "pattern matches no images or videos"),
    ],
)
def test_missing_paths(run_cli, tmp_path: Path, weights_file: Path, monkeypatch, args, reason) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "emptydir").mkdir()
    res = run_cli("predict", *args, "-o", "out", "-w", weights_file, "-q")
    _assert_one_clean_error(res, args[0], reason)
    assert not (tmp_path / "out").exists()


def test_directory_where_a_file_is_expected(run_cli, tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "a.png"), make_frame(8, 8))
    res = run_cli("predict", tmp_path / "a.png", "-o", tmp_path / "out", "-w", tmp_path, "-q")
    assert res.code == 1 and "is a directory, not a weights file" in res.err


def test_video_with_zero_frames(run_cli, tmp_path: Path, weights_file: Path) -> None:
    empty = tmp_path / "empty.mkv"
    writer = cv2.VideoWriter(str(empty), cv2.VideoWriter_fourcc(*"FFV1"), 25, (32, 32))
    writer.release()
    res = run_cli("predict", empty, "-o", tmp_path / "out", "-w", weights_file, "-q")
    assert res.code == 1 and "empty.mkv" in res.err and len(res.err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_video_truncated_mid_stream_keeps_decoded_frames(run_cli, tmp_path: Path, weights_file: Path) -> None:
    import json

    full = write_video(tmp_path / "full.mkv", n=60, size=(96, 64))
    cut = tmp_path / "in" / "cut.mkv"
    cut.parent.mkdir()
    data = full.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    res = run_cli("predict", cut, "-o", tmp_path / "out", "-w", weights_file, "-q", "--json")
    assert res.code == 1
    record = json.loads(res.out)
    assert record["complete"] is False and 0 < record["frames"] < 60
    lines = res.err.strip().splitlines()
    assert len(lines) == 1 and "cut.mkv" in lines[0] and "video ended early" in lines[0] and "incomplete" in lines[0]
    cap = cv2.VideoCapture(str(tmp_path / "out" / "cut.mkv"))
    n = 0
    while cap.read()[0]:
        n += 1
    assert n == record["frames"]


def test_unknown_codec(run_cli, tmp_path: Path, weights_file: Path) -> None:
    """A real container whose stream is not video OpenCV can decode."""
    src = tmp_path / "fake.avi"
    src.write_bytes(b"RIFF" + (1000).to_bytes(4, "little") + b"AVI LIST" + os.urandom(1000))
    res = run_cli("predict", src, "-o", tmp_path / "out", "-w", weights_file, "-q")
    _assert_one_clean_error(res, "fake.avi", "cannot open as a video")
