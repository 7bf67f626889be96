"""The fine pass: a frame whose people are all small is worked on again, at a finer scale, inside them.

At the working scale (0.4 of a photo, 640x360 of a 1080p frame) the faces of people in a meeting room or a group
photo at a distance are 4-8 pixels across, below what the net can see as a face. Running every frame at full
resolution costs 6x and loses HGR1's large hands (0.939 -> 0.765) and CCP's street photos (0.643 -> 0.459): the
net is trained at its working scale. So only frames whose people are all small are worked on again: the person
prior finds someone (at least :data:`~skinmask.gate.MIN_PERSON_SHARE` of the frame), every person region is
shorter than ``max_height`` of the frame and so is every region of skin inside them (a quarter of the frame:
:data:`MAX_SKIN_REGION`; a face close to the camera, cut off by the frame, has a short person region), the net calls less than ``max_skin`` of the frame skin (a close-up
of skin, where the segmenter sees fragments of a person, is not a scene of small people), and the weights' face
networks (where they have them) find no face: BlazeFace finds faces from about 30 working pixels, and a group
photo of seated people (short person regions, faces of 15-40 working pixels) is worked on best at the working
scale (the fine pass on CCP's street photos, faces 16-32 working pixels: 0.643 -> 0.46). In such a frame the
box around all the people (plus :data:`MARGIN` of the frame) is cut from the full-size frame, resized to
``factor`` times the working scale (at most 1), run through the net with its prior maps cropped and resized to
match, brought back to the working size (``INTER_AREA``), and kept inside the person; outside the person the
frame's skin is dropped (a scene: the person gate at full weight).

The weights' metadata holds the three numbers (:attr:`skinmask.weights.WeightsMeta.fine_pass`), so every command
applies it through :class:`skinmask.inference.SkinModel`, and training calibrates the threshold with it in place.
Pure NumPy/OpenCV: this module decides and cuts; the model runs the net.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .archs import PERSON_LEVEL
from .gate import GATE_LEVEL, MIN_PERSON_SHARE

MARGIN = 0.03  # the people's box is widened by this share of the frame's size on each side
MIN_REGION = 0.001  # person regions smaller than this share of the frame do not count as people
MAX_SKIN_REGION = 0.25  # ...nor is a frame where a region of skin in a person is this tall a share of it (a close face)
MAX_FACTOR = 4.0  # the finer scale is at most this many times the working scale


def valid_fine_pass(values: tuple[float, ...]) -> bool:
    """Whether ``values`` is (max_height, max_skin, factor) in range: what weights may store."""
    return (len(values) == 3 and 0.0 < values[0] <= 1.0 and 0.0 < values[1] <= 1.0
            and 1.0 < values[2] <= MAX_FACTOR)


def small_people(probs: np.ndarray, person: np.ndarray, max_height: float, max_skin: float,
                 face: np.ndarray | None = None) -> bool:
    """Whether one working frame is a scene of small people: ``probs`` (h, w) float, ``person`` (h, w) uint8, and
    the face map (h, w) uint8 where the weights have face networks (a face they find is large enough)."""
    import cv2

    found = person >= PERSON_LEVEL
    if found.mean() < MIN_PERSON_SHARE or (probs >= GATE_LEVEL).mean() >= max_skin:
        return False
    if face is not None and face.any():
        return False
    n, _, stats, _ = cv2.connectedComponentsWithStats(found.astype(np.uint8), connectivity=8)
    regions = stats[1:][stats[1:, cv2.CC_STAT_AREA] >= MIN_REGION * found.size]
    if len(regions) == 0 or int(regions[:, cv2.CC_STAT_HEIGHT].max()) >= max_height * found.shape[0]:
        return False
    n, _, stats, _ = cv2.connectedComponentsWithStats(((probs >= GATE_LEVEL) & found).astype(np.uint8), connectivity=8)
    return n == 1 or int(stats[1:, cv2.CC_STAT_HEIGHT].max()) < MAX_SKIN_REGION * found.shape[0]


@dataclass(frozen=True)
class Crop:
    """The people's box in working pixels (y0:y1, x0:x1), the same box in the full frame, and the fine size."""

    work: tuple[int, int, int, int]
    full: tuple[int, int, int, int]
    size: tuple[int, int]  # (h, w) the crop is resized to for the fine pass


def people_crop(person: np.ndarray, frame_shape: tuple[int, int], working_scale: float, factor: float) -> Crop | None:
    """The box around every person region of a working person map (h, w), in working and full-frame pixels, and
    the size the full-frame crop is worked on at (``factor`` x ``working_scale``, at most full size); None where
    the finer scale would not be finer."""
    h, w = person.shape
    fine = min(1.0, factor * working_scale)
    if fine <= working_scale * 1.01:
        return None
    ys, xs = np.nonzero(person >= PERSON_LEVEL)
    my, mx = math.ceil(MARGIN * h), math.ceil(MARGIN * w)
    y0, y1 = max(0, int(ys.min()) - my), min(h, int(ys.max()) + 1 + my)
    x0, x1 = max(0, int(xs.min()) - mx), min(w, int(xs.max()) + 1 + mx)
    fh, fw = frame_shape
    full = (y0 * fh // h, min(fh, -(-y1 * fh // h)), x0 * fw // w, min(fw, -(-x1 * fw // w)))
    size = (max(1, round((full[1] - full[0]) * fine)), max(1, round((full[3] - full[2]) * fine)))
    return Crop(work=(y0, y1, x0, x1), full=full, size=size)


def crop_frame(frame: np.ndarray, crop: Crop) -> np.ndarray:
    """The full-size frame's crop (H, W, 3) uint8 at the fine size."""
    import cv2

    y0, y1, x0, x1 = crop.full
    part = frame[y0:y1, x0:x1]
    if part.shape[:2] == crop.size:
        return np.ascontiguousarray(part)
    return cv2.resize(part, crop.size[::-1], interpolation=cv2.INTER_AREA)


def crop_prior(prior: np.ndarray, crop: Crop) -> np.ndarray:
    """A working frame's prior maps ((h, w) or (h, w, K) uint8) cut to the crop and resized to its fine size: the
    person map bilinearly, any further (face) map by nearest neighbour."""
    import cv2

    y0, y1, x0, x1 = crop.work
    part = prior[y0:y1, x0:x1]
    size = crop.size[::-1]
    if part.ndim == 2:
        return cv2.resize(part, size, interpolation=cv2.INTER_LINEAR)
    maps = [cv2.resize(np.ascontiguousarray(part[..., 0]), size, interpolation=cv2.INTER_LINEAR)]
    maps += [cv2.resize(np.ascontiguousarray(part[..., k]), size, interpolation=cv2.INTER_NEAREST)
             for k in range(1, part.shape[-1])]
    return np.stack(maps, axis=-1)


def merge_fine(probs: np.ndarray, person: np.ndarray, fine: np.ndarray, crop: Crop) -> np.ndarray:
    """A working frame's probabilities (h, w) with the fine pass (at the crop's fine size) brought back to the
    working size inside the person, and nothing outside it."""
    import cv2

    y0, y1, x0, x1 = crop.work
    out = np.zeros_like(probs)
    back = cv2.resize(fine, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA)
    out[y0:y1, x0:x1] = np.where(person[y0:y1, x0:x1] >= PERSON_LEVEL, back, 0.0)
    return out
