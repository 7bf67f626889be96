"""Train a skin network on labelled datasets (and skin-free negatives), reproducibly.

What a training run does:

1. Loads every training image and mask once, resized by the model's working ``scale`` (the same
   INTER_AREA resize inference applies), into RAM.
2. Builds each batch from random crops, drawing the source *dataset* uniformly (balanced sampling;
   negatives get ``neg_weight`` shares), then an image; a share of crops is centred on skin. Crops
   get scale jitter, flips, blur, noise and JPEG re-encoding; illumination / white-balance /
   contrast / gamma jitter is available (``color_aug``) but off by default: on every held-out set it
   cost F1 (colour is this network's main cue, and jittering it blurs the skin/non-skin boundary). A share of negative crops get skin cut out of a labelled crop pasted
   onto them (``paste``) so skin is seen on cluttered backgrounds.
3. Optimises BCE (optionally plus the mean of the hardest pixels, ``hard_mining``) with Adam and a
   cosine schedule; logs loss and validation F1. With ``ema`` the moving average of the weights is kept
   (and scored, and saved) instead of the last step's.
4. Chooses the threshold that maximises the mean over datasets of per-image F1 on their held-out
   splits, and saves weights + metadata (architecture, input convention, scale, threshold, data with
   checksums, command, seed, config, metrics).

Same data, config and seed give the same weights on the same machine (one producer thread builds the
batches from a seeded generator; torch is seeded).
"""

from __future__ import annotations

import math
import platform
import queue
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .archs import PERSON_LEVEL
from .datasets import Dataset, load_sample, file_digest
from .errors import UsageError
from .heap import reuse_freed_memory


# Magnification of a close-up crop (``TrainConfig.closeups``): skin filling the crop, as in a belly photo or
# a tight face crop, where the ordinary crops (zoom 0.7-1.4) mostly show skin beside other things.
CLOSEUP_ZOOM = (2.0, 4.0)
# A head crop (``TrainConfig.head_zoom``) is cut from the full-resolution photo around its topmost skin region
# (the face of an upright person) and magnified by this much of full resolution: a street photo's 40-60 pixel
# face at the size a webcam face has at the working scale, with its hair, hat and collar labelled non-skin.
HEAD_ZOOM = (1.0, 2.0)
HEAD_WINDOW = 4.0  # side of the window kept around the face, in face widths

# Hair colours for ``TrainConfig.hair_recolour``, as (low, high) of OpenCV's 8-bit L, a, b: the labelled hair
# (FASSEG) is dark, so on its own it never shows the net a skin-coloured hair region to refuse.
HAIR_COLOURS = {
    "blonde": ((130, 215), (126, 140), (148, 180)),
    "red": ((60, 135), (150, 172), (150, 182)),
    "light brown": ((100, 170), (132, 146), (140, 165)),
    "grey": ((150, 235), (125, 132), (126, 142)),
}


@dataclass
class TrainConfig:
    arch: str = "softconv-ctx"
    scale: float = 0.4  # the shipped default's recipe (scripts/train_default.sh)
    steps: int = 4000
    batch: int = 24
    crop: int = 96
    lr: float = 3e-3
    weight_decay: float = 0.0
    seed: int = 0
    neg_weight: float = 1.0  # sampling share of the negatives folders, relative to one dataset
    dataset_weights: dict[str, float] = field(default_factory=dict)  # sampling share per dataset name (default 1)
    paste: float = 0.5  # probability a negative crop gets skin pasted onto it
    skin_crop: float = 0.5  # probability a labelled crop is centred on a skin pixel
    zoom: tuple[float, float] = (0.7, 1.4)  # range of the random magnification of each crop (log-uniform)
    hard_mining: float = 0.0  # >0: add the mean loss of this fraction of hardest pixels
    dice: float = 1.0  # >0: add this weight x per-crop soft-Dice loss (the per-image F1 the card reports)
    pos_weight: float = 1.0  # BCE weight of skin pixels
    augment: bool = True
    light_aug: float = 0.0  # >0: brightness gain exp(U(-a, a)) on every crop, colour ratios kept
    color_aug: float = 0.0  # strength of illumination / white-balance / contrast / gamma jitter (1 = strong)
    val_every: int = 250
    val_images: int = 16  # per dataset, for the progress F1
    threads: int = 2
    init: str | None = None  # weights to start from (fine-tuning)
    hair_weight: float = 1.0  # BCE weight of labelled hair pixels (labelled_multiclass/): an explicit negative
    hard_negatives: float = 0.0  # probability a negative crop is centred on a skin-coloured pixel (YCrCb rule)
    person_paste: float = 0.0  # probability a negative crop gets a whole person crop, shrunk, pasted onto it
    prior_dropout: float = 0.0  # probability a labelled crop's person prior is zeroed (the segmenter missed it)
    person_negative_weight: float = 1.0  # BCE weight of non-skin pixels the person prior calls person (prior nets)
    closeups: float = 0.0  # probability a labelled crop is a skin close-up: centred on skin, magnified CLOSEUP_ZOOM
    head_zoom: dict[str, float] = field(default_factory=dict)  # per dataset name: probability a crop is a head crop
    closeup_prior: str = "scaled"  # a close-up's prior: the image's scaled by U(0, 1), or "segmenter" run on the crop
    hair_recolour: float = 0.0  # probability a crop's labelled hair is recoloured to a HAIR_COLOURS shade
    no_worse_than: str | None = None  # weights the threshold must not regress against on any held-out split
    tolerance: float = 0.01  # ... by more than this per-image mean F1
    ema: float = 0.0  # >0: keep an exponential moving average of the weights with this decay, and ship it
    person_gate: tuple[float, float] | None = None  # (lo, hi) of skinmask.gate, stored with the weights (prior nets)
    gate_faces: float | None = None  # the gate also gates frames with a face and at least this person share
    hair_zone: tuple[float, float, float, float] | None = None  # skinmask.hairzone's geometry, stored with the weights
    fine_pass: tuple[float, float, float] | None = None  # skinmask.finepass's rule, stored with the weights
    face_colour: tuple[float, float, float] | None = None  # skinmask.facecolour's (near, far, reach), stored too
    threshold_tie: float = 0.0  # >0: the highest threshold whose mean held-out F1 is within this of the best


