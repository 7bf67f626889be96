"""The fine pass (skinmask.finepass): frames of small people are worked on again, finer, inside the people."""

from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from skinmask.errors import WeightsError
from skinmask.finepass import MAX_FINE_PIXELS, Target, crop_prior, fine_region, merge_fine, target_crop
from skinmask.weights import load_weights, save_weights

from ._rules import rule_models
from .conftest import SAMPLE_IMAGE

RULE = (0.7, 0.2, 2.5)


def _person_map(boxes: list[tuple[int, int, int, int]], shape=(200, 300)) -> np.ndarray:
    person = np.zeros(shape, np.uint8)
    for y0, y1, x0, x1 in boxes:
        person[y0:y1, x0:x1] = 255
    return person


def small_people(*args) -> bool:
    """Whether fine_region calls the frame a scene of people the segmenter found."""
    target = fine_region(*args)
    return target is not None and target.people


def test_small_people_are_found_people_all_short_with_little_skin_and_no_face():
    probs = np.full((200, 300), 0.1, np.float32)
    people = _person_map([(100, 180, 20, 50), (90, 190, 200, 240)])  # two people, 80 and 100 of 200 rows tall
    assert small_people(probs, people, 0.7, 0.2)
    assert not small_people(probs, _person_map([(10, 190, 20, 60)]), 0.7, 0.2)  # one of them is 180 rows tall
    assert not small_people(probs, _person_map([(10, 190, 20, 60)] + [(100, 180, 200, 230)]), 0.7, 0.2)
    assert fine_region(probs, np.zeros_like(people), 0.7, 0.2) is None  # no one found, no skin
    assert not small_people(probs, _person_map([(100, 105, 20, 25)]), 0.7, 0.2)  # under 1 % of the frame: no one
    skin = probs.copy()
    skin[::4] = 0.9  # a quarter of the frame called skin (in short regions): not a scene of small people
    assert not small_people(skin, people, 0.7, 0.2) and small_people(skin, people, 0.7, 0.3)
    face_close = probs.copy()
    face_close[100:160, 20:50] = 0.9  # a region called skin 60 rows (30 %) tall: a face close to the camera
    assert not small_people(face_close, people, 0.7, 0.2)
    face_close[100:140, 20:50] = 0.1  # 20 rows (10 %): a small person's arm or face
    assert small_people(face_close, people, 0.7, 0.2)
    face_close[20:80, 100:130] = 0.9  # outside the people found too: a close face the segmenter finds only in part
    assert not small_people(face_close, people, 0.7, 0.2)
    face = np.zeros_like(people)
    assert small_people(probs, people, 0.7, 0.2, face)
    face[110:120, 30:40] = 255  # the face networks find a face: the people are large enough for the working scale
    assert not small_people(probs, people, 0.7, 0.2, face)
    specks = people.copy()
    specks[5, ::10] = 255  # single pixels (under MIN_REGION of the frame) are not people
    assert small_people(probs, specks, 0.7, 0.2)
    specks[:, 299] = 255  # a column of 200 pixels (0.3 % of the frame) is a region, and it is the frame's height
    assert not small_people(probs, specks, 0.7, 0.2)


def test_where_no_one_is_found_small_spots_of_skin_are_the_target():
    nobody = np.zeros((200, 300), np.uint8)
    probs = np.full((200, 300), 0.1, np.float32)
    for y, x in [(50, 40), (60, 200), (150, 120)]:
        probs[y:y + 12, x:x + 8] = 0.8  # three face-sized spots, 12 of 200 rows tall
    target = fine_region(probs, nobody, 0.7, 0.2)
    assert target is not None and not target.people and np.array_equal(target.mask, probs >= 0.5)
    hand = probs.copy()
    hand[60:120, 200:230] = 0.8  # one region 60 rows (30 %) tall: a hand or a face, large enough
    assert fine_region(hand, nobody, 0.7, 0.2) is None
    wide = probs.copy()
    wide[::8] = 0.8  # thin stripes, each a region 1 row tall, but an eighth of the frame: too much of it
    assert (wide >= 0.5).mean() > 0.1 and fine_region(wide, nobody, 0.7, 0.2) is None
    face = np.zeros_like(nobody)
    face[50:62, 40:48] = 255  # a face found
    assert fine_region(probs, nobody, 0.7, 0.2, face) is None


