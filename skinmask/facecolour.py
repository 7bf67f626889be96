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


def _match_table(mu: np.ndarray, inv: np.ndarray, near: float, far: float) -> np.ndarray:
    """float32 (256, 256): how well each 8-bit (a*, b*) pair matches one face's colour: 1 within ``near``
    Mahalanobis distance, 0 from ``far`` (a look-up: a pixel then costs an index, not a distance)."""
    v = np.arange(256, dtype=np.float64)
    da, db = v[:, None] - mu[0], v[None, :] - mu[1]
    d = np.sqrt(inv[0, 0] * da * da + 2.0 * inv[0, 1] * da * db + inv[1, 1] * db * db)
    return np.clip((far - d) / (far - near), 0.0, 1.0).astype(np.float32)


def face_colour_weights(frame: np.ndarray, prob: np.ndarray, face: np.ndarray, near: float, far: float,
                        reach: float) -> np.ndarray | None:
    """float32 (h, w) weights for one working frame (BGR uint8), its probabilities and face map (uint8, > 0 inside
    a face); None where no face gives a colour model (nothing to change). Only pixels the net gives at least
    :data:`MIN_PROB` are weighed (the rest keep weight 1: there is nothing there to remove)."""
    import cv2

    n, labels, stats, _ = cv2.connectedComponentsWithStats((face > 0).astype(np.uint8), connectivity=8)
    h, w = face.shape
    keep = np.zeros((h, w), np.float32)  # how well a pixel's colour matches the best nearby face (1: within near)
    strength = np.zeros((h, w), np.float32)  # how near it is to the nearest face (1 near the hull, 0 at reach)
    lab = None  # OpenCV's 8-bit Lab of the frame: a*, b* + 128, in their own units
    for c in range(1, n):
        x, y, bw, bh, area = (int(v) for v in stats[c])
        r = max(1, round(CORE_ERODE * np.sqrt(area)))
        hull = (labels[y : y + bh, x : x + bw] == c).astype(np.uint8)
        core = cv2.erode(hull, np.ones((2 * r + 1, 2 * r + 1), np.uint8), borderValue=0) > 0
        core &= prob[y : y + bh, x : x + bw] >= SKIN_LEVEL
        sample = np.flatnonzero(core)
        if len(sample) < MIN_CORE_PIXELS:
            continue
        if lab is None:
            lab = cv2.cvtColor(frame, cv2.COLOR_BGR2Lab)
        sample = sample[:: max(1, len(sample) // MAX_SAMPLES)]
        mu, inv = _fit(lab[y : y + bh, x : x + bw, 1:3].reshape(-1, 2)[sample].astype(np.float64))
        span = reach * max(bw, bh)
        pad = int(np.ceil(span))
        y0, y1, x0, x1 = max(0, y - pad), min(h, y + bh + pad), max(0, x - pad), min(w, x + bw + pad)
        outside = np.ones((y1 - y0, x1 - x0), np.uint8)
        outside[y - y0 : y - y0 + bh, x - x0 : x - x0 + bw][hull > 0] = 0
        dist = cv2.distanceTransform(outside, cv2.DIST_L2, 3)
        near_face = np.clip((span - dist) / np.float32(FADE * span), 0.0, 1.0)
        box = lab[y0:y1, x0:x1]
        match = _match_table(mu, inv, near, far)[box[..., 1], box[..., 2]]
        np.maximum(keep[y0:y1, x0:x1], match, out=keep[y0:y1, x0:x1])
        np.maximum(strength[y0:y1, x0:x1], near_face, out=strength[y0:y1, x0:x1])
    if lab is None:
        return None
    weights = 1.0 - strength * (1.0 - keep)
    weights[(face > 0) | (prob < MIN_PROB)] = 1.0  # inside a face, and where the net sees no skin, nothing changes
    return weights


def apply_face_colour(probs: np.ndarray, frames: np.ndarray, faces: np.ndarray,
                      rule: tuple[float, float, float]) -> np.ndarray:
    """Probabilities (B, h, w) scaled by each frame's face-colour weights (working frames (B, h, w, 3) BGR uint8,
    face maps (B, h, w) uint8)."""
    out = None
    for b in range(len(probs)):
        if not faces[b].any():
            continue
        weights = face_colour_weights(frames[b], probs[b], faces[b], *rule)
        if weights is not None:
            if out is None:
                out = probs.copy()
            out[b] *= weights
    return probs if out is None else out
