"""Pixel metrics for binary skin masks: precision, recall, F1, IoU per image and pooled.

Conventions for empty cases (stated once, used everywhere): a ratio whose denominator is zero is
1.0 when the image has no skin and nothing was predicted (a perfect answer), else 0.0. So on an
image with no skin, F1 is 1 when nothing is called skin and 0 otherwise; the false-positive rate
(FP / negatives) says how much was called skin.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

METRICS = ("precision", "recall", "f1", "iou")
# Failure modes (see FailureCounts): skin components of at most this many pixels (20x20) at the image's own
# size count as small regions (distant faces, fingers, hands in crowds); below SMALL_REGION_MIN pixels a
# component is label speckle (SFA's and FASSEG's masks have many 1-15 pixel specks), not a region.
SMALL_REGION_PIXELS = 400
SMALL_REGION_MIN = 16


@dataclass(frozen=True)
class Counts:
    tp: int
    fp: int
    fn: int
    tn: int

    def __add__(self, other: "Counts") -> "Counts":
        return Counts(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn, self.tn + other.tn)


def confusion(pred: np.ndarray, truth: np.ndarray) -> Counts:
    """Pixel counts for boolean (or 0/nonzero) arrays of one shape."""
    pred = np.asarray(pred).astype(bool)
    truth = np.asarray(truth).astype(bool)
    if pred.shape != truth.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from ground truth {truth.shape}")
    tp = int(np.count_nonzero(pred & truth))
    fp = int(np.count_nonzero(pred & ~truth))
    fn = int(np.count_nonzero(~pred & truth))
    return Counts(tp, fp, fn, int(pred.size) - tp - fp - fn)


def _ratio(num: float, den: float, perfect: bool) -> float:
    if den > 0:
        return float(num) / float(den)
    return 1.0 if perfect else 0.0


def scores(c: Counts) -> dict[str, float]:
    """precision, recall, f1, iou and fpr from counts."""
    perfect = c.tp + c.fp + c.fn == 0  # no skin and none predicted
    return {
        "precision": _ratio(c.tp, c.tp + c.fp, perfect),
        "recall": _ratio(c.tp, c.tp + c.fn, perfect),
        "f1": _ratio(2 * c.tp, 2 * c.tp + c.fp + c.fn, perfect),
        "iou": _ratio(c.tp, c.tp + c.fp + c.fn, perfect),
        "fpr": _ratio(c.fp, c.fp + c.tn, True),
    }


def small_regions(truth: np.ndarray, max_pixels: int = SMALL_REGION_PIXELS,
                  min_pixels: int = SMALL_REGION_MIN) -> tuple[np.ndarray, int]:
    """The skin components (8-connected) of ``min_pixels`` to ``max_pixels`` pixels: a label map (H, W) int32
    numbering them 1..n (0 elsewhere) and n."""
    import cv2

    n, labels, stats, _ = cv2.connectedComponentsWithStats(np.asarray(truth).astype(np.uint8), connectivity=8)
    area = stats[1:, cv2.CC_STAT_AREA]
    small = np.flatnonzero((area >= min_pixels) & (area <= max_pixels)) + 1  # component ids, background 0 excluded
    lut = np.zeros(n, np.int32)
    lut[small] = np.arange(1, small.size + 1, dtype=np.int32)
    return lut[labels], int(small.size)


@dataclass
class FailureCounts:
    """Pixel and region counts behind the failure-mode numbers, summed over images.

    - hair called skin: share of labelled hair pixels predicted skin (sets with a hair class);
    - small-region recall: share of the pixels of small skin regions (16 to :data:`SMALL_REGION_PIXELS` pixels)
      predicted skin, and the share of those regions found (at least half their pixels predicted skin);
    - called skin: share of all pixels predicted skin (on a no-people set: the false-alarm rate).
    """

    hair: int = 0
    hair_called: int = 0
    small_pixels: int = 0
    small_hit: int = 0
    small_regions: int = 0
    small_found: int = 0
    pixels: int = 0
    called: int = 0

    def add(self, pred: np.ndarray, truth: np.ndarray, hair: np.ndarray | None = None) -> None:
        pred = np.asarray(pred).astype(bool)
        self.pixels += pred.size
        self.called += int(np.count_nonzero(pred))
        if hair is not None:
            self.hair += int(np.count_nonzero(hair))
            self.hair_called += int(np.count_nonzero(pred & hair))
        labels, n = small_regions(truth)
        if n:
            inside = labels > 0
            self.small_pixels += int(np.count_nonzero(inside))
            self.small_hit += int(np.count_nonzero(pred & inside))
            size = np.bincount(labels[inside], minlength=n + 1)[1:]
            hit = np.bincount(labels[inside & pred], minlength=n + 1)[1:]
            self.small_regions += n
            self.small_found += int(np.count_nonzero(2 * hit >= size))

    def summary(self) -> dict[str, float | int | None]:
        def share(a: int, b: int) -> float | None:
            return a / b if b else None

        return {
            "hair_called_skin": share(self.hair_called, self.hair),
            "hair_pixels": self.hair,
            "small_region_recall": share(self.small_hit, self.small_pixels),
            "small_regions_found": share(self.small_found, self.small_regions),
            "small_regions": self.small_regions,
            "called_skin": share(self.called, self.pixels),
        }


@dataclass
class MetricAccumulator:
    """Collects per-image scores and pooled counts; summary() gives mean, std and pooled values, and the
    failure-mode numbers (:class:`FailureCounts`) under ``failure``."""

    per_image: list[dict[str, float]] = field(default_factory=list)
    total: Counts = field(default_factory=lambda: Counts(0, 0, 0, 0))
    failure: FailureCounts = field(default_factory=FailureCounts)

    def add(self, pred: np.ndarray, truth: np.ndarray, hair: np.ndarray | None = None) -> dict[str, float]:
        self.failure.add(pred, truth, hair)
        return self.add_counts(confusion(pred, truth))

    def add_counts(self, c: Counts) -> dict[str, float]:
        s = scores(c)
        self.per_image.append(s)
        self.total = self.total + c
        return s

    def summary(self) -> dict[str, object]:
        out: dict[str, object] = {"images": len(self.per_image)}
        pooled = scores(self.total)
        for name in (*METRICS, "fpr"):
            vals = np.array([s[name] for s in self.per_image], dtype=np.float64)
            out[name] = {
                "mean": float(vals.mean()) if vals.size else float("nan"),
                "std": float(vals.std()) if vals.size else float("nan"),
                "pooled": pooled[name],
            }
        out["failure"] = self.failure.summary()
        return out


# ----------------------------------------------------------------------------- threshold sweeps

N_BINS = 100


def threshold_grid(n_bins: int = N_BINS) -> np.ndarray:
    """Candidate thresholds t_k = k / n_bins, k = 1 .. n_bins - 1."""
    return np.arange(1, n_bins) / n_bins


def sweep_counts(prob: np.ndarray, truth: np.ndarray, n_bins: int = N_BINS) -> np.ndarray:
    """Counts (tp, fp, fn, tn) at every grid threshold (p >= t is skin): array (n_bins - 1, 4)."""
    truth = np.asarray(truth).astype(bool).ravel()
    b = np.clip((np.asarray(prob, np.float64).ravel() * n_bins).astype(np.int64), 0, n_bins - 1)
    pos = np.bincount(b[truth], minlength=n_bins)
    neg = np.bincount(b[~truth], minlength=n_bins)
    # pixels with bin >= k are predicted skin at threshold k / n_bins
    pos_ge = np.cumsum(pos[::-1])[::-1][1:]
    neg_ge = np.cumsum(neg[::-1])[::-1][1:]
    tp, fp = pos_ge, neg_ge
    fn = pos.sum() - tp
    tn = neg.sum() - fp
    return np.stack([tp, fp, fn, tn], axis=1)


def f1_from_sweep(counts: np.ndarray) -> np.ndarray:
    """Per-threshold F1 from sweep counts (..., n, 4), with the empty-case convention above."""
    tp, fp, fn = counts[..., 0], counts[..., 1], counts[..., 2]
    den = 2 * tp + fp + fn
    return np.where(den > 0, 2 * tp / np.maximum(den, 1), 1.0)


def choose_threshold(per_dataset_sweeps: dict[str, list[np.ndarray]], n_bins: int = N_BINS,
                     floors: dict[str, float] | None = None, tie: float = 0.0) -> tuple[float, dict]:
    """The grid threshold maximising the mean over datasets of per-image mean F1.

    ``tie`` > 0: the highest candidate threshold whose mean is within ``tie`` of the best (fewer false alarms
    where the objective is flat).

    ``per_dataset_sweeps`` maps a dataset name to the sweep counts of each of its images. ``floors`` (a
    regression guard) maps some dataset names to the per-image mean F1 they must keep: only thresholds
    where every such dataset reaches its floor are candidates; when none does, the unconstrained best is
    returned and ``guard_met`` says so.
    Returns (threshold, {"objective": value, "per_dataset": {name: f1 at that threshold}, "guard_met": bool}).
    """
    grid = threshold_grid(n_bins)
    curves = {}
    for name, sweeps in per_dataset_sweeps.items():
        if sweeps:
            curves[name] = f1_from_sweep(np.stack(sweeps)).mean(axis=0)
    if not curves:
        return 0.5, {"objective": float("nan"), "per_dataset": {}, "guard_met": not floors}
    objective = np.mean(np.stack(list(curves.values())), axis=0)
    allowed = np.ones(grid.shape, bool)
    for name, floor in (floors or {}).items():
        if name in curves:
            allowed &= curves[name] >= floor - 1e-9
    met = bool(allowed.any())
    k = int(np.argmax(np.where(allowed, objective, -np.inf))) if met else int(np.argmax(objective))
    if tie > 0:
        near = np.nonzero((objective >= objective[k] - tie) & (allowed if met else True))[0]
        k = int(near.max())
    return float(grid[k]), {
        "objective": float(objective[k]),
        "per_dataset": {n: float(c[k]) for n, c in curves.items()},
        "guard_met": met,
    }
