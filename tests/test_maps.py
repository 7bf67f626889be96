import cv2
import numpy as np

from skinmask import maps
from skinmask.maps import to_mask


def test_threshold_masks() -> None:
    prob = np.array([[0.0, 0.49, 0.5, 1.0]], np.float32)
    assert to_mask(prob).tolist() == [[0, 125, 128, 255]]
    assert to_mask(prob, 0.5).tolist() == [[0, 0, 255, 255]]


def test_masks_from_working_size_maps() -> None:
    """8-bit masks from a working-size map: within 1/255 of resizing the float map, thresholds at 8-bit precision."""
    prob = np.array([[0.0, 0.49, 0.5, 1.0]], np.float32)
    assert maps.mask_from_working(prob, (1, 4)).tolist() == [[0, 125, 128, 255]]
    assert maps.mask_from_working(prob, (1, 4), 0.5).tolist() == [[0, 0, 255, 255]]
    assert maps.mask_from_working(prob, (1, 4), 0.0).tolist() == [[255] * 4]
    rng = np.random.default_rng(0)
    small = cv2.GaussianBlur(rng.random((48, 64)).astype(np.float32), (9, 9), 0)
    small = (small - small.min()) / (small.max() - small.min())
    full = maps.mask_from_working(small, (120, 160))
    ref = to_mask(maps.upsample_map(small, (120, 160)))
    assert full.shape == (120, 160) and np.abs(full.astype(int) - ref).max() <= 1
    binary = maps.mask_from_working(small, (120, 160), 0.5)
    assert set(np.unique(binary)) <= {0, 255}
    assert np.mean((binary > 0) != (ref >= 128)) < 0.01
