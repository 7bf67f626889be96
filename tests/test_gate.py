"""The person gate (skinmask.gate): scenes lose their skin outside the person, close-ups keep theirs."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from skinmask.errors import WeightsError
from skinmask.gate import MIN_PERSON_SHARE, apply_person_gate, gate_weights
from skinmask.weights import load_weights, save_weights


def _ungated_default():
    """The shipped default's network and metadata with no person gate and no face networks."""
    net, meta = load_weights("default")
    return net, replace(meta, person_gate=None, face_prior=None, face_colour=None)


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

    net, meta = _ungated_default()
    gated = save_weights(tmp_path / "g.safetensors", net, replace(meta, person_gate=(0.5, 0.9)))
    assert load_weights(gated)[1].person_gate == (0.5, 0.9)
    import cv2

    img = cv2.imread(str(Path(__file__).resolve().parent.parent / "samples" / "astronaut.jpg"))  # a person
    plain = load_model(save_weights(tmp_path / "u.safetensors", net, meta), "cpu", "onnxruntime")
    fast, ref = load_model(gated, "cpu", "onnxruntime"), load_model(gated, "cpu", "torch")
    p, a, b = plain.working_probability_image(img), fast.working_probability_image(img), ref.working_probability_image(img)
    prior = plain.priors(plain._to_working(img[None]))[0]
    outside = prior < 128
    assert 0.2 < outside.mean() < 0.9 and np.abs(a - b).max() < 1e-5
    w = gate_weights(p[None], 0.5, 0.9)[0]
    assert w > 0.5 and p[outside].max() > 0.5  # under half of the frame is skin: a scene, with skin outside
    np.testing.assert_allclose(a[outside], p[outside] * (1 - w), atol=1e-6)
    np.testing.assert_allclose(a[~outside], p[~outside], atol=1e-6)
    noise = np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8)  # no person in it: no gate
    assert (plain.priors(plain._to_working(noise[None]))[0] >= 128).mean() < MIN_PERSON_SHARE
    assert np.abs(fast.working_probability_image(noise) - plain.working_probability_image(noise)).max() < 1e-6
    stream = FrameStream()
    video = fast.working_probabilities(np.stack([img, img]), stream)
    assert np.abs(video[0] - fast.working_probabilities(img[None])[0]).max() < 1e-5  # the first frame of a stream: the same gated map
    with pytest.raises(WeightsError, match="takes no person prior"):
        bad, bmeta = load_weights("softconv-ctx")
        load_weights(save_weights(tmp_path / "b.safetensors", bad, replace(bmeta, person_gate=(0.1, 0.2))))
    with pytest.raises(WeightsError, match="expected \\[lo, hi\\]"):
        load_weights(save_weights(tmp_path / "c.safetensors", net, replace(meta, person_gate=(0.3, 0.2))))


def test_a_face_in_a_large_person_gates_the_frame_whatever_its_skin_share():
    close, prior = _frames(0.6)  # a skin share no ramp gates
    face = np.zeros_like(prior)
    stacked = np.stack([prior, face], axis=-1)
    assert np.array_equal(apply_person_gate(close, stacked, 0.05, 0.15, faces=0.3), close)  # no face found
    stacked[0, 10:20, 10:20, 1] = 255  # a face inside the person, who covers half of the frame
    out = apply_person_gate(close, stacked, 0.05, 0.15, faces=0.3)
    assert out[:, :, 50:].max() == 0.0 and np.array_equal(out[:, :, :50], close[:, :, :50])
    assert np.array_equal(apply_person_gate(close, stacked, 0.05, 0.15, faces=0.6), close)  # person too small
    with pytest.raises(ValueError, match="face map"):
        apply_person_gate(close, prior, 0.05, 0.15, faces=0.3)


def test_weights_with_a_face_confirmed_gate_name_the_face_networks_and_the_net_reads_the_person_map_only(tmp_path):
    import cv2

    from skinmask.inference import load_model
    from skinmask.prior import face_prior_specs

    net, meta = _ungated_default()
    faced = save_weights(tmp_path / "f.safetensors", net,
                         replace(meta, person_gate=(0.05, 0.15, 0.1), face_prior=face_prior_specs()))
    img = cv2.imread(str(Path(__file__).resolve().parent.parent / "samples" / "astronaut.jpg"))
    fast, ref = load_model(faced, "cpu", "onnxruntime"), load_model(faced, "cpu", "torch")
    a, b = fast.working_probability_image(img), ref.working_probability_image(img)
    assert np.abs(a - b).max() < 1e-5
    plain = load_model(save_weights(tmp_path / "p.safetensors", net, replace(meta, person_gate=None)), "cpu", "onnxruntime")
    p = plain.working_probability_image(img)
    maps = fast.priors(fast._to_working(img[None]))[0]
    assert maps.shape[-1] == 2 and maps[..., 1].any()  # the astronaut's face is found
    person = maps[..., 0] >= 128
    assert person.mean() >= 0.1 and p[~person].max() > 0.1  # a portrait, with some skin called outside the person
    assert gate_weights(p[None], 0.05, 0.15)[0] == 0.0  # and a skin share (0.17) the ramp alone would not gate
    assert a[~person].max() == 0.0 and np.allclose(a[person], p[person], atol=1e-6)  # a found face gates fully
    with pytest.raises(WeightsError, match="names no face networks"):
        load_weights(save_weights(tmp_path / "n.safetensors", net, replace(meta, person_gate=(0.05, 0.15, 0.1))))
    with pytest.raises(WeightsError, match="takes no face map"):
        load_weights(save_weights(tmp_path / "m.safetensors", net, replace(meta, face_prior=face_prior_specs())))


def test_no_person_found_no_gate_and_a_few_people_a_partial_one():
    scene, prior = _frames(0.04)
    empty = np.zeros_like(prior)
    assert np.array_equal(apply_person_gate(scene, empty, 0.05, 0.15), scene)  # nobody to keep: nothing dropped
    few = np.zeros_like(prior)
    few[0, :5, :10] = 255  # a person over 0.5 % of the frame: half the gate
    out = apply_person_gate(scene, few, 0.05, 0.15)
    np.testing.assert_allclose(out[0, :4, 10:], 0.45, atol=1e-6)  # skin outside the person: 0.9 x (1 - 0.5)
    assert np.array_equal(out[0, :4, :10], scene[0, :4, :10])  # inside: kept
