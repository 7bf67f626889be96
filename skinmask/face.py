"""Faces: Google MediaPipe's BlazeFace detector and Face Mesh (shipped as ONNX), a tracker, and the face region.

Pre- and post-processing follow MediaPipe's CPU graphs (``face_detection_short_range_cpu``,
``face_landmark_front_cpu`` and the subgraphs they name) as plain NumPy/OpenCV functions:

- detection: the frame letterboxed to 128x128 RGB in [-1, 1]; 896 SSD anchors (SsdAnchorsCalculator: 4
  layers, strides 8-16-16-16, fixed size); boxes and 6 keypoints decoded with scale 128; sigmoid scores
  kept from 0.5; weighted non-maximum suppression at IoU 0.3.
- landmarks: a square crop around the face, 1.5x the detection box's long side, turned so the eyes are
  level (keypoints 0 -> 1; landmarks 33 -> 263 when tracking), warped to 192x192 RGB in [0, 1]; 468 points
  projected back; face presence = sigmoid of the second output, the face is lost below 0.5.

All coordinates are pixels of the frame given (x right, y down). Keypoints of a detection: right eye,
left eye, nose tip, mouth centre, right ear tragion, left ear tragion (the subject's right: the image's left).

    tracker = FaceTracker(threads=1)
    for frame in frames:                      # uint8 BGR (H, W, 3)
        face = tracker(frame)                 # FaceLandmarks or None
        if face is not None:
            region = face_region(face.points, frame.shape)   # bool (H, W): face minus eyes and mouth
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from .onnxnets import Roi, crop, get_net, to_input

DETECTOR, MESH = "face_detection_short_range", "face_landmark"
MIN_DETECTION_SCORE = 0.5  # TensorsToDetectionsCalculator.min_score_thresh (FaceMesh's min_detection_confidence)
MIN_PRESENCE = 0.5  # face_landmark's ThresholdingCalculator (FaceMesh's min_tracking_confidence)
NMS_IOU = 0.3
ROI_SCALE = 1.5

# Face Mesh point sets (MediaPipe's face_mesh_connections.py): the eye and eyebrow outlines, the outer lips.
RIGHT_EYE = (33, 7, 163, 144, 145, 153, 154, 155, 133, 246, 161, 160, 159, 158, 157, 173)
LEFT_EYE = (263, 249, 390, 373, 374, 380, 381, 382, 362, 466, 388, 387, 386, 385, 384, 398)
RIGHT_EYEBROW = (46, 53, 52, 65, 55, 70, 63, 105, 66, 107)
LEFT_EYEBROW = (276, 283, 282, 295, 285, 300, 293, 334, 296, 336)
LIPS_OUTER = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 185, 40, 39, 37, 0, 267, 269, 270, 409)
FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152,
             148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)
N_LANDMARKS = 468


# --------------------------------------------------------------------------------------------- detection


@dataclass(frozen=True)
class Detection:
    """One face found by BlazeFace, in frame pixels."""

    box: np.ndarray  # (4,) xmin, ymin, xmax, ymax
    keypoints: np.ndarray  # (6, 2) x, y
    score: float

    @property
    def area(self) -> float:
        return float(max(0.0, self.box[2] - self.box[0]) * max(0.0, self.box[3] - self.box[1]))


@lru_cache(maxsize=4)
def ssd_anchors(size: int = 128, strides: tuple[int, ...] = (8, 16, 16, 16)) -> np.ndarray:
    """Anchor centres (A, 2) in [0, 1], MediaPipe's SsdAnchorsCalculator for BlazeFace short range.

    Options: anchor offset 0.5, aspect ratio 1 plus the interpolated scale (2 anchors per layer and cell),
    fixed anchor size (width = height = 1), consecutive layers of one stride sharing cells: 16x16x2 + 8x8x6 = 896.
    """
    centres = []
    layer = 0
    while layer < len(strides):
        same = 0
        while layer + same < len(strides) and strides[layer + same] == strides[layer]:
            same += 1
        cells = math.ceil(size / strides[layer])
        yy, xx = np.mgrid[0:cells, 0:cells]
        grid = np.stack([(xx + 0.5) / cells, (yy + 0.5) / cells], axis=-1).reshape(-1, 1, 2)  # (cells^2, 1, 2)
        centres.append(np.repeat(grid, 2 * same, axis=1).reshape(-1, 2))
        layer += same
    return np.concatenate(centres).astype(np.float32)


def decode_detections(regressors: np.ndarray, logits: np.ndarray, anchors: np.ndarray, scale: float = 128.0,
                      min_score: float = MIN_DETECTION_SCORE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Raw BlazeFace outputs of one image -> boxes (K, 4), keypoints (K, 6, 2), scores (K,), in [0, 1] units.

    ``regressors`` (A, 16): x, y, w, h then 6 (x, y) keypoints, offsets from the anchor in ``scale`` units.
    Scores are sigmoid(logit clipped to +-100); only those >= ``min_score`` are kept.
    """
    scores = 1.0 / (1.0 + np.exp(-np.clip(logits.reshape(-1).astype(np.float64), -100.0, 100.0)))
    keep = np.nonzero(scores >= min_score)[0]
    r = regressors[keep].astype(np.float64) / scale  # (K, 16)
    a = anchors[keep].astype(np.float64)  # (K, 2)
    centre = r[:, 0:2] + a
    half = r[:, 2:4] / 2.0
    boxes = np.concatenate([centre - half, centre + half], axis=1)
    keypoints = r[:, 4:16].reshape(-1, 6, 2) + a[:, None, :]
    return boxes, keypoints, scores[keep].astype(np.float64)


def iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Intersection over union of one box (4,) with many (K, 4), xmin ymin xmax ymax."""
    lo = np.maximum(box[:2], boxes[:, :2])
    hi = np.minimum(box[2:], boxes[:, 2:])
    inter = np.prod(np.clip(hi - lo, 0.0, None), axis=1)
    union = np.prod(box[2:] - box[:2]) + np.prod(boxes[:, 2:] - boxes[:, :2], axis=1) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def weighted_nms(boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray,
                 threshold: float = NMS_IOU) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """MediaPipe's WEIGHTED non-maximum suppression: each cluster (IoU > threshold with its best box) becomes the
    score-weighted mean of its boxes and keypoints, with the best box's score. Best first."""
    order = np.argsort(-scores, kind="stable")
    out = []
    while order.size:
        best = order[0]
        overlap = iou(boxes[best], boxes[order]) > threshold
        overlap[0] = True  # the best box is in its own cluster, even a degenerate one
        members, order = order[overlap], order[~overlap]
        w = scores[members][:, None]
        box = (boxes[members] * w).sum(0) / w.sum()
        kps = (keypoints[members] * w[:, :, None]).sum(0) / w.sum()
        out.append((box, kps, float(scores[best])))
    return out


class FaceDetector:
    """BlazeFace short range (faces within about 2 m of the camera): frames -> detections, best first."""

    def __init__(self, threads: int | None = None, min_score: float = MIN_DETECTION_SCORE) -> None:
        self.net = get_net(DETECTOR, threads)
        self.min_score = min_score
        self.size = self.net.spec.input_size[0]
        self.anchors = ssd_anchors(self.size)

    def __call__(self, frame: np.ndarray) -> list[Detection]:
        """uint8 BGR frame (H, W, 3) -> the faces in it."""
        return self.detect(frame[None])[0]

    def detect(self, frames: np.ndarray) -> list[list[Detection]]:
        """uint8 BGR frames (B, H, W, 3) -> the faces in each, in one network run."""
        h, w = frames.shape[1:3]
        side = float(max(h, w))
        roi = Roi(w / 2.0, h / 2.0, side, side)  # letterbox: the whole frame in a square, zeros around
        rgb = np.stack([cv2.cvtColor(crop(f, roi, (self.size, self.size)), cv2.COLOR_BGR2RGB) for f in frames])
        regressors, logits = self.net.run(to_input(rgb, self.net.spec))  # (B, 896, 16), (B, 896, 1)
        offset = np.array([roi.cx - side / 2.0, roi.cy - side / 2.0])
        results = []
        for b in range(len(frames)):
            boxes, kps, scores = decode_detections(regressors[b], logits[b], self.anchors, float(self.size), self.min_score)
            faces = []
            for box, k, s in weighted_nms(boxes, kps, scores):
                faces.append(Detection(box * side + np.tile(offset, 2), k * side + offset, s))
            results.append(faces)
        return results


# --------------------------------------------------------------------------------------------- landmarks


