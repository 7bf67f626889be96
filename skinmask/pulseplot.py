"""The `pulse --plot` picture, drawn with OpenCV: colour trace, filtered pulse, spectrum, bpm over time."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np

from . import rppg

if TYPE_CHECKING:
    from .pulse import PulseRun

WIDTH, PANEL_H, MARGIN_L, MARGIN_R, TITLE_H = 1000, 190, 70, 20, 30
WHITE, GREY, BLACK = (255, 255, 255), (200, 200, 200), (30, 30, 30)
RED, GREEN, BLUE, ORANGE, PURPLE = (40, 40, 220), (40, 160, 40), (220, 90, 30), (0, 140, 255), (160, 40, 160)


class _Panel:
    """One plot area: data-to-pixel mapping, axes, polylines and labels."""

    def __init__(self, img: np.ndarray, top: int, title: str, xlim: tuple[float, float], ylim: tuple[float, float]):
        self.img, self.top = img, top
        self.x0, self.x1 = MARGIN_L, img.shape[1] - MARGIN_R
        self.y0, self.y1 = top + TITLE_H, top + PANEL_H - 22
        pad = (ylim[1] - ylim[0]) * 0.05 or 1.0
        self.xlim, self.ylim = xlim, (ylim[0] - pad, ylim[1] + pad)
        import cv2

        cv2.rectangle(img, (self.x0, self.y0), (self.x1, self.y1), GREY, 1)
        self.text(title, self.x0, top + 20, BLACK, 0.5)
        for frac in (0.0, 0.5, 1.0):
            xv = xlim[0] + frac * (xlim[1] - xlim[0])
            self.text(f"{xv:.3g}", int(self.x0 + frac * (self.x1 - self.x0)) - 10, self.y1 + 16, BLACK, 0.4)
        for yv in self.ylim:
            self.text(f"{yv:.3g}", 4, self._y(yv) + 4, BLACK, 0.4)

    def _x(self, x: float) -> int:
        return int(round(self.x0 + (x - self.xlim[0]) / max(self.xlim[1] - self.xlim[0], 1e-12) * (self.x1 - self.x0)))

    def _y(self, y: float) -> int:
        return int(round(self.y1 - (y - self.ylim[0]) / max(self.ylim[1] - self.ylim[0], 1e-12) * (self.y1 - self.y0)))

    def line(self, x: Sequence[float], y: Sequence[float], color: tuple[int, int, int], thickness: int = 1) -> None:
        import cv2

        pts = [(self._x(a), self._y(b)) for a, b in zip(x, y) if np.isfinite(a) and np.isfinite(b)]
        if len(pts) > 1:
            cv2.polylines(self.img, [np.array(pts, np.int32)], False, color, thickness, cv2.LINE_AA)

    def dots(self, x: Sequence[float], y: Sequence[float], color: tuple[int, int, int]) -> None:
        import cv2

        for a, b in zip(x, y):
            if b is not None and np.isfinite(b):
                cv2.circle(self.img, (self._x(a), self._y(b)), 3, color, -1, cv2.LINE_AA)

    def vline(self, x: float, color: tuple[int, int, int]) -> None:
        import cv2

        cv2.line(self.img, (self._x(x), self.y0), (self._x(x), self.y1), color, 1, cv2.LINE_AA)

    def text(self, s: str, x: int, y: int, color: tuple[int, int, int], scale: float = 0.45) -> None:
        import cv2

        cv2.putText(self.img, s, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, color, 1, cv2.LINE_AA)


def _limits(*arrays: np.ndarray) -> tuple[float, float]:
    vals = np.concatenate([np.asarray(a, np.float64).ravel() for a in arrays])
    vals = vals[np.isfinite(vals)]
    return (float(vals.min()), float(vals.max())) if len(vals) else (0.0, 1.0)


def draw_pulse(run: "PulseRun", title: str = "") -> np.ndarray:
    """(H, W, 3) uint8 BGR picture of a finished run made with ``keep_trace=True``."""
    rgb, fps = run.rgb, run.fps
    img = np.full((TITLE_H + 4 * PANEL_H, WIDTH, 3), 255, np.uint8)
    head = _Panel(img, 0, "", (0, 1), (0, 1))  # only for its text helper
    img[:] = 255
    overall = run.overall_bpm
    head.text(f"{title}   overall {overall:.1f} bpm" if overall is not None else f"{title}   no heart rate",
              MARGIN_L, 22, BLACK, 0.6)
    t = np.arange(len(rgb)) / fps if fps else np.arange(len(rgb))
    span = (0.0, float(t[-1]) if len(t) > 1 else 1.0)

    # 1. colour trace, each channel over its mean
    norm = rgb / np.nanmean(rgb, axis=0, keepdims=True) if len(rgb) else rgb
    p = _Panel(img, TITLE_H, "mask-weighted mean colour / its mean (R, G, B) vs time, s", span, _limits(norm))
    for ch, color in ((0, RED), (1, GREEN), (2, BLUE)):
        p.line(t, norm[:, ch], color)

    # 2. filtered pulse over the whole clip, 3. its spectrum
    method = run.opts.method
    ok = len(rgb) >= 8 and np.isfinite(rppg.fill_gaps(rgb)).all()
    pulse = rppg.filtered_pulse(rgb, fps, method, run.opts.detrend) if ok else np.zeros(len(rgb))
    p = _Panel(img, TITLE_H + PANEL_H, f"{method.upper()} pulse, 0.7-3.5 Hz band-pass, vs time, s", span, _limits(pulse))
    p.line(t, pulse, PURPLE)
    from scipy import signal

    nper = min(len(pulse), int(round(run.opts.window_s * fps))) if ok else 0
    if nper >= 8:
        freqs, power = signal.welch(pulse, fps, nperseg=nper, nfft=max(4096, nper))
    else:
        freqs, power = np.linspace(0, 5, 50), np.zeros(50)
    sel = freqs * 60 <= 240
    p = _Panel(img, TITLE_H + 2 * PANEL_H, "Welch spectrum of the pulse vs bpm (band 42-210; line: overall bpm)",
               (0.0, 240.0), _limits(power[sel]))
    for edge in rppg.BAND_HZ:
        p.vline(edge * 60, GREY)
    p.line(freqs[sel] * 60, power[sel], PURPLE)
    if overall is not None:
        p.vline(overall, ORANGE)

    # 4. bpm per window (at the window centre), ground truth if scored
    centre = [(w.start_s + w.end_s) / 2 for w in run.windows]
    bpm = [w.bpm for w in run.windows]
    gt = [s.gt_bpm for s in run.scored]
    ys = np.array([v for v in bpm + gt if v is not None] or [60.0, 120.0], np.float64)
    p = _Panel(img, TITLE_H + 3 * PANEL_H, "bpm per window (purple)" + (", contact PPG (orange)" if gt else "")
               + " vs window centre, s", span, (float(ys.min()) - 5, float(ys.max()) + 5))
    if gt:
        p.line(centre, [np.nan if g is None else g for g in gt], ORANGE, 2)
    p.dots(centre, bpm, PURPLE)
    return img
