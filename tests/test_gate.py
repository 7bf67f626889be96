"""The person gate (skinmask.gate): scenes lose their skin outside the person, close-ups keep theirs."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from skinmask.errors import WeightsError
from skinmask.gate import apply_person_gate, gate_weights
from skinmask.weights import load_weights, save_weights


def _frames(skin_share: float) -> tuple[np.ndarray, np.ndarray]:
    """One 100x100 frame: a person in the left half (prior 255), skin called over ``skin_share`` of the frame,
    half inside the person and half outside (probability 0.9), 0.1 elsewhere."""
    probs = np.full((1, 100, 100), 0.1, np.float32)
    probs[0, :int(round(skin_share * 100))] = 0.9  # whole rows, across both halves
    prior = np.zeros((1, 100, 100), np.uint8)
    prior[:, :, :50] = 255
    return probs, prior


def test_a_scene_drops_skin_outside_the_person_and_a_close_up_keeps_it():
    scene, prior = _frames(0.04)
    out = apply_person_gate(scene, prior, 0.05, 0.15)
    assert np.array_equal(out[:, :, :50], scene[:, :, :50])  # inside the person nothing changes
    assert out[:, :, 50:].max() == 0.0 and scene[:, :, 50:].max() == pytest.approx(0.9)
    close, _ = _frames(0.6)
    assert np.array_equal(apply_person_gate(close, prior, 0.05, 0.15), close)  # most of the frame is skin: kept
    mid, _ = _frames(0.1)
    w = gate_weights(mid, 0.05, 0.15)[0]
    assert 0.0 < w < 1.0
    got = apply_person_gate(mid, prior, 0.05, 0.15)
    np.testing.assert_allclose(got[:, :, 50:], mid[:, :, 50:] * (1 - w), rtol=1e-6)
    # stacked priors (person, face map): the gate reads the person map, the first
    stacked = np.stack([prior, np.zeros_like(prior)], axis=-1)
    assert np.array_equal(apply_person_gate(scene, stacked, 0.05, 0.15), out)


def test_gate_weights_ramp_with_the_frames_own_skin_share():
    shares = [0.0, 0.05, 0.1, 0.15, 0.5]
    probs = np.stack([np.where(np.arange(10000).reshape(100, 100) < s * 10000, 0.8, 0.2) for s in shares]).astype(np.float32)
    np.testing.assert_allclose(gate_weights(probs, 0.05, 0.15), [1.0, 1.0, 0.5, 0.0, 0.0], atol=1e-6)


def test_weights_carry_the_gate_and_every_command_path_applies_it(tmp_path: Path):
    """The gate is stored in the metadata, both engines apply it alike (whole images and video streams), and
    a file asking for a gate it cannot have is refused."""
    from skinmask.inference import load_model
    from skinmask.temporal import FrameStream

    net, meta = load_weights("default")
    gated = save_weights(tmp_path / "g.safetensors", net, replace(meta, person_gate=(0.5, 0.9)))
    assert load_weights(gated)[1].person_gate == (0.5, 0.9)
    img = np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8)  # noise: no person in it
    plain = load_model("default", "cpu", "onnxruntime")
    fast, ref = load_model(gated, "cpu", "onnxruntime"), load_model(gated, "cpu", "torch")
    p, a, b = plain.working_probability_image(img), fast.working_probability_image(img), ref.working_probability_image(img)
    prior = plain.priors(plain._to_working(img[None]))[0]
    outside = prior < 128
    assert outside.mean() > 0.9 and np.abs(a - b).max() < 1e-5
    w = gate_weights(p[None], 0.5, 0.9)[0]
    assert w > 0.5  # little of a noise frame is skin: a scene
    np.testing.assert_allclose(a[outside], p[outside] * (1 - w), atol=1e-6)
    stream = FrameStream()
    video = fast.working_probabilities(np.stack([img, img]), stream)
    assert np.abs(video[0] - a).max() < 1e-5  # the first frame of a stream: the same gated map
    with pytest.raises(WeightsError, match="takes no person prior"):
        bad, bmeta = load_weights("softconv-ctx")
        load_weights(save_weights(tmp_path / "b.safetensors", bad, replace(bmeta, person_gate=(0.1, 0.2))))
    with pytest.raises(WeightsError, match="expected \\[lo, hi\\]"):
        load_weights(save_weights(tmp_path / "c.safetensors", net, replace(meta, person_gate=(0.3, 0.2))))
