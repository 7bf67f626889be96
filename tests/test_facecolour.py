"""The face colour rule (skinmask.facecolour): near each face found, what is far from its skin colour is not skin."""

from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from skinmask.errors import WeightsError
from skinmask.facecolour import GeometryCache, apply_face_colour, face_colour_weights, face_geometry, valid_face_colour
from skinmask.weights import load_weights, save_weights

from ._rules import rule_models

RULE = (2.5, 5.0, 2.0)  # near, far, reach
SKIN = (120, 150, 205)  # BGR: a light skin tone
BLONDE = (110, 190, 215)  # BGR: blonde hair, as light and warm as the skin but yellower


def _scene(noise: float = 3.0, seed: int = 0):
    """A 200x300 frame: a face (ellipse, hull 40x60 at (100, 100)) of SKIN, a blonde band over it, a SKIN neck
    under it, and far to the right a blonde patch and a SKIN hand; the net called all of them skin (0.9)."""
    rng = np.random.default_rng(seed)
    frame = np.zeros((200, 300, 3), np.float32)
    frame[:] = (60, 70, 60)
    face = np.zeros((200, 300), np.uint8)
    cv2.ellipse(face, (100, 100), (20, 30), 0, 0, 360, 255, -1)
    frame[face > 0] = SKIN
    frame[40:68, 70:130] = BLONDE  # hair above the hull
    frame[132:160, 88:112] = SKIN  # neck
    frame[20:60, 250:290] = BLONDE  # blonde patch beyond the reach (2 face sizes = 120 px from the hull's box)
    frame[140:180, 250:290] = SKIN  # a hand beyond the reach
    frame = np.clip(frame + rng.normal(0, noise, frame.shape), 0, 255).astype(np.uint8)
    prob = np.full((200, 300), 0.05, np.float32)
    for y0, y1, x0, x1 in ((40, 68, 70, 130), (132, 160, 88, 112), (20, 60, 250, 290), (140, 180, 250, 290)):
        prob[y0:y1, x0:x1] = 0.9
    prob[face > 0] = 0.9
    return frame, prob, face


def test_hair_near_the_face_goes_while_its_skin_and_everything_out_of_reach_stay():
    frame, prob, face = _scene()
    w = face_colour_weights(frame, prob, face, *RULE)
    assert w is not None and w.dtype == np.float32
    assert w[45:65, 75:125].mean() < 0.05  # blonde hair over the face (within half the reach: full strength)
    assert w[135:158, 90:110].mean() > 0.95  # the neck has the face's colour
    assert (w[face > 0] == 1.0).all()  # the face itself is never touched
    assert (w[20:60, 250:290] == 1.0).all() and (w[140:180, 250:290] == 1.0).all()  # out of reach
    prob[70:100, 60:75] = 0.01  # beside the face, where the net sees next to no skin: left alone
    assert (face_colour_weights(frame, prob, face, *RULE)[70:100, 60:75] == 1.0).all()
    assert w[70:100, 60:75].max() < 0.05  # (at 0.05 the background there is weighed, and far from the face's colour)


def test_the_rule_fades_out_over_the_second_half_of_its_reach():
    frame, prob, face = _scene()
    frame[:, 120:] = BLONDE  # blonde from the hull's right edge (x 120) to the frame's
    w = face_colour_weights(frame, prob, face, *RULE)
    row = w[100, 121:300]  # distance from the hull 1..179 px; reach 2 x 60 = 120, full strength up to 60
    assert row[:55].max() < 0.05 and row[125:].min() == 1.0
    assert np.all(np.diff(row[60:120]) >= -1e-6) and 0.3 < row[89] < 0.7  # rising, half-way at 90 px


def test_a_face_too_small_or_not_called_skin_gives_no_colour_model():
    frame, prob, face = _scene()
    tiny = np.zeros_like(face)
    cv2.circle(tiny, (100, 100), 3, 255, -1)
    assert face_colour_weights(frame, prob, tiny, *RULE) is None
    assert face_colour_weights(frame, np.full_like(prob, 0.3), face, *RULE) is None  # the net doubts the face


