"""Face detection, landmarks, tracking and the face region, on the shipped astronaut sample and made-up frames."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from skinmask.face import (
    LEFT_EYE,
    LIPS_OUTER,
    RIGHT_EYE,
    FaceDetector,
    FaceMesh,
    FaceTracker,
    decode_detections,
    face_region,
    roi_from_detection,
    ssd_anchors,
    weighted_nms,
)
from tests.conftest import SAMPLE_IMAGE

# By looking at samples/astronaut.jpg (512x512): her face (brows to chin, ear to ear) lies in x 175-275,
# y 75-180; eyes near (200, 100) and (248, 104), mouth near (224, 143).
FACE_BOX = (175, 75, 275, 180)


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    image = cv2.imread(str(SAMPLE_IMAGE))
    assert image is not None
    return image


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector(threads=1)


@pytest.fixture(scope="module")
def mesh() -> FaceMesh:
    return FaceMesh(threads=1)


def test_anchors_follow_ssd_layout() -> None:
    a = ssd_anchors()
    assert a.shape == (896, 2)
    np.testing.assert_allclose(a[:2], [[0.5 / 16, 0.5 / 16]] * 2)  # stride 8: 16x16 cells, 2 anchors each
    np.testing.assert_allclose(a[511], [15.5 / 16, 15.5 / 16])
    np.testing.assert_allclose(a[512:518], [[0.5 / 8, 0.5 / 8]] * 6)  # stride 16: 8x8 cells, 6 anchors each
    np.testing.assert_allclose(a[-1], [7.5 / 8, 7.5 / 8])


def test_decode_and_weighted_nms() -> None:
    anchors = ssd_anchors()
    reg = np.zeros((896, 16), np.float32)
    logits = np.full((896, 1), -20.0, np.float32)
    reg[600, :4] = [6.4, -12.8, 32.0, 25.6]  # centre shifted (+0.05, -0.1), size 0.25 x 0.2 (scale 128)
    reg[600, 4:6] = [12.8, 0.0]  # first keypoint 0.1 right of the anchor
    logits[600] = 2.0
    reg[601] = reg[600]
    reg[601, 0] += 6.4  # a neighbour 0.05 to the right: overlaps the first
    logits[601] = 0.0  # score 0.5: kept (>= 0.5)
    logits[602] = -0.1  # just below 0.5: dropped
    boxes, kps, scores = decode_detections(reg, logits, anchors)
    assert len(scores) == 2
    ax, ay = anchors[600]
    np.testing.assert_allclose(boxes[0], [ax + 0.05 - 0.125, ay - 0.1 - 0.1, ax + 0.05 + 0.125, ay - 0.1 + 0.1], atol=1e-6)
    np.testing.assert_allclose(kps[0, 0], [ax + 0.1, ay], atol=1e-6)
    np.testing.assert_allclose(scores[0], 1 / (1 + math.exp(-2.0)))
    (merged,) = weighted_nms(boxes, kps, scores)
    w = scores / scores.sum()
    np.testing.assert_allclose(merged[0], (boxes * w[:, None]).sum(0))  # score-weighted mean box
    assert merged[2] == pytest.approx(scores[0])  # with the best box's score
    far = boxes + [0.5, 0.5, 0.5, 0.5]
    assert len(weighted_nms(np.concatenate([boxes, far]), np.concatenate([kps, kps]), np.concatenate([scores, scores]))) == 2


def test_one_face_on_astronaut_where_it_is(detector: FaceDetector, astronaut: np.ndarray) -> None:
    (face,) = detector(astronaut)
    x0, y0, x1, y1 = face.box
    fx0, fy0, fx1, fy1 = FACE_BOX
    assert face.score > 0.8
    assert fx0 - 15 <= x0 <= fx0 + 25 and fx1 - 25 <= x1 <= fx1 + 15  # sides within the face's width
    assert fy0 - 15 <= y0 <= fy0 + 30 and fy1 - 25 <= y1 <= fy1 + 15
    right_eye, left_eye, nose, mouth = face.keypoints[:4]
    assert np.hypot(*(right_eye - (200, 100))) < 12 and np.hypot(*(left_eye - (248, 104))) < 12
    assert np.hypot(*(mouth - (224, 143))) < 12 and y0 < nose[1] < y1


def test_landmarks_inside_face_box(detector: FaceDetector, mesh: FaceMesh, astronaut: np.ndarray) -> None:
    (face,) = detector(astronaut)
    marks = mesh(astronaut, roi_from_detection(face))
    assert marks.points.shape == (468, 3) and marks.presence > 0.9
    fx0, fy0, fx1, fy1 = FACE_BOX
    xy = marks.points[:, :2]
    assert (xy[:, 0] > fx0 - 10).all() and (xy[:, 0] < fx1 + 10).all()
    assert (xy[:, 1] > fy0 - 15).all() and (xy[:, 1] < fy1 + 10).all()
    assert np.hypot(*(xy[list(RIGHT_EYE)].mean(0) - face.keypoints[0])) < 8  # the mesh's eyes on the detector's
    assert np.hypot(*(xy[list(LEFT_EYE)].mean(0) - face.keypoints[1])) < 8


def test_face_region_is_hull_minus_eyes_and_mouth(detector: FaceDetector, mesh: FaceMesh, astronaut: np.ndarray) -> None:
    points = mesh(astronaut, roi_from_detection(detector(astronaut)[0])).points
    region = face_region(points, astronaut.shape)
    assert region.shape == astronaut.shape[:2] and region.dtype == bool
    hull = np.zeros(astronaut.shape[:2], np.uint8)
    cv2.fillConvexPoly(hull, cv2.convexHull(np.round(points[:, :2]).astype(np.int32)), 1)
    outside = region & ~cv2.dilate(hull, np.ones((3, 3), np.uint8)).astype(bool)
    assert not outside.any()
    assert 0.5 < region.sum() / hull.sum() < 0.9
    at = lambda i: region[int(round(points[i, 1])), int(round(points[i, 0]))]  # noqa: E731
    assert not any(at(i) for i in (159, 145, 386, 374, 13, 14, 0, 17))  # eyelids, lips
    assert all(at(i) for i in (1, 4, 50, 280, 151, 152 - 4, 101, 330))  # nose, cheeks, forehead, chin


def test_no_face_in_blank_or_noise(detector: FaceDetector, rng: np.random.Generator) -> None:
    blank = np.full((480, 640, 3), 128, np.uint8)
    noise = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    on_blank, on_noise = detector.detect(np.stack([blank, noise]))
    assert on_blank == []
    assert all(d.score < 0.7 for d in on_noise)  # BlazeFace may fire weakly on noise (as in MediaPipe) ...
    tracker = FaceTracker(threads=1)
    assert tracker(noise) is None and tracker(blank) is None  # ... and Face Mesh then finds no face there
    assert tracker.detections == 2


def _moved(image: np.ndarray, dx: float, dy: float, degrees: float) -> tuple[np.ndarray, np.ndarray]:
    """The astronaut on a 640x480 canvas, turned about her face and shifted; and the 2x3 transform used."""
    m = cv2.getRotationMatrix2D((225.0, 125.0), degrees, 1.0)
    m[:, 2] += (64 + dx, 0 + dy)
    return cv2.warpAffine(image, m, (640, 480), borderMode=cv2.BORDER_REPLICATE), m


def test_tracker_follows_a_moving_turning_face(mesh: FaceMesh, astronaut: np.ndarray) -> None:
    tracker = FaceTracker(threads=1)
    first, m0 = _moved(astronaut, 0, 0, 0)
    start = tracker(first)
    assert start is not None
    tilt = math.degrees(tracker.roi.rotation)  # her eyes are not quite level in the sample
    ref = cv2.invertAffineTransform(m0) @ np.c_[start.points[:, :2], np.ones(468)].T  # (2, 468) in the sample
    errors = []
    for k in range(1, 13):
        frame, m = _moved(astronaut, 4.0 * k, -2.0 * k, 2.0 * k)  # up to 48 px right, 24 up, 24 degrees
        face = tracker(frame)
        assert face is not None
        expected = (m @ np.r_[ref, np.ones((1, 468))]).T
        errors.append(np.abs(face.points[:, :2] - expected).mean())
        # the next crop is turned with the face (turned counter-clockwise on screen: a negative ROI rotation)
        assert abs(math.degrees(tracker.roi.rotation) - tilt + 2.0 * k) < 1.5
    assert tracker.detections == 1  # found once, then followed from its own landmarks
    assert max(errors) < 1.5  # pixels, mean over the 468 points (measured 0.5-0.7)
    assert tracker(np.zeros((480, 640, 3), np.uint8)) is None  # the face gone: lost, nothing to follow
    assert tracker.roi is None


def test_tracker_picks_largest_or_index(astronaut: np.ndarray) -> None:
    head = astronaut[0:300, 100:400]
    small = cv2.resize(head, None, fx=0.8, fy=0.8)
    canvas = np.concatenate([head, np.pad(small, ((0, 60), (0, 0), (0, 0)), mode="edge")], axis=1)  # (300, 540)
    largest = FaceTracker(threads=1)(canvas)
    right = FaceTracker(face=1, threads=1)(canvas)
    left = FaceTracker(face=0, threads=1)(canvas)
    assert largest is not None and right is not None and left is not None
    assert largest.box[2] < 300 and right.box[0] > 300
    np.testing.assert_allclose(left.points, largest.points)
    assert FaceTracker(face=2, threads=1)(canvas) is None


@pytest.mark.shared
def test_face_on_a_ubfc_frame(shared_data) -> None:
    video = shared_data / "ubfc_rppg" / "subject3" / "vid.mp4"
    if not video.is_file():
        pytest.skip(f"{video} absent")
    cap = cv2.VideoCapture(str(video))
    try:
        ok, frame = cap.read()
    finally:
        cap.release()
    assert ok
    face = FaceTracker(threads=1)(frame)
    assert face is not None and face.presence > 0.9
    x0, y0, x1, y1 = face.box
    assert 60 < x1 - x0 < 400 and 0 <= x0 and x1 <= frame.shape[1]
    assert face_region(face.points, frame.shape).sum() > 0.3 * (x1 - x0) * (y1 - y0)


def test_face_maps_fill_every_face_hull_and_nothing_else(astronaut: np.ndarray, mesh: FaceMesh,
                                                         detector: FaceDetector) -> None:
    """FaceMaps: 255 inside the hull of each face's 468 points (two astronauts side by side: two faces), 0 on
    the rest of the frame and on a blank one."""
    from skinmask.face import FaceMaps

    maps = FaceMaps(threads=1)
    one = maps(astronaut[None])[0]
    assert one.shape == astronaut.shape[:2] and one.dtype == np.uint8 and set(np.unique(one)) == {0, 255}
    hull = np.zeros(astronaut.shape[:2], np.uint8)
    points = mesh(astronaut, roi_from_detection(detector(astronaut)[0])).points
    cv2.fillConvexPoly(hull, cv2.convexHull(np.round(points[:, :2]).astype(np.int32)), 255)
    assert np.mean(one != hull) < 0.002  # the same hull, up to its edge pixels
    x0, y0, x1, y1 = FACE_BOX
    assert one[(y0 + y1) // 2, (x0 + x1) // 2] == 255 and one[:40].max() == 0 and one[300:].max() == 0
    head = astronaut[:300, 100:350]  # her head and shoulders, twice side by side
    pair = np.concatenate([head, head], 1)
    two = maps(np.stack([pair, np.full_like(pair, 128)]))
    n_blobs, _ = cv2.connectedComponents((two[0] > 0).astype(np.uint8))
    assert n_blobs - 1 == 2
    assert np.mean((two[0][:, 250:] > 0) != (two[0][:, :250] > 0)) < 0.005  # the same face twice
    assert two[1].max() == 0


def test_face_map_net_gets_the_face_map_from_its_model(astronaut: np.ndarray) -> None:
    """A softconv-face-prior model computes its own prior maps (B, h, w, 2) from the frame, person then face, at
    the working size, with no flag: the face channel lies on her face."""
    from skinmask.inference import SkinModel
    from skinmask.maps import working_size
    from skinmask.model import SkinNet
    from skinmask.prior import default_prior_spec, face_prior_specs
    from skinmask.weights import WeightsMeta

    meta = WeightsMeta(arch="softconv-face-prior", prior=default_prior_spec(), face_prior=face_prior_specs(), scale=0.5)
    model = SkinModel(net=SkinNet("softconv-face-prior").eval(), meta=meta, device="cpu")
    h, w = working_size(512, 512, 0.5)
    small = cv2.resize(astronaut, (w, h), interpolation=cv2.INTER_AREA)
    prior = model.priors(small[None])
    assert prior.shape == (1, h, w, 2) and prior.dtype == np.uint8
    x0, y0, x1, y1 = (v // 2 for v in FACE_BOX)
    person, face = prior[0, ..., 0], prior[0, ..., 1]
    assert face[(y0 + y1) // 2, (x0 + x1) // 2] == 255 and face[:20].max() == 0
    assert person[(y0 + y1) // 2, (x0 + x1) // 2] > 200  # the person prior, first
    assert model.probability_image(astronaut).shape == (512, 512)