def normalize_radians(angle: float) -> float:
    return angle - 2.0 * math.pi * math.floor((angle + math.pi) / (2.0 * math.pi))


def roi_around(box: np.ndarray, start: np.ndarray, end: np.ndarray, scale: float = ROI_SCALE) -> Roi:
    """A square ROI on ``box`` (xmin, ymin, xmax, ymax), ``scale`` x its long side, turned so start -> end is level.

    MediaPipe's DetectionsToRectsCalculator (target angle 0) then RectTransformationCalculator
    (square_long, scale 1.5), in pixels.
    """
    rotation = normalize_radians(-math.atan2(-(end[1] - start[1]), end[0] - start[0]))
    side = float(max(box[2] - box[0], box[3] - box[1], 1.0)) * scale  # never an empty crop
    return Roi(float(box[0] + box[2]) / 2.0, float(box[1] + box[3]) / 2.0, side, side, rotation)


def roi_from_detection(det: Detection) -> Roi:
    """The Face Mesh crop for a new detection: eyes (keypoints 0 -> 1) level, 1.5x the box."""
    return roi_around(det.box, det.keypoints[0], det.keypoints[1])


def roi_from_landmarks(points: np.ndarray) -> Roi:
    """The Face Mesh crop for the next frame: the points' bounding box, 1.5x, eye corners 33 -> 263 level."""
    xy = points[:, :2]
    box = np.concatenate([xy.min(0), xy.max(0)])
    return roi_around(box, xy[33], xy[263])


@dataclass(frozen=True)
class FaceLandmarks:
    """Face Mesh output for one face: 468 points (x, y in frame pixels, z depth in the same scale)."""

    points: np.ndarray  # (468, 3) float32
    presence: float  # face-presence probability: below 0.5 the crop holds no face
    roi: Roi  # the crop they were found in

    @property
    def box(self) -> np.ndarray:
        """(4,) xmin, ymin, xmax, ymax of the points."""
        return np.concatenate([self.points[:, :2].min(0), self.points[:, :2].max(0)])


def project_landmarks(raw: np.ndarray, roi: Roi, size: int) -> np.ndarray:
    """Crop-space landmarks (468, 3) in ``size`` pixels -> frame pixels (MediaPipe's LandmarkProjectionCalculator)."""
    u = raw[:, 0] / size - 0.5
    v = raw[:, 1] / size - 0.5
    c, s = math.cos(roi.rotation), math.sin(roi.rotation)
    out = np.empty((len(raw), 3), np.float32)
    out[:, 0] = (c * u - s * v) * roi.width + roi.cx
    out[:, 1] = (s * u + c * v) * roi.height + roi.cy
    out[:, 2] = raw[:, 2] / size * roi.width
    return out


class FaceMesh:
    """Face Mesh: a frame and a face ROI -> 468 landmarks and a face-presence score."""

    def __init__(self, threads: int | None = None) -> None:
        self.net = get_net(MESH, threads)
        self.size = self.net.spec.input_size[0]

    def __call__(self, frame: np.ndarray, roi: Roi) -> FaceLandmarks:
        """uint8 BGR frame (H, W, 3) and a ROI -> landmarks (whatever the presence; check ``.presence``)."""
        return self.landmarks(frame[None], [roi])[0]

    def landmarks(self, frames: np.ndarray | list[np.ndarray], rois: list[Roi]) -> list[FaceLandmarks]:
        """One ROI per frame (a frame may be repeated for several faces), one network run."""
        size = (self.size, self.size)
        rgb = np.stack([cv2.cvtColor(crop(f, r, size, border="replicate"), cv2.COLOR_BGR2RGB)
                        for f, r in zip(frames, rois)])
        raw, flag = self.net.run(to_input(rgb, self.net.spec))  # (B, 1, 1, 1404), (B, 1, 1, 1)
        presence = 1.0 / (1.0 + np.exp(-flag.reshape(-1).astype(np.float64)))
        return [FaceLandmarks(project_landmarks(raw[i].reshape(N_LANDMARKS, 3), r, self.size), float(presence[i]), r)
                for i, r in enumerate(rois)]


# ----------------------------------------------------------------------------------------------- tracking


