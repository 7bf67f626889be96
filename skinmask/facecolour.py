"""Face colour: around every face the face networks find, what is far from that face's own skin colour is not skin.

Blonde and red hair, tan collars and hats have skin's colour to a net that sees a few dozen pixels, and they sit
inside the person, where the person gate (:mod:`skinmask.gate`) keeps everything. But next to each of them is a
face whose skin the net finds with confidence: the inside of its Face Mesh hull (the face map,
:class:`skinmask.face.FaceMaps`). Its chroma (CIE a*, b*: lighting moves it far less than lightness) is this
person's skin colour under this light. So for each face: a Gaussian of the a*, b* of its core (the hull eroded
by :data:`CORE_ERODE` of its size, where the net gives at least :data:`SKIN_LEVEL`; the farthest tenth dropped; a
spread of at least :data:`MIN_SPREAD`). Around it, a pixel's colour match is 1 at a Mahalanobis distance of
``near`` or less from the colour of the best-matching face near it, falling linearly to 0 at ``far``; the rule's
strength is 1 up to half of ``reach`` x the face's larger side from the hull, falling linearly to 0 at the full
reach (:data:`FADE`); the probability is scaled by 1 - strength x (1 - match). So hair and collars next to a face
go, skin of the face's colour stays, the rule fades out with no edge, and skin away from every face (a hand held
out, a person whose face is not found) is left as it is; the hull itself is never touched. The weights' metadata
holds the three numbers (:attr:`skinmask.weights.WeightsMeta.face_colour`); every command applies it through
:class:`skinmask.inference.SkinModel`, after the gate and hair zone, and training calibrates the threshold with
it in place. Its failure: bare skin near a face but lit unlike it (a torso under coloured stage light) is dimmed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SKIN_LEVEL = 0.5  # a hull pixel joins its face's colour sample from this probability (not the mask threshold)
CORE_ERODE = 0.08  # the hull is eroded by this share of sqrt(its area): the hairline and lips stay out of the sample
MIN_CORE_PIXELS = 30  # faces with fewer sampled pixels (at the working size) get no colour model
TRIM = 0.9  # the colour is re-fitted on this share of the sample nearest the first fit
MIN_SPREAD = 2.0  # a* / b* units: the least standard deviation a face's colour is given (flat, evenly lit faces)
MAX_REACH = 4.0  # reach is at most this many face sizes
FADE = 0.5  # the rule's strength fades out over this last share of the reach
MIN_PROB = 0.02  # pixels the net gives less are left alone (there is nothing to remove)
MAX_SAMPLES = 1024  # a face's colour is fitted on at most about this many of its core pixels (evenly spaced)


def valid_face_colour(values: tuple[float, ...]) -> bool:
    """Whether ``values`` is (near, far, reach) with 0 < near < far and 0 < reach <= MAX_REACH."""
    return len(values) == 3 and 0.0 < values[0] < values[1] and 0.0 < values[2] <= MAX_REACH


def _fit(ab: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean (2,), inverse covariance (2, 2)) of chroma samples (N, 2), robust to the farthest tenth."""
    floor = np.eye(2) * MIN_SPREAD**2

    def inverse_cov(x: np.ndarray, mu: np.ndarray) -> np.ndarray:
        c = x - mu
        return np.linalg.inv(c.T @ c / max(1, len(c) - 1) + floor)

    mu = np.median(ab, axis=0)
    inv = inverse_cov(ab, mu)
    c = ab - mu
    d = (c @ inv * c).sum(axis=1)
    k = int(TRIM * (len(d) - 1))
    near = ab[d <= np.partition(d, k)[k]]
    mu = near.mean(axis=0)
    return mu, inverse_cov(near, mu)