@dataclass
class _Source:
    name: str
    images: list[np.ndarray]
    masks: list[np.ndarray]  # float32 0..1, same size as the image
    skin_points: list[np.ndarray]  # (N, 2) y, x of some skin pixels per image (negatives: skin-coloured pixels)
    weight: float
    negatives: bool = False
    aux: list[np.ndarray | None] | None = None  # per image (H, W, 2 or 3) uint8: hair 0/255, person prior 0..255[, face 0/255]
    heads: list[tuple] | None = None  # head windows at full resolution: (image, mask, aux, skin points, person share)


@dataclass
class TrainResult:
    model: object
    meta: object
    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0


# ----------------------------------------------------------------------------- data in RAM


def _resize(image: np.ndarray, scale: float, interp: int) -> np.ndarray:
    """The image at the working size inference uses for this scale (:func:`skinmask.maps.working_size`)."""
    import cv2

    from .maps import working_size

    h, w = working_size(*image.shape[:2], scale)
    return image if (h, w) == image.shape[:2] else cv2.resize(image, (w, h), interpolation=interp)


def _points(sel: np.ndarray, limit: int = 2000) -> np.ndarray:
    ys, xs = np.nonzero(sel)
    if ys.size > limit:
        pick = np.linspace(0, ys.size - 1, limit).astype(np.int64)
        ys, xs = ys[pick], xs[pick]
    return np.stack([ys, xs], 1).astype(np.int32)


def head_window(mask: np.ndarray) -> tuple[int, int, int] | None:
    """(y0, x0, side) of a square of ``mask`` (full resolution, 0..1) around its topmost skin region, the face of
    an upright person: HEAD_WINDOW face widths wide, the face being the region's rows from its top down to 1.3x
    its widest row so far. None without a skin region of at least 50 pixels."""
    import cv2

    n, labels, stats, _ = cv2.connectedComponentsWithStats((mask > 0.5).astype(np.uint8), connectivity=8)
    areas = stats[1:, cv2.CC_STAT_AREA]
    if n < 2 or areas.max() < 50:
        return None
    keep = np.nonzero(areas >= max(50, 0.05 * areas.max()))[0] + 1
    label = keep[np.argmin(stats[keep, cv2.CC_STAT_TOP])]
    top, height = stats[label, cv2.CC_STAT_TOP], stats[label, cv2.CC_STAT_HEIGHT]
    region = labels[top:top + height] == label
    widths = region.sum(axis=1)
    widest = np.maximum.accumulate(widths)
    beyond = np.nonzero(np.arange(height) > 1.3 * np.maximum(widest, 4))[0]
    rows = int(beyond[0]) if beyond.size else height
    face = int(widest[rows - 1])
    cx = float(np.nonzero(region[:rows])[1].mean())
    h, w = mask.shape[:2]
    side = int(min(h, w, max(32, round(HEAD_WINDOW * face))))
    y0 = int(np.clip(round(top + rows / 2 - side / 2), 0, h - side))
    x0 = int(np.clip(round(cx - side / 2), 0, w - side))
    return y0, x0, side


def _head(img: np.ndarray, mask: np.ndarray, aux: np.ndarray | None, working: tuple[int, int]) -> tuple | None:
    """The head window of a full-resolution image (see :func:`head_window`): its pixels, mask and aux maps (the
    working-size ``aux`` resized up to it) and skin points, or None."""
    import cv2

    win = head_window(mask)
    if win is None:
        return None
    y0, x0, side = win
    hi = np.ascontiguousarray(img[y0:y0 + side, x0:x0 + side])
    hm = np.ascontiguousarray(mask[y0:y0 + side, x0:x0 + side])
    ha = None
    if aux is not None:
        fy, fx = working[0] / mask.shape[0], working[1] / mask.shape[1]
        ya, yb = int(y0 * fy), max(int(y0 * fy) + 1, int(round((y0 + side) * fy)))
        xa, xb = int(x0 * fx), max(int(x0 * fx) + 1, int(round((x0 + side) * fx)))
        ha = cv2.resize(aux[ya:yb, xa:xb], (side, side), interpolation=cv2.INTER_LINEAR).reshape(side, side, -1)
    return hi, hm, ha, _points(hm > 0.5)