class FaceTracker:
    """Follows one face through a video as MediaPipe's Face Mesh does.

    BlazeFace runs on the first frame and whenever the face is lost (presence below ``min_presence``);
    otherwise the crop comes from the previous frame's landmarks. ``face``: None follows the largest face
    detected (the largest that Face Mesh confirms); N the N-th face from the left (0 = leftmost) at each
    (re)detection. ``detections`` counts the detector's runs.
    """

    def __init__(self, face: int | None = None, threads: int | None = None,
                 min_detection: float = MIN_DETECTION_SCORE, min_presence: float = MIN_PRESENCE) -> None:
        if face is not None and face < 0:
            raise ValueError(f"face index must be 0 or more, not {face}")
        self.face = face
        self.detector = FaceDetector(threads, min_detection)
        self.mesh = FaceMesh(threads)
        self.min_presence = min_presence
        self.roi: Roi | None = None  # where to look in the next frame
        self.detections = 0  # how many times the detector ran

    def reset(self) -> None:
        self.roi = None

    def candidates(self, faces: list[Detection]) -> list[Detection]:
        """The detections this tracker may follow, in order: largest first, or only the ``face``-th from the left."""
        if self.face is None:
            return sorted(faces, key=lambda d: -d.area)
        by_x = sorted(faces, key=lambda d: d.box[0] + d.box[2])
        return by_x[self.face : self.face + 1]

    def __call__(self, frame: np.ndarray) -> FaceLandmarks | None:
        """uint8 BGR frame (H, W, 3) -> the followed face's landmarks, or None when there is none."""
        if self.roi is not None:
            found = self.mesh(frame, self.roi)
            if found.presence >= self.min_presence:
                self.roi = roi_from_landmarks(found.points)
                return found
            self.roi = None  # lost: detect again in this same frame (MediaPipe waits for the next one)
        self.detections += 1
        for det in self.candidates(self.detector(frame)):
            found = self.mesh(frame, roi_from_detection(det))
            if found.presence >= self.min_presence:  # a detection the mesh calls no face is skipped
                self.roi = roi_from_landmarks(found.points)
                return found
        return None


# ------------------------------------------------------------------------------------------------ regions


def _hull(points: np.ndarray) -> np.ndarray:
    return cv2.convexHull(np.round(points[:, :2] * 16.0).astype(np.int32))  # 4 fractional bits


def face_region(points: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """bool mask (H, W): the convex hull of the 468 landmarks minus both eyes (with their brows) and the lips.

    The face region of pyVHR-style rPPG: skin of the forehead, cheeks, nose and chin, none of the parts
    that blink, move or are not skin. ``points`` (468, 2 or 3) in pixels of a frame of ``shape``.
    """
    h, w = shape[:2]
    mask = np.zeros((h, w), np.uint8)
    cv2.fillConvexPoly(mask, _hull(points), 255, lineType=cv2.LINE_8, shift=4)
    for part in (RIGHT_EYE + RIGHT_EYEBROW, LEFT_EYE + LEFT_EYEBROW, LIPS_OUTER):
        cv2.fillConvexPoly(mask, _hull(points[list(part)]), 0, lineType=cv2.LINE_8, shift=4)
    return mask > 0


MAX_FACES = 8  # faces mapped per frame by FaceMaps, largest first


class FaceMaps:
    """Where the faces are: 255 inside the convex hull of the 468 landmarks of every face BlazeFace finds and
    Face Mesh confirms (up to ``max_faces``, largest first), 0 elsewhere: the face map the ``softconv-face-prior``
    net takes beside the person prior (:mod:`skinmask.prior`)."""

    def __init__(self, threads: int | None = None, max_faces: int = MAX_FACES) -> None:
        self.detector = FaceDetector(threads)
        self.mesh = FaceMesh(threads)
        self.max_faces = max_faces

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        """uint8 BGR frames (B, H, W, 3) -> face maps (B, H, W) uint8 (0 or 255)."""
        out = np.zeros(frames.shape[:3], np.uint8)
        for b, faces in enumerate(self.detector.detect(frames)):
            faces = sorted(faces, key=lambda d: -d.area)[: self.max_faces]
            if not faces:
                continue
            found = self.mesh.landmarks([frames[b]] * len(faces), [roi_from_detection(d) for d in faces])  # no copies
            for lm in found:
                if lm.presence >= MIN_PRESENCE:
                    cv2.fillConvexPoly(out[b], _hull(lm.points), 255, lineType=cv2.LINE_8, shift=4)
        return out