def _match_table(mu: np.ndarray, inv: np.ndarray, near: float, far: float, a_range: tuple[int, int] = (0, 256),
                 b_range: tuple[int, int] = (0, 256)) -> np.ndarray:
    """float32 (a1 - a0, b1 - b0): how well each 8-bit (a*, b*) pair of the ranges matches one face's colour: 1
    within ``near`` Mahalanobis distance, 0 from ``far`` (a look-up: a pixel then costs an index, not a distance)."""
    da = np.arange(*a_range, dtype=np.float64)[:, None] - mu[0]
    db = np.arange(*b_range, dtype=np.float64)[None, :] - mu[1]
    d = np.sqrt(inv[0, 0] * da * da + 2.0 * inv[0, 1] * da * db + inv[1, 1] * db * db)
    return np.clip((far - d) / (far - near), 0.0, 1.0).astype(np.float32)


@dataclass(frozen=True)
class _Face:
    """One face of a face map: its hull's box (y, x, h, w), the hull eroded (the colour sample's pixels, before the
    net's say), the box the rule reaches over (y0, y1, x0, x1) and the rule's strength there."""

    box: tuple[int, int, int, int]
    core: np.ndarray  # (h, w) bool
    reach: tuple[int, int, int, int]
    strength: np.ndarray  # float32 over the reach box: 1 near the hull, 0 at the reach


@dataclass(frozen=True)
class FaceGeometry:
    """What the rule needs of a face map alone (no frame, no probabilities): computed once per face map."""

    faces: tuple[_Face, ...]
    inside: np.ndarray  # (h, w) bool: in a face
    strength: np.ndarray  # (h, w) float32: the largest strength over all faces
    span: tuple[int, int, int, int]  # the union of the reach boxes (y0, y1, x0, x1)


def face_geometry(face: np.ndarray, reach: float) -> FaceGeometry:
    """The geometry of a face map (h, w) uint8 (> 0 inside a face) for the rule at ``reach`` face sizes."""
    import cv2

    n, labels, stats, _ = cv2.connectedComponentsWithStats((face > 0).astype(np.uint8), connectivity=8)
    h, w = face.shape
    strength = np.zeros((h, w), np.float32)
    faces = []
    for c in range(1, n):
        x, y, bw, bh, area = (int(v) for v in stats[c])
        r = max(1, round(CORE_ERODE * np.sqrt(area)))
        hull = (labels[y : y + bh, x : x + bw] == c).astype(np.uint8)
        core = cv2.erode(hull, np.ones((2 * r + 1, 2 * r + 1), np.uint8), borderValue=0) > 0
        span = reach * max(bw, bh)
        pad = int(np.ceil(span))
        y0, y1, x0, x1 = max(0, y - pad), min(h, y + bh + pad), max(0, x - pad), min(w, x + bw + pad)
        outside = np.ones((y1 - y0, x1 - x0), np.uint8)
        outside[y - y0 : y - y0 + bh, x - x0 : x - x0 + bw][hull > 0] = 0
        dist = cv2.distanceTransform(outside, cv2.DIST_L2, 3)
        near_face = np.clip((span - dist) / np.float32(FADE * span), 0.0, 1.0)
        np.maximum(strength[y0:y1, x0:x1], near_face, out=strength[y0:y1, x0:x1])
        faces.append(_Face((y, x, bh, bw), core, (y0, y1, x0, x1), near_face))
    boxes = np.array([f.reach for f in faces]).reshape(-1, 4)
    union = (int(boxes[:, 0].min()), int(boxes[:, 1].max()), int(boxes[:, 2].min()), int(boxes[:, 3].max())) \
        if faces else (0, 0, 0, 0)
    return FaceGeometry(tuple(faces), face > 0, strength, union)


class GeometryCache:
    """The geometry of the last face map seen: in a video the face map stays the same between prior refreshes
    (:class:`skinmask.temporal.FrameStream`), so its components, erosions and distance maps are computed once.
    A hit needs an equal map, so the result is the same as without the cache."""

    def __init__(self) -> None:
        self._entry: tuple[float, np.ndarray, FaceGeometry] | None = None

    def get(self, face: np.ndarray, reach: float) -> FaceGeometry:
        entry = self._entry  # one read: another thread may replace it
        if entry is not None and entry[0] == reach and np.array_equal(entry[1], face):
            return entry[2]
        geometry = face_geometry(face, reach)
        self._entry = (reach, face.copy(), geometry)
        return geometry