def test_apply_scales_only_frames_with_a_face_and_leaves_the_input_alone():
    frame, prob, face = _scene()
    probs = np.stack([prob, prob])
    faces = np.stack([face, np.zeros_like(face)])
    out = apply_face_colour(probs, np.stack([frame, frame]), faces, RULE)
    assert out[0][45:65, 75:125].max() < 0.1 and np.array_equal(out[1], prob)
    assert np.array_equal(probs[0], prob)  # not changed in place
    none = probs[1:]
    assert apply_face_colour(none, frame[None], faces[1:], RULE) is none  # no face: no copy


def test_a_face_with_no_colour_model_does_not_reach_out_beside_one_that_has():
    frame, prob, face = _scene()
    doubted = np.zeros_like(face)
    cv2.ellipse(doubted, (230, 100), (20, 30), 0, 0, 360, 255, -1)  # a second face, right, that the net doubts
    prob[doubted > 0] = 0.3
    frame[100:110, 175:200] = BLONDE  # blonde between the faces: 55-80 px from the first hull, 5-30 from the second
    prob[100:110, 175:200] = 0.9
    w = face_colour_weights(frame, prob, np.maximum(face, doubted), *RULE)
    alone = face_colour_weights(frame, prob, face, *RULE)
    assert np.array_equal(w[doubted == 0], alone[doubted == 0])  # the doubted face adds no strength
    assert (w[doubted > 0] == 1.0).all()  # ...and, a face, is not touched
    # what reaches there is the first face's rule, fading (75 px from its hull: strength 0.75), not full strength
    assert 0.1 < w[105, 195] < 0.4 and w[105, 176] < 0.05


def test_the_geometry_cache_gives_the_same_weights_and_follows_a_changed_face_map():
    frame, prob, face = _scene()
    cache = GeometryCache()
    first = cache.get(face, RULE[2])
    assert cache.get(face.copy(), RULE[2]) is first  # an equal map: the same geometry, computed once
    moved = np.roll(face, 12, axis=1)
    assert cache.get(moved, RULE[2]) is not first  # a new map (the prior refreshed): computed again
    assert cache.get(moved, RULE[2] / 2) is not cache.get(moved, RULE[2])  # another reach: another geometry
    for f in (face, moved, face):
        plain = apply_face_colour(prob[None], frame[None], f[None], RULE)
        cached = apply_face_colour(prob[None], frame[None], f[None], RULE, cache)
        assert np.array_equal(plain, cached)
        assert np.array_equal(cached[0], prob * face_colour_weights(frame, prob, f, *RULE,
                                                                    geometry=face_geometry(f, RULE[2])))


def test_valid_values():
    assert valid_face_colour((2.5, 5.0, 2.0))
    assert not valid_face_colour((5.0, 2.5, 2.0)) and not valid_face_colour((0.0, 2.0, 1.0))
    assert not valid_face_colour((2.5, 5.0, 0.0)) and not valid_face_colour((2.5, 5.0, 9.0))
    assert not valid_face_colour((2.5, 5.0))


def test_weights_carry_the_rule_and_both_engines_apply_it(tmp_path: Path):
    meta = load_weights("default")[1]
    plain, fast, ref, rule_path = rule_models(tmp_path, replace(meta, face_colour=None), replace(meta, face_colour=RULE))
    assert load_weights(rule_path)[1].face_colour == RULE and plain.meta.face_colour is None
    img = cv2.imread(str(Path(__file__).resolve().parent.parent / "samples" / "astronaut.jpg"))
    p, a, b = (m.working_probability_image(img) for m in (plain, fast, ref))
    assert np.abs(a - b).max() < 1e-5
    small = fast._to_working(img[None])
    faces = fast.priors(small)[0][..., 1]
    assert faces.any()
    w = face_colour_weights(small[0], p, faces, *RULE)
    assert w is not None and (w < 0.5).any()
    assert np.allclose(a, p * w, atol=1e-6)  # the rule after everything else, on the working frame
    assert (a <= p + 1e-7).all()  # it only ever removes


def test_weights_asking_for_a_rule_they_cannot_have_are_refused(tmp_path: Path):
    net, meta = load_weights("default")
    with pytest.raises(WeightsError, match="face colour rule needs the face networks"):
        load_weights(save_weights(tmp_path / "a.safetensors", net,
                                  replace(meta, person_gate=None, face_prior=None, face_colour=RULE)))
    with pytest.raises(WeightsError, match="expected \\[near, far, reach\\]"):
        load_weights(save_weights(tmp_path / "b.safetensors", net, replace(meta, face_colour=(5.0, 2.0, 1.0))))
