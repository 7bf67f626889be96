"""skinmask.sources: rawvideo frames, stdin images, path lists, stream sinks (no model, no subprocess)."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
import pytest

from skinmask.errors import IncompleteVideoError, InputError, UsageError
from skinmask.sources import (
    RawFrameReader,
    StreamSink,
    expand_path_list,
    open_raw,
    open_source,
    parse_size,
    read_path_list,
    read_stdin_image,
)

from .conftest import make_frame


class TrickleStream(io.RawIOBase):
    """A pipe-like stream that hands over at most ``chunk`` bytes per read."""

    def __init__(self, data: bytes, chunk: int = 7) -> None:
        self._data, self._pos, self._chunk = data, 0, chunk

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        n = min(len(b), self._chunk, len(self._data) - self._pos)
        b[:n] = self._data[self._pos : self._pos + n]
        self._pos += n
        return n


def frames(n: int = 3, h: int = 6, w: int = 8) -> list[np.ndarray]:
    return [make_frame(h, w, seed=i) for i in range(n)]


def test_parse_size() -> None:
    assert parse_size("528x592") == (528, 592)
    assert parse_size("64X48") == (64, 48)
    for bad in ("528", "0x4", "axb", "4x4x4", ""):
        with pytest.raises(UsageError, match="WIDTHxHEIGHT"):
            parse_size(bad)


@pytest.mark.parametrize("pix_fmt", ["bgr24", "rgb24", "gray"])
def test_raw_reader_formats_give_bgr(pix_fmt: str) -> None:
    src = frames()
    if pix_fmt == "bgr24":
        data, want = b"".join(f.tobytes() for f in src), src
    elif pix_fmt == "rgb24":
        data, want = b"".join(f[..., ::-1].tobytes() for f in src), src
    else:
        grays = [cv2.cvtColor(f, cv2.COLOR_BGR2GRAY) for f in src]
        data, want = b"".join(g.tobytes() for g in grays), [np.repeat(g[..., None], 3, 2) for g in grays]
    reader = RawFrameReader(TrickleStream(data), 8, 6, pix_fmt)
    got = list(reader)  # collected: every yielded frame must own its pixels (no reused buffer leaks)
    reader.check_complete()
    assert len(got) == 3 and reader.frames_read == 3
    for g, w in zip(got, want):
        assert g.shape == (6, 8, 3) and g.dtype == np.uint8
        np.testing.assert_array_equal(g, w)


def test_short_last_frame_yields_whole_frames_then_names_the_byte_count() -> None:
    data = b"".join(f.tobytes() for f in frames(2)) + b"\x01" * 100
    reader = RawFrameReader(io.BytesIO(data), 8, 6, "bgr24")
    assert len(list(reader)) == 2
    with pytest.raises(IncompleteVideoError, match=r"<stdin>: last raw frame is short: got 100 of 144 bytes"):
        reader.check_complete()


def test_no_whole_frame_is_an_input_error() -> None:
    with pytest.raises(InputError, match="got 5 of 144 bytes"):
        list(RawFrameReader(io.BytesIO(b"12345"), 8, 6))
    with pytest.raises(InputError, match=r"empty \(0 bytes\)"):
        list(RawFrameReader(io.BytesIO(b""), 8, 6))


def test_open_raw_reads_a_file_and_closes_it(tmp_path: Path) -> None:
    path = tmp_path / "clip.raw"
    path.write_bytes(b"".join(f.tobytes() for f in frames(2)))
    reader = open_raw(path, 8, 6)
    assert len(list(reader)) == 2 and reader.stream.closed
    with pytest.raises(InputError, match="cannot read"):
        open_raw(tmp_path / "missing.raw", 8, 6)
    with pytest.raises(UsageError, match="--pix-fmt"):
        open_raw(path, 8, 6, "yuv420p")


def test_open_source_kinds(tmp_path: Path) -> None:
    img = tmp_path / "a b.png"
    cv2.imwrite(str(img), make_frame(6, 8))
    src = open_source(str(img))
    assert (src.kind, src.name, src.stem) == ("image", str(img), "a b")
    np.testing.assert_array_equal(next(iter(src.frames)).image, make_frame(6, 8))
    raw = open_source("-", (8, 6), "gray", fps=25)
    assert (raw.kind, raw.name, raw.stem, raw.fps) == ("raw", "<stdin>", "stdin", 25)
    with pytest.raises(UsageError, match="--fps"):
        open_source(str(img), fps=0)


def test_read_stdin_image() -> None:
    ok, png = cv2.imencode(".png", make_frame(6, 8))
    np.testing.assert_array_equal(read_stdin_image(io.BytesIO(png.tobytes())), make_frame(6, 8))
    with pytest.raises(InputError, match="<stdin>: empty input"):
        read_stdin_image(io.BytesIO(b""))


def test_path_list_newlines_and_nul() -> None:
    text = b"a b.jpg\n\n  \nsub/c.png\r\nlast.jpg"
    assert read_path_list(io.BytesIO(text)) == ["a b.jpg", "sub/c.png", "last.jpg"]
    assert read_path_list(io.BytesIO(b"new\nline.jpg\0 x.jpg\0\0"), nul=True) == ["new\nline.jpg", " x.jpg"]
    assert read_path_list(io.BytesIO(b"bad\xff.jpg\n")) == ["bad\udcff.jpg"]  # undecodable names survive


def test_expand_path_list_mirrors_below_common_folder(tmp_path: Path) -> None:
    (tmp_path / "data" / "sub dir").mkdir(parents=True)
    a, b = tmp_path / "data" / "a.jpg", tmp_path / "data" / "sub dir" / "b c.jpg"
    a.write_bytes(b"x")
    b.write_bytes(b"x")
    items, errors = expand_path_list([str(a), str(b), str(tmp_path / "nope.jpg")])
    assert [i.rel for i in items] == [Path("a"), Path("sub dir/b c")]
    assert len(errors) == 1 and "nope.jpg: no such file" in str(errors[0])


def test_stream_sink_png_and_raw() -> None:
    mask = np.arange(48, dtype=np.uint8).reshape(6, 8)
    out = io.BytesIO()
    StreamSink(out, "image").write(mask)
    np.testing.assert_array_equal(cv2.imdecode(np.frombuffer(out.getvalue(), np.uint8), cv2.IMREAD_UNCHANGED), mask)
    out = io.BytesIO()
    sink = StreamSink(out, "raw")
    sink.write(mask)
    sink.write(mask[::-1])
    assert out.getvalue() == mask.tobytes() + mask[::-1].tobytes()
    with pytest.raises(Exception, match="frame size changed"):
        sink.write(mask[:3])