def load_source(ds: Dataset, split: str, scale: float, weight: float, log: Callable[[str], None] | None = None,
                prior: Callable[[Path, np.ndarray], np.ndarray] | None = None, hair: bool = False,
                heads: bool = False) -> _Source:
    """A split of a dataset in RAM at the working scale. ``prior(image_path, working_image)`` gives the
    person prior (h, w) uint8 for prior nets, or (h, w, 2) with the face map; ``hair`` keeps the hair class
    (labels_multiclass/) as aux; ``heads`` keeps each image's head window at full resolution (:func:`head_window`)."""
    import cv2

    from .baselines import ycrcb_mask
    from .datasets import read_hair

    images, masks, points, aux, windows = [], [], [], [], []
    for s in ds.select(split):
        img, m = load_sample(s)
        full = (img, m.astype(np.float32)) if heads else None
        hair_mask = read_hair(s, m.shape) if hair else None
        img = _resize(img, scale, cv2.INTER_AREA)
        mf = _resize(m.astype(np.float32), scale, cv2.INTER_AREA)
        images.append(img)
        masks.append(mf)
        # negatives: skin-coloured pixels, the hard negatives a crop may be centred on
        points.append(_points(ycrcb_mask(img) if ds.negatives else mf > 0.5))
        if prior is None and hair_mask is None:
            aux.append(None)
            if full is not None and (head := _head(*full, None, img.shape[:2])) is not None:
                windows.append((*head, 0.0))
            continue
        maps = prior(s.image, img) if prior is not None else None
        a = np.zeros((*img.shape[:2], 1 + (1 if maps is None or maps.ndim == 2 else maps.shape[2])), np.uint8)
        if hair_mask is not None:
            a[..., 0] = np.rint(_resize(hair_mask.astype(np.float32), scale, cv2.INTER_AREA) * 255.0)
        if maps is not None:
            a[..., 1:] = maps.reshape(*img.shape[:2], -1)
        aux.append(a)
        if full is not None and (head := _head(*full, a, img.shape[:2])) is not None:
            windows.append((*head, frame_person_share(a[..., 1])))
    if log:
        log(f"loaded {ds.name} [{split}]: {len(images)} images" + (f", {len(windows)} head windows" if heads else ""))
    return _Source(ds.name, images, masks, points, weight, ds.negatives, aux if any(x is not None for x in aux) else None,
                   windows or None)


# ----------------------------------------------------------------------------- augmentation


def prior_maps(aux: np.ndarray) -> np.ndarray:
    """The prior maps of aux maps (..., 2 or 3) (hair, person[, face]): (...) person alone, (..., 2) with the face
    map, the form :func:`skinmask.engines.to_input` takes."""
    return aux[..., 1] if aux.shape[-1] == 2 else aux[..., 1:]


def frame_person_share(prior: np.ndarray) -> float:
    """The share of a uint8 person map at or above PERSON_LEVEL: what ``softconv-ps-prior`` reads of a frame."""
    return float((prior >= PERSON_LEVEL).mean()) if prior.size else 0.0


