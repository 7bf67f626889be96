"""Valid but unusual images all work: 16-bit, gray, RGBA/LA, palette, CMYK, EXIF rotation, 1x1, extreme shapes."""

import io
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from skinmask.inference import predict
from skinmask.media import read_image

RED_LEFT = np.zeros((20, 40, 3), np.uint8)
RED_LEFT[:, :20] = (255, 0, 0)  # RGB


def _pil_bytes(image: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **kw)
    return buf.getvalue()


@pytest.mark.parametrize(
    "name,data,shape",
    [
        ("palette.png", _pil_bytes(Image.fromarray(RED_LEFT).convert("P"), "PNG"), (20, 40)),
        ("la.png", _pil_bytes(Image.fromarray(RED_LEFT).convert("LA"), "PNG"), (20, 40)),
        ("rgba.png", _pil_bytes(Image.fromarray(RED_LEFT).convert("RGBA"), "PNG"), (20, 40)),
        ("gray16.png", cv2.imencode(".png", (np.arange(800, dtype=np.uint16).reshape(20, 40) * 80))[1].tobytes(), (20, 40)),
        ("cmyk.jpg", _pil_bytes(Image.fromarray(RED_LEFT).convert("CMYK"), "JPEG", quality=95), (20, 40)),
        ("one.png", cv2.imencode(".png", np.full((1, 1, 3), 200, np.uint8))[1].tobytes(), (1, 1)),
        ("wide.png", cv2.imencode(".png", np.full((2, 3000, 3), 90, np.uint8))[1].tobytes(), (2, 3000)),
        ("tall.jpg", cv2.imencode(".jpg", np.full((3000, 3, 3), 90, np.uint8))[1].tobytes(), (3000, 3)),
    ],
)
def test_unusual_images_predict(run_cli, tmp_path: Path, weights_file: Path, name: str, data: bytes, shape) -> None:
    src = tmp_path / name
    src.write_bytes(data)
    image = read_image(src)
    assert image.shape == (*shape, 3) and image.dtype == np.uint8
    res = run_cli("predict", src, "-o", tmp_path / "out", "-w", weights_file, "-q")
    assert res.code == 0, res
    mask = cv2.imread(str(tmp_path / "out" / (src.stem + ".png")), cv2.IMREAD_UNCHANGED)
    assert mask.shape == shape


def test_colours_survive_cmyk_and_palette() -> None:
    for data in (_pil_bytes(Image.fromarray(RED_LEFT).convert("P"), "PNG"),
                 _pil_bytes(Image.fromarray(RED_LEFT).convert("CMYK"), "JPEG", quality=95)):
        from skinmask.media import decode_image

        bgr = decode_image(data, "x")
        assert bgr[10, 5, 2] > 240 and bgr[10, 5, 0] < 20 and bgr[10, 35].max() < 20


def test_exif_orientation_is_honoured(tmp_path: Path, model) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # stored landscape, displayed rotated 90 degrees clockwise
    src = tmp_path / "rotated.jpg"
    src.write_bytes(_pil_bytes(Image.fromarray(RED_LEFT), "JPEG", exif=exif.tobytes(), quality=95))
    bgr = read_image(src)
    assert bgr.shape == (40, 20, 3)
    assert bgr[2, 10, 2] > 200 and bgr[-3, 10].max() < 40  # red now on top
    assert predict(model, bgr).shape == (40, 20)