def test_the_people_crop_covers_them_with_a_margin_in_working_and_full_pixels():
    person = _person_map([(100, 180, 20, 50), (90, 190, 200, 240)]) >= 128
    crop = target_crop(person, (500, 750), 0.4, 2.5)
    y0, y1, x0, x1 = crop.work
    assert y0 < 90 and y1 > 190 - 1 and x0 < 20 and x1 > 240 - 1 and (y1 - y0) < 200 and (x1 - x0) < 300
    fy0, fy1, fx0, fx1 = crop.full
    assert (fy0, fx0) == (y0 * 500 // 200, x0 * 750 // 300) and fy1 >= y1 * 2.5 and fx1 >= x1 * 2.5
    assert crop.size == (fy1 - fy0, fx1 - fx0)  # 2.5 x 0.4: full size
    half = target_crop(person, (500, 750), 0.2, 2.5)
    assert half.size == (round((fy1 - fy0) * 0.5), round((fx1 - fx0) * 0.5))
    assert target_crop(person, (200, 300), 1.0, 2.5) is None  # already at full size: nothing finer
    huge = target_crop(person, (4000, 6000), 0.4, 2.5)  # at most MAX_FINE_PIXELS, however large the frame
    assert huge.size[0] * huge.size[1] <= MAX_FINE_PIXELS * 1.01 and huge.size[0] < huge.full[1] - huge.full[0]


def test_the_fine_map_comes_back_inside_the_person_and_nothing_outside():
    person = _person_map([(100, 180, 20, 50)])
    crop = target_crop(person >= 128, (200, 300), 0.4, 2.5)
    prior = np.stack([person, np.zeros_like(person)], axis=-1)
    cut = crop_prior(prior, crop)
    assert cut.shape == crop.size + (2,) and cut.dtype == np.uint8 and cut[..., 0].max() == 255
    fine = np.full(crop.size, 0.8, np.float32)
    coarse = np.full((200, 300), 0.5, np.float32)
    out = merge_fine(coarse, Target(person >= 128, people=True), fine, crop)
    assert out.shape == (200, 300) and np.allclose(out[person >= 128], 0.8) and out[person < 128].max() == 0.0
    spots = merge_fine(coarse, Target(person >= 128, people=False), fine, crop)  # no one found: the box, the rest kept
    y0, y1, x0, x1 = crop.work
    box = np.zeros((200, 300), bool)
    box[y0:y1, x0:x1] = True
    assert np.allclose(spots[box], 0.8) and np.array_equal(spots[~box], coarse[~box])


def _room() -> np.ndarray:
    """Two astronauts at 0.44 of the sample's size in a grey room twice as wide as it (512 x 1024)."""
    img = cv2.imread(str(SAMPLE_IMAGE))
    tile = cv2.resize(img, (224, 224), interpolation=cv2.INTER_AREA)
    room = np.full((512, 1024, 3), 90, np.uint8)
    room[288:, 150:374] = tile
    room[288:, 600:824] = tile
    return room


def test_weights_carry_the_fine_pass_and_every_path_applies_it(tmp_path: Path):
    """In a room of small people the fine pass changes the map inside them and drops the rest, alike in both
    engines, in stills and in the first frame of a video stream; a frame of one large person is unchanged."""
    from skinmask.temporal import FrameStream

    meta = load_weights("default")[1]
    plain, fast, ref, path = rule_models(tmp_path, replace(meta, fine_pass=None), replace(meta, fine_pass=RULE))
    assert load_weights(path)[1].fine_pass == RULE
    room = _room()
    small = plain._to_working(room[None])
    prior = plain.priors(small)[0]
    assert small_people(plain.working_probability_image(room), prior[..., 0], *RULE[:2], prior[..., 1])
    p, a, b = plain.working_probability_image(room), fast.working_probability_image(room), ref.working_probability_image(room)
    inside = prior[..., 0] >= 128
    assert a.shape == p.shape and np.abs(a - b).max() < 1e-4
    assert a[~inside].max() == 0.0
    assert np.abs(a - p)[inside].mean() > 0.01  # worked on again at full size inside the people
    video = fast.working_probabilities(np.stack([room, room]), FrameStream())
    assert np.abs(video[0] - a).max() < 1e-5
    probs, acts = fast.working_probabilities_and_activations(room[None])  # grids and sheets: the same map
    assert np.abs(probs[0] - a).max() < 1e-5 and acts.shape[1] == 32
    one = cv2.imread(str(SAMPLE_IMAGE))  # one person filling the frame: not small
    assert np.array_equal(fast.working_probability_image(one), plain.working_probability_image(one))


@pytest.mark.parametrize("values", [(0.7, 0.2), (0.0, 0.2, 2.5), (0.7, 1.5, 2.5), (0.7, 0.2, 1.0), (0.7, 0.2, 8.0)])
def test_weights_with_a_bad_fine_pass_are_refused(tmp_path: Path, values):
    net, meta = load_weights("default")
    with pytest.raises(WeightsError, match="fine_pass"):
        load_weights(save_weights(tmp_path / "b.safetensors", net, replace(meta, fine_pass=values)))


def test_a_fine_pass_needs_a_person_prior(tmp_path: Path):
    net, meta = load_weights("softconv-ctx")
    with pytest.raises(WeightsError, match="no person prior"):
        load_weights(save_weights(tmp_path / "c.safetensors", net, replace(meta, fine_pass=RULE)))


def test_people_too_small_for_the_segmenter_are_worked_on_again_and_the_rest_kept(tmp_path: Path):
    """Four 64-pixel astronauts in a grey 640x480 frame: the segmenter finds no one, the net calls a few small
    spots skin; the fine pass changes the map inside their box, alike in both engines, and keeps it outside."""
    from skinmask.inference import load_model

    net, meta = load_weights("default")
    plain, fast, ref, _ = rule_models(tmp_path, replace(meta, fine_pass=None), replace(meta, fine_pass=RULE), net)
    tile = cv2.resize(cv2.imread(str(SAMPLE_IMAGE)), (64, 64), interpolation=cv2.INTER_AREA)
    frame = np.full((480, 640, 3), 90, np.uint8)
    for y, x in [(60, 60), (60, 400), (300, 200), (300, 500)]:
        frame[y:y + 64, x:x + 64] = tile
    prior = plain.priors(plain._to_working(frame[None]))[0]
    p = plain.working_probability_image(frame)
    bare = replace(meta, fine_pass=None, person_gate=None, face_prior=None, face_colour=None)
    ungated = load_model(save_weights(tmp_path / "u.safetensors", net, bare), "cpu", "onnxruntime")
    target = fine_region(ungated.working_probability_image(frame), prior[..., 0], *RULE[:2], prior[..., 1])  # the net's own
    assert target is not None and not target.people
    crop = target_crop(target.mask, frame.shape[:2], plain.working_scale(*frame.shape[:2]), RULE[2])
    y0, y1, x0, x1 = crop.work
    box = np.zeros(p.shape, bool)
    box[y0:y1, x0:x1] = True
    a, b = fast.working_probability_image(frame), ref.working_probability_image(frame)
    assert np.abs(a - b).max() < 1e-4 and np.abs(a - p)[~box].max() < 1e-5  # kept outside (to float rounding)
    assert np.abs(a - p)[box].max() > 0.1