def _crop(img: np.ndarray, mask: np.ndarray, pts: np.ndarray, size: int, rng: np.random.Generator,
          cfg: TrainConfig, centre_on_skin: bool, aux: np.ndarray | None = None,
          zoom: tuple[float, float] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """A random crop (size x size) of the image, its mask and its aux maps (same geometry), magnified by a
    log-uniform factor in ``zoom`` (default ``cfg.zoom``)."""
    import cv2

    lo, hi = zoom or cfg.zoom
    f = math.exp(rng.uniform(math.log(lo), math.log(hi))) if cfg.augment else 1.0
    s = max(8, int(round(size / f)))
    h, w = img.shape[:2]
    if h < s or w < s:
        py, px = max(0, s - h), max(0, s - w)
        img = cv2.copyMakeBorder(img, py // 2, py - py // 2, px // 2, px - px // 2, cv2.BORDER_REFLECT_101)
        mask = cv2.copyMakeBorder(mask, py // 2, py - py // 2, px // 2, px - px // 2, cv2.BORDER_REFLECT_101)
        if aux is not None:
            aux = cv2.copyMakeBorder(aux, py // 2, py - py // 2, px // 2, px - px // 2, cv2.BORDER_REFLECT_101)
        pts = pts + np.array([py // 2, px // 2], np.int32) if pts.size else pts
        h, w = img.shape[:2]
    if centre_on_skin and pts.size:
        cy, cx = pts[rng.integers(len(pts))]
        y0 = int(np.clip(cy - s // 2 + rng.integers(-s // 4, s // 4 + 1), 0, h - s))
        x0 = int(np.clip(cx - s // 2 + rng.integers(-s // 4, s // 4 + 1), 0, w - s))
    else:
        y0 = int(rng.integers(0, h - s + 1))
        x0 = int(rng.integers(0, w - s + 1))
    ci = img[y0:y0 + s, x0:x0 + s]
    cm = mask[y0:y0 + s, x0:x0 + s]
    ca = None if aux is None else aux[y0:y0 + s, x0:x0 + s]
    if s != size:
        interp = cv2.INTER_AREA if s > size else cv2.INTER_LINEAR
        ci = cv2.resize(ci, (size, size), interpolation=interp)
        cm = cv2.resize(cm, (size, size), interpolation=cv2.INTER_LINEAR)
        ca = None if ca is None else cv2.resize(ca, (size, size), interpolation=cv2.INTER_LINEAR)
    if cfg.augment and rng.random() < 0.5:
        ci, cm = ci[:, ::-1], cm[:, ::-1]
        ca = None if ca is None else ca[:, ::-1]
    if cfg.augment and rng.random() < 0.1:
        ci, cm = ci[::-1], cm[::-1]
        ca = None if ca is None else ca[::-1]
    return np.ascontiguousarray(ci), np.ascontiguousarray(cm), None if ca is None else np.ascontiguousarray(ca)


def recolour_hair(img: np.ndarray, hair: np.ndarray, rng: np.random.Generator,
                  colours: dict[str, tuple] = HAIR_COLOURS) -> np.ndarray:
    """The BGR crop with its hair (``hair`` 0..255, soft) turned blonde, red, light brown or grey: the mean
    colour moves to a random shade of ``colours`` (:data:`HAIR_COLOURS`); the strands' lightness texture
    stays, in proportion to the new lightness (light hair shows its strands more than dark hair)."""
    import cv2

    alpha = hair.astype(np.float32) / 255.0
    sel = alpha > 0.5
    if np.count_nonzero(sel) < 16:
        return img
    lab = cv2.cvtColor(img, cv2.COLOR_BGR2LAB).astype(np.float32)
    shade = list(colours.values())[int(rng.integers(len(colours)))]
    target = np.array([rng.uniform(lo, hi) for lo, hi in shade], np.float32)
    mean = lab[sel].mean(0)
    gain = min(3.0, float(target[0]) / max(float(mean[0]), 1.0)) * rng.uniform(0.8, 1.2)
    spread = np.array([gain, 0.5, 0.5], np.float32)  # lightness texture kept, tint muted
    new = cv2.cvtColor(np.clip(target + (lab - mean) * spread + 0.5, 0, 255).astype(np.uint8), cv2.COLOR_LAB2BGR)
    a = alpha[..., None]  # blended in BGR: pixels outside the hair keep their exact values
    return np.clip(img.astype(np.float32) * (1 - a) + new.astype(np.float32) * a + 0.5, 0, 255).astype(np.uint8)


def photometric(img: np.ndarray, rng: np.random.Generator, strength: float = 1.0) -> np.ndarray:
    """Illumination, white balance, contrast, gamma (scaled by strength), blur, noise and JPEG on a BGR crop."""
    import cv2

    a = strength
    x = img.astype(np.float32) / 255.0
    gain = math.exp(rng.uniform(-0.6 * a, 0.35 * a))  # illumination
    wb = np.exp(rng.normal(0.0, 0.08 * a, 3)).astype(np.float32)  # white balance, per channel
    x = x * (gain * wb)
    c = rng.uniform(1 - 0.3 * a, 1 + 0.3 * a)  # contrast
    m = x.mean()
    x = (x - m) * c + m
    x = np.clip(x, 0.0, 1.0) ** math.exp(rng.uniform(-0.3 * a, 0.3 * a))  # gamma
    out = np.clip(x * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if rng.random() < 0.2:
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.4, 1.3))
    if rng.random() < 0.3:
        noise = rng.normal(0.0, rng.uniform(1.0, 8.0), out.shape).astype(np.float32)
        out = np.clip(out.astype(np.float32) + noise, 0, 255).astype(np.uint8)
    if rng.random() < 0.3:
        ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(30, 91))])
        if ok:
            out = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    return out


class BatchMaker:
    """Builds training batches from in-RAM sources with a seeded generator (deterministic)."""

    def __init__(self, sources: list[_Source], cfg: TrainConfig, seed: int,
                 crop_prior: Callable[[np.ndarray], np.ndarray] | None = None) -> None:
        self.sources = sources
        self.cfg = cfg
        self.crop_prior = crop_prior  # (h, w, 3) BGR crop -> (h, w) uint8 person map, for closeup_prior="segmenter"
        self.rng = np.random.default_rng(seed)
        w = np.array([s.weight for s in sources], np.float64)
        if not w.sum() > 0:
            raise UsageError("every dataset has sampling weight 0: nothing to train on")
        self.p = w / w.sum()
        self.labelled = [i for i, s in enumerate(sources) if not s.negatives]

    def _sample(self, src: _Source) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, float]:
        """One crop, its soft mask, its aux maps, and the person share of the photo it stands for: that of
        the image it was cut from, or of the crop itself where it is a photo of its own (close-ups, pastes)."""
        rng, cfg = self.rng, self.cfg
        k = int(rng.integers(len(src.images)))
        if src.negatives:
            on_skin = cfg.hard_negatives > 0 and rng.random() < cfg.hard_negatives  # a skin-coloured spot
        else:
            on_skin = rng.random() < cfg.skin_crop
        closeup = not src.negatives and cfg.closeups > 0 and rng.random() < cfg.closeups
        p_head = cfg.head_zoom.get(src.name, 0.0) if src.heads else 0.0
        head = not closeup and p_head > 0 and rng.random() < p_head
        if head:  # a street photo's head at full resolution, magnified to a webcam face's size
            hi, hm, ha, hp, share = src.heads[int(rng.integers(len(src.heads)))]
            img, m, a = _crop(hi, hm, hp, cfg.crop, rng, cfg, True, ha, HEAD_ZOOM)
        else:
            img, m, a = _crop(src.images[k], src.masks[k], src.skin_points[k], cfg.crop, rng, cfg, on_skin or closeup,
                              src.aux[k] if src.aux else None, CLOSEUP_ZOOM if closeup else None)
            share = frame_person_share(src.aux[k][..., 1]) if src.aux else 0.0
        if a is not None and cfg.hair_recolour > 0 and a[..., 0].any() and rng.random() < cfg.hair_recolour:
            img = recolour_hair(img, a[..., 0], rng)
        if closeup and a is not None:  # the segmenter, seeing only the close-up, may or may not find a person
            a = a.copy()
            if cfg.closeup_prior == "segmenter" and self.crop_prior is not None:
                a[..., 1] = self.crop_prior(img)  # what it says of this close-up seen as a whole photo
            else:
                a[..., 1] = np.rint(a[..., 1] * rng.uniform(0.0, 1.0))
            share = frame_person_share(a[..., 1])
        if a is not None and not src.negatives and cfg.prior_dropout > 0 and rng.random() < cfg.prior_dropout:
            a = a.copy()
            a[..., 1] = 0  # skin the segmenter did not see as a person (close-ups): the prior must not veto it
            share = 0.0
        if src.negatives and self.labelled and cfg.person_paste > 0 and rng.random() < cfg.person_paste:
            img, m, a = self._paste_person(img, a)
            share = frame_person_share(a[..., 1]) if a is not None else 0.0
        elif src.negatives and self.labelled and rng.random() < cfg.paste:
            donor = self.sources[self.labelled[int(rng.integers(len(self.labelled)))]]
            j = int(rng.integers(len(donor.images)))
            fg, fm, fa = _crop(donor.images[j], donor.masks[j], donor.skin_points[j], cfg.crop, rng, cfg, True,
                               donor.aux[j] if donor.aux else None)
            alpha = fm[..., None]
            img = np.clip(img.astype(np.float32) * (1 - alpha) + fg.astype(np.float32) * alpha + 0.5, 0, 255).astype(np.uint8)
            m = fm
            if a is not None or fa is not None:  # the pasted skin carries its own prior, no hair
                bg = a if a is not None else np.zeros((*fm.shape, fa.shape[-1]), np.uint8)
                fga = fa if fa is not None else np.zeros_like(bg)
                a = np.zeros_like(bg)
                a[..., 1:] = np.rint(bg[..., 1:] * (1 - fm[..., None]) + fga[..., 1:] * fm[..., None])
                share = frame_person_share(a[..., 1])
        if cfg.augment:
            img = photometric(img, rng, cfg.color_aug)
            if cfg.light_aug > 0:
                gain = math.exp(rng.uniform(-cfg.light_aug, cfg.light_aug))
                img = np.clip(img.astype(np.float32) * gain + 0.5, 0, 255).astype(np.uint8)
        return img, m, a, share

    def _paste_person(self, img: np.ndarray, a: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """A labelled crop (a person: skin, and hair and clothes where the prior says person) shrunk 2-5x and
        pasted at a random spot of a background crop: small people on clutter. The pasted prior is the
        donor's scaled by U(0, 1): a small person may or may not be found by the segmenter; a face map is the
        donor's where that draw is at least 0.5 (a shrunk face may or may not be found)."""
        import cv2

        rng, cfg = self.rng, self.cfg
        donor = self.sources[self.labelled[int(rng.integers(len(self.labelled)))]]
        j = int(rng.integers(len(donor.images)))
        fg, fm, fa = _crop(donor.images[j], donor.masks[j], donor.skin_points[j], cfg.crop, rng, cfg, True,
                           donor.aux[j] if donor.aux else None)
        size = img.shape[0]
        side = max(8, int(round(size / math.exp(rng.uniform(math.log(2.0), math.log(5.0))))))
        fg = cv2.resize(fg, (side, side), interpolation=cv2.INTER_AREA)
        fm = cv2.resize(fm, (side, side), interpolation=cv2.INTER_AREA)
        person = fm if fa is None else np.maximum(fm, cv2.resize(fa[..., 1], (side, side), interpolation=cv2.INTER_AREA) / 255.0)
        y0, x0 = int(rng.integers(0, size - side + 1)), int(rng.integers(0, size - side + 1))
        out, m = img.astype(np.float32), np.zeros(img.shape[:2], np.float32)
        alpha = person[..., None]
        out[y0:y0 + side, x0:x0 + side] = out[y0:y0 + side, x0:x0 + side] * (1 - alpha) + fg.astype(np.float32) * alpha
        m[y0:y0 + side, x0:x0 + side] = fm
        if a is not None:
            a = a.copy()
            a[..., 0] = 0
            trust = rng.uniform(0.0, 1.0)
            region = a[y0:y0 + side, x0:x0 + side, 1].astype(np.float32)
            a[y0:y0 + side, x0:x0 + side, 1] = np.rint(np.maximum(region, 255.0 * trust * person))
            if a.shape[-1] > 2 and fa is not None and trust >= 0.5:
                face = cv2.resize(fa[..., 2], (side, side), interpolation=cv2.INTER_NEAREST)
                a[y0:y0 + side, x0:x0 + side, 2] = np.maximum(a[y0:y0 + side, x0:x0 + side, 2], face)
        return np.clip(out + 0.5, 0, 255).astype(np.uint8), m, a

    def batch(self) -> tuple[np.ndarray, np.ndarray]:
        """Crops (B, h, w, 3) uint8 and their soft masks (B, h, w) float32."""
        imgs, masks, _ = self.batch_with_aux()
        return imgs, masks

    def batch_with_aux(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """As :meth:`batch`, plus the crops' aux maps (B, h, w, 2) uint8 (hair, prior) when any source has them."""
        return self.batch_with_shares()[:3]

    def batch_with_shares(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray]:
        """As :meth:`batch_with_aux`, plus each crop's frame person share (B,) float32 (see :meth:`_sample`)."""
        idx = self.rng.choice(len(self.sources), size=self.cfg.batch, p=self.p)
        samples = [self._sample(self.sources[i]) for i in idx]
        imgs, masks = np.stack([t[0] for t in samples]), np.stack([t[1] for t in samples])
        shares = np.array([t[3] for t in samples], np.float32)
        if all(t[2] is None for t in samples):
            return imgs, masks, None, shares
        k = next(t[2].shape[-1] for t in samples if t[2] is not None)
        aux = np.stack([t[2] if t[2] is not None else np.zeros((*t[1].shape, k), np.uint8) for t in samples])
        return imgs, masks, aux, shares


# ----------------------------------------------------------------------------- training


def _quick_f1(net, meta, val: dict[str, _Source], threshold: float = 0.5) -> dict[str, float]:
    """Per-image mean F1 at working scale on the small progress subsets."""
    import torch

    from .engines import to_input
    from .metrics import confusion, scores

    out = {}
    with torch.inference_mode():
        for name, src in val.items():
            f1s = []
            for k, (img, m) in enumerate(zip(src.images, src.masks)):
                prior = prior_maps(src.aux[k][None]) if src.aux else None
                p = net(to_input(img[None], meta.input, torch.device("cpu"), prior))[0, 0].numpy()
                f1s.append(scores(confusion(p >= threshold, m > 0.5))["f1"])
            out[name] = float(np.mean(f1s)) if f1s else float("nan")
    return out


def _require_prior(arch: str, what: str, note: str = "") -> None:
    """Refuse a rule after the network (``what``) for an architecture without a person prior (arch "": not yet known)."""
    from .archs import ARCHITECTURES

    if arch in ARCHITECTURES and not ARCHITECTURES[arch].prior:
        raise UsageError(f"{what} needs an architecture with a person prior{note}; {arch!r} has none")


def check_person_gate(arch: str, gate: tuple[float, float] | None, faces: float | None = None) -> None:
    """Refuse a person gate (``--person-gate LO HI``, ``--gate-faces SHARE``) an architecture cannot have, or
    shares out of order."""
    if gate is None:
        raise UsageError("--gate-faces needs --person-gate LO HI")
    lo, hi = gate
    _require_prior(arch, "a person gate")
    if not 0.0 <= lo < hi <= 1.0:
        raise UsageError(f"person gate {lo:g} {hi:g}: expected LO HI skin shares with 0 <= LO < HI <= 1")
    if faces is not None and not 0.0 <= faces <= 1.0:
        raise UsageError(f"--gate-faces {faces:g}: expected a person share in 0..1")


def check_hair_zone(arch: str, zone: tuple[float, float, float, float]) -> None:
    """Refuse a hair zone (``--hair-zone ABOVE SIDE BELOW FOREHEAD``) an architecture cannot have, or out of range."""
    from .hairzone import valid_zone

    _require_prior(arch, "a hair zone", " (the face map comes with it)")
    if not valid_zone(zone):
        raise UsageError(f"--hair-zone {' '.join(f'{v:g}' for v in zone)}: expected ABOVE SIDE BELOW FOREHEAD, "
                         "each in 0..2 (face heights or widths)")


def check_fine_pass(arch: str, values: tuple[float, float, float]) -> None:
    """Refuse a fine pass (``--fine-pass MAX_HEIGHT MAX_SKIN FACTOR``) an architecture cannot have, or out of range."""
    from .finepass import MAX_FACTOR, valid_fine_pass

    _require_prior(arch, "a fine pass", " (it works inside the people)")
    if not valid_fine_pass(values):
        raise UsageError(f"--fine-pass {' '.join(f'{v:g}' for v in values)}: expected MAX_HEIGHT MAX_SKIN FACTOR "
                         f"with 0 < MAX_HEIGHT <= 1, 0 < MAX_SKIN <= 1 and 1 < FACTOR <= {MAX_FACTOR:g}")


def check_face_colour(arch: str, values: tuple[float, float, float]) -> None:
    """Refuse a face colour rule (``--face-colour NEAR FAR REACH``) an architecture cannot have, or out of range."""
    from .facecolour import MAX_REACH, valid_face_colour

    _require_prior(arch, "a face colour rule", " (the face map comes with it)")
    if not valid_face_colour(values):
        raise UsageError(f"--face-colour {' '.join(f'{v:g}' for v in values)}: expected NEAR FAR REACH with "
                         f"0 < NEAR < FAR (colour distances) and 0 < REACH <= {MAX_REACH:g} (face sizes)")


def train(
    datasets: list[Dataset],
    negatives: list[Dataset],
    cfg: TrainConfig,
    command: str | None = None,
    log: Callable[[str], None] | None = None,
    progress: Callable[[int, int, dict], None] | None = None,
    calibrate: bool = True,
) -> TrainResult:
    """Train, calibrate the threshold, and return the model with its metadata (not yet saved)."""
    import cv2
    import torch

    from .model import ARCHITECTURES, build_model
    from .weights import InputSpec, WeightsMeta, load_weights

    log = log or (lambda s: None)
    if not datasets:
        raise UsageError("training needs at least one labelled dataset (a folder with images/ and masks/)")
    torch.set_num_threads(max(1, cfg.threads))
    torch.manual_seed(cfg.seed)
    cv2.setNumThreads(1)
    reuse_freed_memory()  # see skinmask.heap
    t0 = time.time()

    if cfg.steps == 0 and not cfg.init:
        raise UsageError("--steps 0 keeps the weights it starts from: it needs --init WEIGHTS")
    if cfg.init:
        net, init_meta = load_weights(cfg.init)
        cfg.arch = init_meta.arch
        cfg.scale = init_meta.scale
        spec = init_meta.input
        net.train()
        log(f"fine-tuning from {cfg.init} (arch {cfg.arch}, scale {cfg.scale})")
    else:
        if cfg.arch not in ARCHITECTURES:
            raise UsageError(f"unknown architecture {cfg.arch!r}; known: {', '.join(ARCHITECTURES)}")
        net = build_model(cfg.arch)
        spec = InputSpec()
    if not 0.05 <= cfg.scale <= 1.0:
        raise UsageError(f"--scale {cfg.scale} is outside 0.05..1")
    meta = WeightsMeta(arch=cfg.arch, input=spec, threshold=0.5, scale=cfg.scale)
    if cfg.person_gate is not None or cfg.gate_faces is not None:
        check_person_gate(cfg.arch, cfg.person_gate, cfg.gate_faces)
        meta.person_gate = tuple(float(v) for v in cfg.person_gate) + (
            () if cfg.gate_faces is None else (float(cfg.gate_faces),))
    if cfg.hair_zone is not None:
        check_hair_zone(cfg.arch, cfg.hair_zone)
        meta.hair_zone = tuple(float(v) for v in cfg.hair_zone)
    if cfg.fine_pass is not None:
        check_fine_pass(cfg.arch, cfg.fine_pass)
        meta.fine_pass = tuple(float(v) for v in cfg.fine_pass)
    if cfg.face_colour is not None:
        check_face_colour(cfg.arch, cfg.face_colour)
        meta.face_colour = tuple(float(v) for v in cfg.face_colour)
    prior_fn = None
    if ARCHITECTURES[cfg.arch].prior:  # the person prior: the run-time network, its maps cached on disk
        from .prior import PriorCache, default_prior_spec, face_prior_specs, load_prior

        meta.prior = init_meta.prior if cfg.init else default_prior_spec()
        if ARCHITECTURES[cfg.arch].face or meta.face_rules:  # a face map for the net, or for the rules after it
            meta.face_prior = (init_meta.face_prior if cfg.init else None) or face_prior_specs()
        net_faces = meta.face_prior if ARCHITECTURES[cfg.arch].face else None
        prior_fn = PriorCache(load_prior(meta.prior, net_faces, threads=1))
        log(f"person prior: {meta.prior.network} ({meta.prior.file}), maps cached in {prior_fn.folder}")
        if meta.face_prior:
            log("face map" + ("" if net_faces else " (for the rules after the network)") + ": "
                + " + ".join(s.network for s in meta.face_prior))

    # --- data
    hair = cfg.hair_weight != 1.0 or cfg.hair_recolour > 0
    unknown = sorted(set(cfg.head_zoom) - {d.name for d in datasets})
    if unknown:
        raise UsageError(f"head zoom for {', '.join(unknown)}: not among the datasets ({', '.join(d.name for d in datasets)})")
    sources = [load_source(d, "train", cfg.scale, cfg.dataset_weights.get(d.name, 1.0), log, prior_fn, hair,
                           heads=cfg.head_zoom.get(d.name, 0.0) > 0)
               for d in datasets]
    sources += [load_source(d, "train", cfg.scale, cfg.neg_weight / max(1, len(negatives)), log, prior_fn)
                for d in negatives]
    val_sets: dict[str, _Source] = {}
    scored = [d for d in datasets if d.has_heldout()]  # sets without held-out images are only trained on
    if not scored:
        raise UsageError("no dataset has held-out (val or test) images to choose the threshold on")
    for d in datasets:
        if not d.has_heldout():
            log(f"{d.name}: no held-out images, used for training only")
            continue
        src = load_source(d, "heldout", cfg.scale, 1.0, prior=prior_fn)
        n = min(cfg.val_images, len(src.images))
        pick = np.linspace(0, len(src.images) - 1, n).astype(int) if n else []
        val_sets[d.name] = _Source(d.name, [src.images[i] for i in pick], [src.masks[i] for i in pick], [], 1.0,
                                   aux=[src.aux[i] for i in pick] if src.aux else None)
    log(f"data loaded in {time.time() - t0:.0f} s")

    crop_prior = None
    if prior_fn is not None and cfg.closeup_prior == "segmenter":
        segmenter = getattr(prior_fn.prior, "person", prior_fn.prior)

        def crop_prior(crop: np.ndarray) -> np.ndarray:
            return segmenter.maps(crop[None])[0]
    maker = BatchMaker(sources, cfg, cfg.seed, crop_prior)
    q: queue.Queue = queue.Queue(maxsize=8)
    stop = threading.Event()

    def produce() -> None:
        try:
            for _ in range(cfg.steps):
                if stop.is_set():
                    return
                q.put(maker.batch_with_shares())
        except BaseException as exc:  # surface errors in the training loop
            q.put(exc)

    worker = threading.Thread(target=produce, daemon=True)
    worker.start()

    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    averaged = None
    if cfg.ema > 0:  # the average of the last ~1/(1 - decay) steps' weights: less of one draw's noise
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

        averaged = AveragedModel(net, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / 100) * 0.5 * (1 + math.cos(math.pi * min(s, cfg.steps) / max(1, cfg.steps))))
    pos_w = torch.tensor(cfg.pos_weight)
    history: list[dict] = []
    running = None
    try:
        net.train()
        for step in range(1, cfg.steps + 1):
            item = q.get()
            if isinstance(item, BaseException):
                raise item
            imgs, masks, aux, shares = item
            from .engines import to_input

            x = to_input(imgs, spec, torch.device("cpu"), prior_maps(aux) if prior_fn is not None else None)
            y = torch.from_numpy(masks)[:, None]
            logit = net.logits(x, torch.from_numpy(shares).view(-1, 1, 1, 1) if prior_fn is not None else None)
            per_px = torch.nn.functional.binary_cross_entropy_with_logits(logit, y, reduction="none")
            if cfg.pos_weight != 1.0:
                per_px = per_px * (1 + (pos_w - 1) * y)
            if hair and aux is not None:  # labelled hair: an explicit negative, weighted
                h = torch.from_numpy(aux[..., 0].astype(np.float32) / 255.0)[:, None]
                per_px = per_px * (1 + (cfg.hair_weight - 1) * h)
            if cfg.person_negative_weight != 1.0 and prior_fn is not None:  # a person's hair, clothes: not skin
                person = torch.from_numpy(aux[..., 1].astype(np.float32) / 255.0)[:, None]
                per_px = per_px * (1 + (cfg.person_negative_weight - 1) * (1 - y) * person)
            loss = per_px.mean()
            if cfg.dice > 0:  # per crop, so a crop with a little skin counts as much as one full of it
                p = torch.sigmoid(logit)
                inter = (p * y).sum(dim=(1, 2, 3))
                dice = 1.0 - (2.0 * inter + 1.0) / (p.sum(dim=(1, 2, 3)) + y.sum(dim=(1, 2, 3)) + 1.0)
                loss = loss + cfg.dice * dice.mean()
            if cfg.hard_mining > 0:
                flat = per_px.flatten()
                k = max(1, int(flat.numel() * cfg.hard_mining))
                loss = loss + flat.topk(k).values.mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            if averaged is not None:
                averaged.update_parameters(net)
            lv = float(loss.detach())
            running = lv if running is None else 0.98 * running + 0.02 * lv
            rec = {"step": step, "loss": running}
            if step % cfg.val_every == 0 or step == cfg.steps:
                scored_net = net if averaged is None else averaged.module
                scored_net.eval()
                f1 = _quick_f1(scored_net, meta, val_sets)
                net.train()
                rec["val_f1"] = f1
                rec["val_f1_mean"] = float(np.mean(list(f1.values())))
                history.append(dict(rec))
                log(f"step {step}/{cfg.steps} loss {running:.4f} val F1@0.5 {rec['val_f1_mean']:.3f} "
                    + " ".join(f"{k}={v:.3f}" for k, v in f1.items()) + f" ({time.time() - t0:.0f} s)")
            if progress:
                progress(step, cfg.steps, rec)
    finally:
        stop.set()
        while worker.is_alive():
            try:
                q.get_nowait()
            except queue.Empty:
                time.sleep(0.01)
    if averaged is not None:
        net.load_state_dict(averaged.module.state_dict())
    net.eval()
    train_seconds = time.time() - t0

    info: dict = {
        "architecture": ARCHITECTURES[cfg.arch].summary,
        "input_convention": f"uint8 {spec.channel_order.upper()} / 255, minus mean {list(spec.mean)}, "
                            f"divided by std {list(spec.std)}; frames resized by scale {cfg.scale} (INTER_AREA)",
        "command": command or " ".join(sys.argv),
        "seed": cfg.seed,
        "config": asdict(cfg),
        "data": [_describe(d) for d in datasets] + [_describe(d) for d in negatives],
        "train_seconds": round(train_seconds, 1),
        "history": history[-3:],
        "torch": torch.__version__,
        "machine": platform.machine(),
    }
    if cfg.init:  # where the weights came from: the metadata of the file fine-tuned (or, with 0 steps, re-gated)
        info["init_info"] = init_meta.info
    meta.info = info
    if calibrate:
        from .evaluation import calibrate_threshold
        from .inference import SkinModel

        model = SkinModel(net=net, meta=meta, device=torch.device("cpu"),
                          prior=prior_fn.prior if prior_fn is not None and not meta.face_rules else None)
        reference = None
        if cfg.no_worse_than:
            from .inference import load_model

            reference = load_model(cfg.no_worse_than, device="cpu")
        thr, details = calibrate_threshold(model, scored, log=log, reference=reference, tolerance=cfg.tolerance,
                                           tie=cfg.threshold_tie)
        meta.threshold = thr
        info["threshold_choice"] = ("maximises the mean over datasets of per-image F1 on their held-out splits: "
                                    + ", ".join(f"{d.name} ({d.heldout_name()})" for d in scored))
        info["metrics"] = {"heldout_f1_at_threshold": details["per_dataset"], "objective": details["objective"]}
        log(f"threshold {thr:.2f}: mean held-out F1 {details['objective']:.3f} "
            + " ".join(f"{k}={v:.3f}" for k, v in details["per_dataset"].items()))
        if cfg.threshold_tie > 0:
            info["threshold_choice"] += (f"; the highest threshold whose mean is within {cfg.threshold_tie:g} of the "
                                         "best (fewer false alarms where the mean is flat)")
        if reference is not None:
            info["threshold_choice"] += (f"; among the thresholds where none is more than {cfg.tolerance:g} below "
                                         f"{cfg.no_worse_than} at its threshold {reference.threshold:.2f}")
            info["metrics"].update(reference_f1=details["reference_f1"], guard_met=details["guard_met"])
            log(f"--no-worse-than {cfg.no_worse_than}: "
                + " ".join(f"{k}={v:.3f}" for k, v in details["reference_f1"].items())
                + ("" if details["guard_met"] else f"; no threshold keeps every set within {cfg.tolerance:g} of it: "
                   "the unconstrained best was kept"))
    info["total_seconds"] = round(time.time() - t0, 1)
    return TrainResult(model=net, meta=meta, history=history, seconds=time.time() - t0)


def _describe(d: Dataset) -> dict:
    train = d.select("train")
    files = [s.image for s in train] + [s.mask for s in train if s.mask is not None]
    return {
        "name": d.name,
        "path": str(d.root),
        "negatives": d.negatives,
        "split_source": d.split_source,
        "train_images": len(train),
        "splits": d.split_counts(),
        "sha256_train_files": file_digest(files),
    }
