"""Classical pixel-wise skin detectors used as baselines.

- YCrCb thresholds (Chai & Ngan 1999): skin where 133 <= Cr <= 173 and 77 <= Cb <= 127
  (OpenCV's 8-bit YCrCb, Cr/Cb offset by 128).
- Kovac RGB rule, uniform daylight (Kovac, Peer & Solina 2003): R > 95, G > 40, B > 20,
  max(R,G,B) - min(R,G,B) > 15, |R - G| > 15, R > G, R > B.
- RGB histogram Bayes classifier (Jones & Rehg 2002): skin and non-skin colour histograms
  (32 bins per channel) counted on training pixels; P(skin | rgb) from the counts, thresholded at
  the value that maximises pooled F1 on the training pixels.

All take uint8 BGR images (H, W, 3) as OpenCV reads them, and return bool masks (H, W).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

BASELINES = ("ycrcb", "kovac", "bayes")


def ycrcb_mask(bgr: np.ndarray) -> np.ndarray:
    import cv2

    ycc = cv2.cvtColor(np.ascontiguousarray(bgr), cv2.COLOR_BGR2YCrCb)
    cr, cb = ycc[..., 1], ycc[..., 2]
    return (cr >= 133) & (cr <= 173) & (cb >= 77) & (cb <= 127)


def kovac_mask(bgr: np.ndarray) -> np.ndarray:
    b = bgr[..., 0].astype(np.int16)
    g = bgr[..., 1].astype(np.int16)
    r = bgr[..., 2].astype(np.int16)
    spread = np.maximum(np.maximum(r, g), b) - np.minimum(np.minimum(r, g), b)
    return (r > 95) & (g > 40) & (b > 20) & (spread > 15) & (np.abs(r - g) > 15) & (r > g) & (r > b)


class HistogramBayes:
    """Jones & Rehg RGB histogram classifier."""

    def __init__(self, bins: int = 32) -> None:
        if 256 % bins:
            raise ValueError("bins must divide 256")
        self.bins = bins
        self.skin = np.zeros(bins**3, np.float64)
        self.nonskin = np.zeros(bins**3, np.float64)
        self.threshold = 0.5
        self._table: np.ndarray | None = None

    def _index(self, bgr: np.ndarray) -> np.ndarray:
        shift = int(np.log2(256 // self.bins))
        q = (bgr >> shift).astype(np.int64)
        return (q[..., 2] * self.bins + q[..., 1]) * self.bins + q[..., 0]  # r, g, b

    def add(self, bgr: np.ndarray, mask: np.ndarray) -> None:
        idx = self._index(bgr)
        m = np.asarray(mask, bool)
        n = self.bins**3
        self.skin += np.bincount(idx[m], minlength=n)
        self.nonskin += np.bincount(idx[~m], minlength=n)
        self._table = None

    def fit(self, pairs: Iterable[tuple[np.ndarray, np.ndarray]]) -> "HistogramBayes":
        for bgr, mask in pairs:
            self.add(bgr, mask)
        self.finish()
        return self

    def finish(self) -> None:
        """Build the posterior table and pick the threshold maximising pooled F1 on the training counts."""
        table = self.posterior_table()
        order = np.argsort(-table)
        tp = np.cumsum(self.skin[order])
        fp = np.cumsum(self.nonskin[order])
        fn = self.skin.sum() - tp
        f1 = 2 * tp / np.maximum(2 * tp + fp + fn, 1e-12)
        k = int(np.argmax(f1))
        self.threshold = float(table[order[k]])

    def posterior_table(self) -> np.ndarray:
        if self._table is None:
            total = self.skin + self.nonskin
            self._table = np.where(total > 0, self.skin / np.maximum(total, 1e-12), 0.0)
        return self._table

    def probabilities(self, bgr: np.ndarray) -> np.ndarray:
        return self.posterior_table()[self._index(bgr)].astype(np.float32)

    def mask(self, bgr: np.ndarray) -> np.ndarray:
        return self.probabilities(bgr) >= self.threshold


def baseline_mask(name: str, bgr: np.ndarray, bayes: HistogramBayes | None = None) -> np.ndarray:
    if name == "ycrcb":
        return ycrcb_mask(bgr)
    if name == "kovac":
        return kovac_mask(bgr)
    if name == "bayes":
        if bayes is None:
            raise ValueError("the bayes baseline needs a fitted HistogramBayes")
        return bayes.mask(bgr)
    raise ValueError(f"unknown baseline {name!r}")
