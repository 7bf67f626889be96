"""The fine pass: a frame of small people is worked on again, at a finer scale, where they are.

At the working scale (0.4 of a photo, 640x360 of a 1080p frame) the faces of people in a meeting room or a distant
group are 4-8 pixels across, below what the net can see as a face. Running every frame at full resolution costs
6x and loses HGR1's large hands (0.939 -> 0.765) and CCP's street photos, faces of 16-32 working pixels (0.643 ->
0.459): the net is trained at its working scale. So only frames of small people are worked on again, and only
where they are. None of them has a face the weights' face networks find (BlazeFace finds faces from about 30
working pixels: there the working scale serves), and either

- the person prior finds people (at least :data:`~skinmask.gate.MIN_PERSON_SHARE` of the frame), every person
  region is shorter than ``max_height`` of the frame, so is every region the net calls skin
  (:data:`MAX_SKIN_REGION`: a face close to the camera, which the segmenter finds only in part, is not), and the
  net calls less than ``max_skin`` of the frame skin (not a close-up's fragments of a person): the people are
  the target, and the rest of the frame is dropped (the person gate at full weight); or
- it finds no one, and the net calls a little of the frame skin (:data:`NOBODY_MAX_SKIN`), in regions all short
  (:data:`NOBODY_MAX_REGION`): people too small for the segmenter too. Those regions are the target, and the
  rest of the frame is kept.

The box around the target (plus :data:`MARGIN` of the frame) is cut from the full-size frame, resized to
``factor`` times the working scale (at most 1), run through the net with its prior maps cut and resized to
match, and brought back to the working size (``INTER_AREA``). The weights' metadata holds the three numbers
(:attr:`skinmask.weights.WeightsMeta.fine_pass`), so every command applies them through
:class:`skinmask.inference.SkinModel`, and training calibrates the threshold with them in place.
Pure NumPy/OpenCV: this module decides and cuts; the model runs the net.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .archs import PERSON_LEVEL
from .gate import GATE_LEVEL, MIN_PERSON_SHARE

MARGIN = 0.03  # the target's box is widened by this share of the frame's size on each side
GRID = 16  # ...and its edges put on a grid of this many working pixels
MIN_REGION = 0.001  # person regions smaller than this share of the frame do not count as people
MAX_SKIN_REGION = 0.25  # ...nor is a frame where a region called skin is this tall a share of it (a close face)
NOBODY_MAX_SKIN = 0.1  # where no one is found: a frame under this share called skin, in regions all shorter than
NOBODY_MAX_REGION = 0.15  # this share of its height, may hold people too small for the segmenter
MAX_FACTOR = 4.0  # the finer scale is at most this many times the working scale
MAX_FINE_PIXELS = 1920 * 1080  # ...and the crop is worked on at no more pixels than this (a 4K frame at --mask-scale)


def valid_fine_pass(values: tuple[float, ...]) -> bool:
    """Whether ``values`` is (max_height, max_skin, factor) in range: what weights may store."""
    return (len(values) == 3 and 0.0 < values[0] <= 1.0 and 0.0 < values[1] <= 1.0
            and 1.0 < values[2] <= MAX_FACTOR)


@dataclass(frozen=True)
class Target:
    """The working pixels a fine pass is for: the people found (the rest of the frame is dropped), or, where the
    segmenter finds no one, the small regions the net calls skin (the rest of the frame is kept)."""

    mask: np.ndarray  # (h, w) bool
    people: bool


def _regions(mask: np.ndarray, min_share: float = 0.0) -> np.ndarray:
    """Stats rows (x, y, w, h, area) of a bool mask's 8-connected regions of at least ``min_share`` of it."""
    import cv2

    n, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    return stats[1:][stats[1:, cv2.CC_STAT_AREA] >= min_share * mask.size]


def fine_region(probs: np.ndarray, person: np.ndarray, max_height: float, max_skin: float,
                face: np.ndarray | None = None) -> Target | None:
    """What of one working frame to work on again, or None where it is no scene of small people: ``probs`` (h, w)
    float, ``person`` (h, w) uint8, and the face map (h, w) uint8 where the weights have face networks."""
    if face is not None and face.any():  # a face found is large enough for the working scale
        return None
    h = probs.shape[0]
    skin, found = probs >= GATE_LEVEL, person >= PERSON_LEVEL
    if found.mean() < MIN_PERSON_SHARE:  # no one found: people too small for the segmenter too?
        spots = _regions(skin)
        if (len(spots) == 0 or skin.mean() >= NOBODY_MAX_SKIN
                or int(spots[:, 3].max()) >= NOBODY_MAX_REGION * h):
            return None
        return Target(skin, people=False)
    if skin.mean() >= max_skin:
        return None
    people = _regions(found, MIN_REGION)
    if len(people) == 0 or int(people[:, 3].max()) >= max_height * h:
        return None
    spots = _regions(skin)
    if len(spots) and int(spots[:, 3].max()) >= MAX_SKIN_REGION * h:
        return None
    return Target(found, people=True)


@dataclass(frozen=True)
class Crop:
    """The target's box in working pixels (y0:y1, x0:x1), the same box in the full frame, and the fine size."""

    work: tuple[int, int, int, int]
    full: tuple[int, int, int, int]
    size: tuple[int, int]  # (h, w) the crop is resized to for the fine pass


def _snap(lo: int, hi: int, size: int) -> tuple[int, int]:
    """lo:hi widened to multiples of :data:`GRID` within 0:size, so a box moves only when its target moves a lot
    (in video, every pixel whose box edge moved would switch between the fine and the coarse map)."""
    return max(0, lo // GRID * GRID), min(size, -(-hi // GRID) * GRID)


def target_crop(target: np.ndarray, frame_shape: tuple[int, int], working_scale: float, factor: float) -> Crop | None:
    """The box around a working frame's target pixels (h, w) bool, in working and full-frame pixels, and the size
    the full-frame crop is worked on at (``factor`` x ``working_scale``, at most full size); None where the finer
    scale would not be finer."""
    h, w = target.shape
    ys, xs = np.nonzero(target)
    my, mx = math.ceil(MARGIN * h), math.ceil(MARGIN * w)
    y0, y1 = _snap(int(ys.min()) - my, int(ys.max()) + 1 + my, h)
    x0, x1 = _snap(int(xs.min()) - mx, int(xs.max()) + 1 + mx, w)
    fh, fw = frame_shape
    full = (y0 * fh // h, min(fh, -(-y1 * fh // h)), x0 * fw // w, min(fw, -(-x1 * fw // w)))
    area = (full[1] - full[0]) * (full[3] - full[2])
    fine = min(1.0, factor * working_scale, math.sqrt(MAX_FINE_PIXELS / area))
    if fine <= working_scale * 1.01:
        return None
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


def merge_fine(probs: np.ndarray, target: Target, fine: np.ndarray, crop: Crop) -> np.ndarray:
    """A working frame's probabilities (h, w) with the fine pass (at the crop's fine size) brought back to the
    working size: for people, inside them and nothing outside; where no one was found, over the whole box."""
    import cv2

    y0, y1, x0, x1 = crop.work
    back = cv2.resize(fine, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA)
    if not target.people:
        out = probs.copy()
        out[y0:y1, x0:x1] = back
        return out
    out = np.zeros_like(probs)
    out[y0:y1, x0:x1] = np.where(target.mask[y0:y1, x0:x1], back, 0.0)
    return out
