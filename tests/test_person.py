"""PersonSegmenter on the shipped astronaut sample and on pictures with nobody in them."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from skinmask.person import PersonSegmenter
from tests.conftest import SAMPLE_IMAGE


@pytest.fixture(scope="module")
def segmenter() -> PersonSegmenter:
    return PersonSegmenter(threads=1)


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    image = cv2.imread(str(SAMPLE_IMAGE))
    assert image is not None
    return image  # 512x512: her face spans about x 175-275, y 40-170


def test_person_high_on_astronaut_low_in_corners(segmenter: PersonSegmenter, astronaut: np.ndarray) -> None:
    p = segmenter(astronaut)
    assert p.shape == astronaut.shape[:2] and p.dtype == np.float32
    assert p[80:150, 200:250].mean() > 0.95  # face
    assert p[300:400, 100:200].mean() > 0.95  # orange suit
    assert p[:60, :60].max() < 0.05 and p[:60, -60:].max() < 0.05  # flag, rocket


def test_nobody_in_blank_or_noise(segmenter: PersonSegmenter, rng: np.random.Generator) -> None:
    frames = np.stack([np.full((120, 160, 3), 128, np.uint8), rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)])
    assert segmenter(frames).max() < 0.05


def test_batch_and_size(segmenter: PersonSegmenter, astronaut: np.ndarray) -> None:
    wide = cv2.resize(astronaut, (640, 480))
    both = segmenter(np.stack([wide, wide[:, ::-1].copy()]), size=(120, 160))
    assert both.shape == (2, 120, 160)
    np.testing.assert_allclose(both[0], segmenter(wide, size=(120, 160)), atol=1e-5)
    # the mirrored frame gives (nearly) the mirrored map: the net sees the same person
    assert np.abs(both[1][:, ::-1] - both[0]).mean() < 0.05
    assert ((both[0] >= 0.5) == (cv2.resize(segmenter(wide), (160, 120)) >= 0.5)).mean() > 0.99


def test_bad_frames_refused(segmenter: PersonSegmenter) -> None:
    with pytest.raises(ValueError, match="uint8 BGR"):
        segmenter(np.zeros((1, 10, 10, 3), np.float32))
