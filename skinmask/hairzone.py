"""The hair zone: above and beside the top of every face the face networks find, what the net calls skin is hair.

Light hair (blonde, red, light brown) has skin's colour and texture to a net that sees a few dozen pixels, and
it sits inside the person, where the person gate (:mod:`skinmask.gate`) keeps everything. The face networks
(BlazeFace, then Face Mesh: the face map, :class:`skinmask.face.FaceMaps`) know where each face is: the convex
hull of its 468 landmarks, from the chin to the upper forehead. Hair is above that hull and beside its top; the
skin there is a band of forehead above the hull (Face Mesh stops short of the hairline) and, lower down, the
ears. So for each face (a connected region of the face map, bounding box ``w`` x ``h``) the zone is the box
from ``above * h`` over the hull's top to ``below * h`` under it, ``side * w`` wider than the hull on each side,
less every face's hull widened by :data:`MARGIN` of its width and swept up by ``forehead * h``; the probability
there is set to 0. The weights' metadata holds the four numbers (:attr:`skinmask.weights.WeightsMeta.hair_zone`), so every
command applies it (:class:`skinmask.inference.SkinModel`, after the person gate), and training calibrates the
threshold with it in place.
"""

from __future__ import annotations

import numpy as np

MARGIN = 0.05  # the hull is widened by this share of its width before the zone is cut around it
MIN_FACE_PIXELS = 16  # smaller face-map regions (at the working size) get no zone
MAX_REACH = 2.0  # each of the four numbers is at most this many face heights or widths


def valid_zone(zone: tuple[float, ...]) -> bool:
    """Whether ``zone`` is (above, side, below, forehead), each in 0..MAX_REACH: what weights may store."""
    return len(zone) == 4 and all(0.0 <= v <= MAX_REACH for v in zone)


def hair_zone(face: np.ndarray, above: float, side: float, below: float, forehead: float) -> np.ndarray:
    """bool (h, w): the hair zone of every face in one face map (h, w) uint8 (> 0 inside a face)."""
    import cv2

    boxes, kept = np.zeros(face.shape, bool), np.zeros(face.shape, bool)
    n, labels, stats, _ = cv2.connectedComponentsWithStats((face > 0).astype(np.uint8), connectivity=8)
    for c in range(1, n):
        x, y, w, h, area = (int(v) for v in stats[c])
        if area < MIN_FACE_PIXELS:
            continue
        y0, y1 = max(0, round(y - above * h)), min(face.shape[0], round(y + below * h))
        x0, x1 = max(0, round(x - side * w)), min(face.shape[1], round(x + w + side * w))
        boxes[y0:y1, x0:x1] = True
        hull = (labels == c).astype(np.uint8)
        r = max(1, round(MARGIN * w))
        hull = cv2.dilate(hull, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
        reach = round(forehead * h)
        if reach > 0:  # the kernel's lower half only: a pixel joins if the hull is within `reach` below it
            kernel = np.zeros((2 * reach + 1, 1), np.uint8)
            kernel[reach:] = 1
            hull = cv2.dilate(hull, kernel)
        kept |= hull > 0
    return boxes & ~kept & (face == 0)  # no face's own (widened) hull is ever another's hair


def apply_hair_zone(probs: np.ndarray, faces: np.ndarray, zone: tuple[float, float, float, float]) -> np.ndarray:
    """Probabilities (B, h, w) with each frame's hair zone (of its face map, (B, h, w) uint8) set to 0."""
    out = None
    for b in range(len(probs)):
        if not faces[b].any():
            continue
        cut = hair_zone(faces[b], *zone)
        if cut.any():
            if out is None:
                out = probs.copy()
            out[b][cut] = 0.0
    return probs if out is None else out
