"""FrameStream: the prior refreshed every few frames, and the motion-adaptive smoothing of the maps."""

from __future__ import annotations

import numpy as np
import pytest

from skinmask.temporal import FrameStream


def _flicker(p: np.ndarray) -> float:
    return float(np.mean(np.abs(np.diff(p, axis=0)).mean(axis=(1, 2)) / p[1:].mean(axis=(1, 2))))


def _run(stream: FrameStream, frames: np.ndarray, probs: np.ndarray, batch: int = 3) -> np.ndarray:
    return np.concatenate([stream.smooth(frames[i:i + batch], probs[i:i + batch]) for i in range(0, len(frames), batch)])


def test_still_scene_noise_is_smoothed_and_batches_do_not_matter():
    rng = np.random.default_rng(0)
    frames = np.full((30, 24, 32, 3), 120, np.uint8)  # a still image
    probs = np.clip(0.6 + rng.normal(0, 0.05, (30, 24, 32)), 0, 1).astype(np.float32)  # noisy maps
    out = _run(FrameStream(), frames, probs)
    assert _flicker(out) < 0.6 * _flicker(probs)
    np.testing.assert_array_equal(out[0], probs[0])  # the first frame has no past
    np.testing.assert_allclose(out, _run(FrameStream(), frames, probs, batch=1), atol=1e-6)
    assert np.array_equal(_run(FrameStream(alpha=1.0), frames, probs), probs)  # alpha 1: off


def test_moving_image_and_real_jumps_follow_at_once():
    frames = np.zeros((6, 20, 40, 3), np.uint8)
    probs = np.zeros((6, 20, 40), np.float32)
    for t in range(6):  # a bright skin square moving 4 px a frame
        frames[t, 5:15, 4 * t:4 * t + 10] = 200
        probs[t, 5:15, 4 * t:4 * t + 10] = 0.9
    out = _run(FrameStream(), frames, probs)
    # where the square is now, the map is (almost) what the net said: no trail, no lag
    for t in range(1, 6):
        inside = probs[t] > 0
        assert out[t][inside].min() > 0.85 and out[t][~inside].max() < 0.1
    # a probability jump on a still image (the net changed its mind) is followed too
    still = np.full((2, 8, 8, 3), 90, np.uint8)
    jump = np.stack([np.zeros((8, 8)), np.ones((8, 8))]).astype(np.float32)
    assert _run(FrameStream(), still, jump)[1].min() == pytest.approx(1.0)


def test_prior_refreshes_every_n_frames_and_on_size_change():
    calls = []

    def compute(frames):
        calls.append(frames.shape)
        return np.full(frames.shape[:3], len(calls), np.uint8)

    stream = FrameStream(prior_every=4)
    a = np.zeros((5, 6, 8, 3), np.uint8)
    got = np.concatenate([stream.priors(a[:3], compute), stream.priors(a[3:], compute)])
    assert [int(g[0, 0]) for g in got] == [1, 1, 1, 1, 2] and len(calls) == 2
    stream.priors(np.zeros((1, 7, 8, 3), np.uint8), compute)  # another size: refreshed at once
    assert len(calls) == 3 and calls[-1] == (1, 7, 8, 3)
    with pytest.raises(ValueError):
        FrameStream(alpha=0.0)


def test_prior_refreshes_at_a_cut_but_not_for_noise_or_slow_change():
    calls = []

    def compute(frames):
        calls.append(1)
        return np.full(frames.shape[:3], len(calls), np.uint8)

    rng = np.random.default_rng(0)
    shot = rng.integers(60, 120, (48, 64, 3)).astype(np.int16)
    noisy = [np.clip(shot + rng.normal(0, 3, shot.shape) + 2 * t, 0, 255).astype(np.uint8) for t in range(6)]
    other = np.clip(255 - shot, 0, 255).astype(np.uint8)  # a new shot: 100+ gray levels away on average
    stream = FrameStream(prior_every=8)
    got = stream.priors(np.stack(noisy[:3]), compute)
    got = np.concatenate([got, stream.priors(np.stack([other, other] + noisy[3:4]), compute)])
    # refreshed at frame 0, at the cut (frame 3) and at the cut back (frame 5); noise and a slow drift are not cuts
    assert [int(g[0, 0]) for g in got] == [1, 1, 1, 2, 2, 3] and len(calls) == 3


def test_stacked_prior_maps_are_reused_whole():
    """Prior maps (B, h, w, K) (person, face) are kept and reused as one, refreshed on the same schedule."""
    calls = []

    def compute(frames):
        calls.append(len(frames))
        return np.stack([np.full(frames.shape[:3], len(calls)), np.full(frames.shape[:3], 10 * len(calls))], -1).astype(np.uint8)

    stream = FrameStream(prior_every=2)
    got = stream.priors(np.zeros((3, 6, 8, 3), np.uint8), compute)
    assert got.shape == (3, 6, 8, 2) and got.dtype == np.uint8 and len(calls) == 2
    assert [tuple(g[0, 0]) for g in got] == [(1, 10), (1, 10), (2, 20)]
    assert stream.priors(np.zeros((0, 6, 8, 3), np.uint8), compute).shape[0] == 0
