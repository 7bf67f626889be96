"""Property-based fuzzing of every reader: random and mutated bytes give a typed error or a valid result.

Never an uncaught exception, never a hang (hypothesis' deadline bounds each example).
"""

import io
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skinmask.errors import SkinmaskError
from skinmask.media import VideoReader, decode_image
from skinmask.weights import load_weights

from .conftest import make_frame

FUZZ = settings(max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture],
                derandomize=True)

_SEEDS = {
    "png": cv2.imencode(".png", make_frame(24, 32))[1].tobytes(),
    "jpg": cv2.imencode(".jpg", make_frame(24, 32))[1].tobytes(),
    "bmp": cv2.imencode(".bmp", make_frame(8, 8))[1].tobytes(),
}


@st.composite
def mutated(draw: st.DrawFn, seed: bytes) -> bytes:
    """A valid file with bytes flipped, a slice cut out, or its tail dropped."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(0, 8))):
        i = draw(st.integers(0, len(data) - 1))
        data[i] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        a = draw(st.integers(0, len(data)))
        b = draw(st.integers(a, len(data)))
        del data[a:b]
    return bytes(data[: draw(st.integers(0, len(data)))]) if draw(st.booleans()) else bytes(data)


def _check_image(data: bytes) -> None:
    try:
        image = decode_image(data, "fuzz.img")
    except SkinmaskError as exc:
        assert "fuzz.img" in str(exc) and "\n" not in str(exc)
        return
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3


@FUZZ
@given(st.binary(max_size=2048))
def test_image_decoder_random_bytes(data: bytes) -> None:
    _check_image(data)


@pytest.mark.parametrize("fmt", sorted(_SEEDS))
@FUZZ
@given(data=st.data())
def test_image_decoder_mutated_files(fmt: str, data: st.DataObject) -> None:
    _check_image(data.draw(mutated(_SEEDS[fmt])))


_VIDEO_SEED: dict[str, bytes] = {}


def _video_seed(tmp: Path) -> bytes:
    if not _VIDEO_SEED:
        path = tmp / "seed.avi"
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (32, 24))
        for i in range(6):
            writer.write(make_frame(24, 32, i))
        writer.release()
        _VIDEO_SEED["avi"] = path.read_bytes()
    return _VIDEO_SEED["avi"]


@settings(max_examples=60, deadline=5000, suppress_health_check=[HealthCheck.function_scoped_fixture],
          derandomize=True)
@given(data=st.data())
def test_video_reader_mutated_files(tmp_path: Path, data: st.DataObject) -> None:
    payload = data.draw(st.one_of(mutated(_video_seed(tmp_path)), st.binary(max_size=1024)))
    path = tmp_path / "fuzz.avi"
    path.write_bytes(payload)
    try:
        reader = VideoReader(path)
        frames = list(reader)
        reader.check_complete()
    except SkinmaskError as exc:
        assert "fuzz.avi" in str(exc)
        return
    assert frames and all(f.dtype == np.uint8 and f.ndim == 3 for f in frames)


_WEIGHTS_SEED: dict[str, bytes] = {}


@settings(max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture],
          derandomize=True)
@given(data=st.data())
def test_weights_loader_mutated_files(tmp_path: Path, weights_file: Path, data: st.DataObject) -> None:
    seed = _WEIGHTS_SEED.setdefault("w", weights_file.read_bytes())
    payload = data.draw(st.one_of(mutated(seed), st.binary(max_size=512)))
    path = tmp_path / "fuzz.safetensors"
    path.write_bytes(payload)
    try:
        net, meta = load_weights(path)
    except SkinmaskError as exc:
        assert "fuzz.safetensors" in str(exc)
        return
    assert net.conv1.out_channels == 32


@FUZZ
@given(payload=st.binary(max_size=4000), size=st.sampled_from([(4, 3), (7, 5), (16, 9)]),
       pix_fmt=st.sampled_from(["bgr24", "rgb24", "gray"]))
def test_raw_stream_reader_random_bytes(payload: bytes, size, pix_fmt: str) -> None:
    from skinmask.sources import RawFrameReader

    w, h = size
    reader = RawFrameReader(io.BytesIO(payload), w, h, pix_fmt, name="fuzz.raw")
    frame_bytes = w * h * (1 if pix_fmt == "gray" else 3)
    try:
        frames = list(reader)
        reader.check_complete()
    except SkinmaskError as exc:
        assert "fuzz.raw" in str(exc)
        assert len(payload) % frame_bytes != 0 or not payload
        return
    assert len(frames) == len(payload) // frame_bytes and len(payload) % frame_bytes == 0
    assert all(f.shape == (h, w, 3) for f in frames)
