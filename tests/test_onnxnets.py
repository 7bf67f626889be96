"""The shipped third-party networks: checksums, loading, batching, and MediaPipe's ROI crop."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from skinmask.errors import WeightsError
from skinmask.onnxnets import NETS, OnnxNet, Roi, crop, file_sha256, get_net, net_path


@pytest.mark.parametrize("name", sorted(NETS))
def test_shipped_file_matches_registry(name: str) -> None:
    assert file_sha256(net_path(name)) == NETS[name].sha256


def test_outputs_and_batch_axis(rng: np.random.Generator) -> None:
    for name, spec in NETS.items():
        net = get_net(name, threads=1)
        x = rng.uniform(*spec.input_range, size=(3, *spec.input_size, 3)).astype(np.float32)
        batched = net.run(x)
        singles = [net.run(x[i : i + 1]) for i in range(3)]
        for k, out in enumerate(batched):
            assert out.shape[0] == 3 and np.isfinite(out).all()
            np.testing.assert_allclose(out, np.concatenate([s[k] for s in singles]), atol=1e-4)
    assert get_net("face_landmark", threads=1) is get_net("face_landmark", threads=1)  # one session per process


def test_corrupted_copy_is_refused(tmp_path: Path) -> None:
    spec = NETS["selfie_segmentation"]
    bad = tmp_path / spec.file
    shutil.copy(net_path(spec.name), bad)
    data = bytearray(bad.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match=r"damaged or not the shipped one") as err:
        OnnxNet(spec, path=bad)
    assert str(bad) in str(err.value)
    with pytest.raises(WeightsError, match="missing"):
        OnnxNet(spec, path=tmp_path / "absent.onnx")


def test_wrong_input_shape_is_refused() -> None:
    with pytest.raises(ValueError, match=r"\(N, 128, 128, 3\)"):
        get_net("face_detection_short_range", threads=1).run(np.zeros((1, 64, 64, 3), np.float32))


def test_crop_maps_roi_corners_to_crop_corners(rng: np.random.Generator) -> None:
    image = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
    # an axis-aligned ROI at scale 1 is the plain slice, pixel for pixel
    np.testing.assert_array_equal(crop(image, Roi(40.0, 25.0, 20.0, 30.0), (30, 20)), image[10:40, 30:50])
    # rotation is clockwise on screen: a ROI turned by +90 degrees has its top edge on the image's right
    marked = np.zeros((60, 80), np.uint8)
    marked[26:34, 44:50] = 255  # right of the ROI's centre (40, 30)
    turned = crop(marked, Roi(40.0, 30.0, 20.0, 20.0, np.pi / 2), (20, 20))
    rows = np.nonzero(turned.max(axis=1))[0]
    assert rows.size and rows.max() < 7 and 6 <= np.nonzero(turned.max(axis=0))[0].mean() <= 13
    # the whole frame, stretched
    whole = crop(image, Roi.whole(image.shape), (30, 40))
    assert whole.shape == (30, 40, 3)
    np.testing.assert_array_equal(whole, image[::2, ::2])


def test_model_card_names_every_checksum() -> None:
    card = (Path(__file__).resolve().parents[1] / "models" / "README.md").read_text()
    for spec in NETS.values():
        assert spec.file in card and spec.sha256 in card, f"models/README.md lacks {spec.file}'s sha256"
