"""The hair zone (skinmask.hairzone): above and beside the top of each face found, nothing is skin."""

from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from skinmask.errors import WeightsError
from skinmask.hairzone import apply_hair_zone, hair_zone
from skinmask.weights import load_weights, save_weights

from ._rules import rule_models

ZONE = (0.6, 0.35, 0.15, 0.2)  # the default's: above, side, below, forehead


def _face_map(centres: list[tuple[int, int]], size: tuple[int, int] = (200, 300), axes: tuple[int, int] = (20, 30)):
    """A face map with one upright elliptical hull (40 wide, 60 tall) per centre (x, y)."""
    face = np.zeros(size, np.uint8)
    for c in centres:
        cv2.ellipse(face, c, axes, 0, 0, 360, 255, -1)
    return face


def test_the_zone_covers_hair_above_and_beside_the_face_top_and_spares_forehead_ears_and_face():
    face = _face_map([(100, 100)])  # hull: x 80..120, y 70..130 (w 40, h 60)
    zone = hair_zone(face, *ZONE)
    assert zone[45, 100] and zone[40, 70] and zone[60, 125]  # over the head; beside the top of the hull
    assert not zone[60, 100] and not zone[58, 105]  # the band of forehead right above the hull (0.2 h = 12 px)
    assert not zone[face > 0].any()  # the face itself
    assert not zone[85:].any()  # below 0.15 h under the top: eyebrows, ears, cheeks, neck
    assert not zone[:, :65].any() and not zone[:, 135:].any()  # at most 0.35 w beside the hull
    assert not zone[:30].any()  # at most 0.6 h above it
    assert not hair_zone(np.zeros_like(face), *ZONE).any()  # no face, no zone
    assert not hair_zone(_face_map([(100, 100)], axes=(1, 1)), *ZONE).any()  # too small a face region


def test_a_neighbours_face_is_never_in_the_zone():
    face = _face_map([(100, 100), (150, 115)])  # two heads side by side, the second lower
    zone = hair_zone(face, *ZONE)
    assert zone.any() and not zone[face > 0].any()


def test_apply_zeroes_only_the_zone_of_frames_with_faces():
    probs = np.full((2, 200, 300), 0.8, np.float32)
    faces = np.stack([_face_map([(100, 100)]), np.zeros((200, 300), np.uint8)])
    out = apply_hair_zone(probs, faces, ZONE)
    zone = hair_zone(faces[0], *ZONE)
    assert out[0][zone].max() == 0.0 and np.array_equal(out[0][~zone], probs[0][~zone])
    assert np.array_equal(out[1], probs[1])  # no face found: untouched
    assert probs.min() == pytest.approx(0.8)  # the input is not changed in place
    none = probs[1:]
    assert apply_hair_zone(none, faces[1:], ZONE) is none  # nothing to cut: no copy


def test_weights_carry_the_zone_and_both_engines_apply_it_after_the_gate(tmp_path: Path):
    from skinmask.prior import face_prior_specs

    meta = load_weights("default")[1]
    gated = replace(meta, person_gate=(0.05, 0.15, 0.2), face_prior=face_prior_specs(), hair_zone=None,
                    face_colour=None)
    plain, fast, ref, zoned_path = rule_models(tmp_path, gated, replace(gated, hair_zone=ZONE))
    assert load_weights(zoned_path)[1].hair_zone == ZONE and plain.meta.hair_zone is None
    img = cv2.imread(str(Path(__file__).resolve().parent.parent / "samples" / "astronaut.jpg"))
    p, a, b = (m.working_probability_image(img) for m in (plain, fast, ref))
    assert np.abs(a - b).max() < 1e-5
    maps = fast.priors(fast._to_working(img[None]))[0]
    zone = hair_zone(maps[..., 1], *ZONE)
    assert zone.any() and p[zone].max() > 0.5  # the astronaut's hair: half-way to skin without the zone
    assert a[zone].max() == 0.0 and np.allclose(a[~zone], p[~zone], atol=1e-6)


def test_weights_asking_for_a_zone_they_cannot_have_are_refused(tmp_path: Path):
    from skinmask.prior import face_prior_specs

    net, meta = load_weights("default")
    meta = replace(meta, person_gate=None, face_prior=None, face_colour=None)
    with pytest.raises(WeightsError, match="hair zone needs the face networks"):
        load_weights(save_weights(tmp_path / "a.safetensors", net, replace(meta, hair_zone=ZONE)))
    with pytest.raises(WeightsError, match="expected \\[above, side, below, forehead\\]"):
        load_weights(save_weights(tmp_path / "b.safetensors", net,
                                  replace(meta, face_prior=face_prior_specs(), hair_zone=(0.6, 0.35, 0.15))))
    with pytest.raises(WeightsError, match="each in 0..2"):
        load_weights(save_weights(tmp_path / "c.safetensors", net,
                                  replace(meta, face_prior=face_prior_specs(), hair_zone=(0.6, 3.0, 0.15, 0.2))))