def face_colour_weights(frame: np.ndarray, prob: np.ndarray, face: np.ndarray, near: float, far: float,
                        reach: float, geometry: FaceGeometry | None = None) -> np.ndarray | None:
    """float32 (h, w) weights for one working frame (BGR uint8), its probabilities and face map (uint8, > 0 inside
    a face); None where no face gives a colour model (nothing to change). Only pixels the net gives at least
    :data:`MIN_PROB` are weighed (the rest keep weight 1: there is nothing there to remove). ``geometry``: the
    face map's :func:`face_geometry` (at this ``reach``), when the caller has it."""
    import cv2

    geometry = geometry or face_geometry(face, reach)
    h, w = face.shape
    keep = np.zeros((h, w), np.float32)  # how well a pixel's colour matches the best nearby face (1: within near)
    uy0, uy1, ux0, ux1 = geometry.span
    lab = None  # OpenCV's 8-bit Lab of the frame over the reach boxes: a*, b* + 128, in their own units
    used = []
    for f in geometry.faces:
        y, x, bh, bw = f.box
        sample = np.flatnonzero(f.core & (prob[y : y + bh, x : x + bw] >= SKIN_LEVEL))
        if len(sample) < MIN_CORE_PIXELS:
            continue
        if lab is None:
            lab = cv2.cvtColor(np.ascontiguousarray(frame[uy0:uy1, ux0:ux1]), cv2.COLOR_BGR2Lab)
        rows, cols = np.divmod(sample[:: max(1, len(sample) // MAX_SAMPLES)], bw)
        mu, inv = _fit(lab[rows + (y - uy0), cols + (x - ux0), 1:3].astype(np.float64))
        y0, y1, x0, x1 = f.reach
        a, b = lab[y0 - uy0 : y1 - uy0, x0 - ux0 : x1 - ux0, 1], lab[y0 - uy0 : y1 - uy0, x0 - ux0 : x1 - ux0, 2]
        a0, b0 = int(a.min()), int(b.min())
        table = _match_table(mu, inv, near, far, (a0, int(a.max()) + 1), (b0, int(b.max()) + 1))
        index = (a.astype(np.intp) - a0) * table.shape[1]  # the (a*, b*) pair's place in the flat table
        index += b
        index -= b0
        np.maximum(keep[y0:y1, x0:x1], table.ravel().take(index), out=keep[y0:y1, x0:x1])
        used.append(f)
    if lab is None:
        return None
    if len(used) == len(geometry.faces):
        strength = geometry.strength
    else:  # only faces with a colour model reach out
        strength = np.zeros((h, w), np.float32)
        for f in used:
            y0, y1, x0, x1 = f.reach
            np.maximum(strength[y0:y1, x0:x1], f.strength, out=strength[y0:y1, x0:x1])
    weights = 1.0 - strength * (1.0 - keep)
    weights[geometry.inside | (prob < MIN_PROB)] = 1.0  # inside a face, and where the net sees no skin, nothing changes
    return weights


def apply_face_colour(probs: np.ndarray, frames: np.ndarray, faces: np.ndarray,
                      rule: tuple[float, float, float], cache: GeometryCache | None = None) -> np.ndarray:
    """Probabilities (B, h, w) scaled by each frame's face-colour weights (working frames (B, h, w, 3) BGR uint8,
    face maps (B, h, w) uint8). ``cache`` keeps the last face map's geometry (a video's frames share it)."""
    out = None
    for b in range(len(probs)):
        if not faces[b].any():
            continue
        geometry = None if cache is None else cache.get(faces[b], rule[2])
        weights = face_colour_weights(frames[b], probs[b], faces[b], *rule, geometry=geometry)
        if weights is not None:
            if out is None:
                out = probs.copy()
            out[b] *= weights
    return probs if out is None else out
