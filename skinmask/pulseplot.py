"""The `pulse --plot` and `pulse-eval --plot` pictures, drawn with OpenCV.

`pulse --plot`: colour trace, filtered pulse, spectrum, bpm over time. `pulse-eval --plot`: a
Bland-Altman plot of all windows per region, and each clip's bpm over time against the contact PPG.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from . import rppg

if TYPE_CHECKING:
    from .pulse import ClipResult, PulseRun

WIDTH, PANEL_H, MARGIN_L, MARGIN_R, TITLE_H = 1000, 190, 70, 20, 30
WHITE, GREY, BLACK = (255, 255, 255), (200, 200, 200), (30, 30, 30)
RED, GREEN, BLUE, ORANGE, PURPLE = (40, 40, 220), (40, 160, 40), (220, 90, 30), (0, 140, 255), (160, 40, 160)


class _Panel:
    """One plot area: data-to-pixel mapping, axes, polylines and labels."""

    def __init__(self, img: np.ndarray, top: int, title: str, xlim: tuple[float, float], ylim: tuple[float, float],
                 height: int = PANEL_H, left: int = 0, width: int | None = None):
        self.img, self.top = img, top
        self.x0, self.x1 = left + MARGIN_L, (img.shape[1] if width is None else left + width) - MARGIN_R
        self.y0, self.y1 = top + TITLE_H, top + height - 22
        pad = (ylim[1] - ylim[0]) * 0.05 or 1.0
        self.xlim, self.ylim = xlim, (ylim[0] - pad, ylim[1] + pad)
        import cv2

        cv2.rectangle(img, (self.x0, self.y0), (self.x1, self.y1), GREY, 1)
        self.text(title, self.x0, top + 20, BLACK, 0.5)
        for frac in (0.0, 0.5, 1.0):
            xv = xlim[0] + frac * (xlim[1] - xlim[0])
            self.text(f"{xv:.3g}", int(self.x0 + frac * (self.x1 - self.x0)) - 10, self.y1 + 16, BLACK, 0.4)
        for yv in self.ylim:
            self.text(f"{yv:.3g}", self.x0 - MARGIN_L + 4, self._y(yv) + 4, BLACK, 0.4)

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

    def hline(self, y: float, color: tuple[int, int, int], label: str = "") -> None:
        import cv2

        cv2.line(self.img, (self.x0, self._y(y)), (self.x1, self._y(y)), color, 1, cv2.LINE_AA)
        if label:
            self.text(label, self.x1 - 8 * len(label) - 4, self._y(y) - 4, color, 0.4)

    def text(self, s: str, x: int, y: int, color: tuple[int, int, int], scale: float = 0.45) -> None:
        import cv2

        cv2.putText(self.img, s, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, color, 1, cv2.LINE_AA)


def _limits(*arrays: np.ndarray) -> tuple[float, float]:
    vals = np.concatenate([np.asarray(a, np.float64).ravel() for a in arrays])
    vals = vals[np.isfinite(vals)]
    return (float(vals.min()), float(vals.max())) if len(vals) else (0.0, 1.0)


def draw_pulse(run: "PulseRun", title: str = "") -> np.ndarray:
    """(H, W, 3) uint8 BGR picture of a finished run made with ``keep_trace=True``."""
    rgb, rate = run.rgb, run.rate
    img = np.full((TITLE_H + 4 * PANEL_H, WIDTH, 3), 255, np.uint8)
    head = _Panel(img, 0, "", (0, 1), (0, 1))  # only for its text helper
    img[:] = 255
    overall = run.overall_bpm
    head.text(f"{title}   overall {overall:.1f} bpm" if overall is not None else f"{title}   no heart rate",
              MARGIN_L, 22, BLACK, 0.6)
    t = run.times
    span = (float(t[0]), float(t[-1])) if len(t) > 1 else (0.0, 1.0)

    # 1. colour trace, each channel over its mean
    norm = rgb / np.nanmean(rgb, axis=0, keepdims=True) if len(rgb) else rgb
    p = _Panel(img, TITLE_H, "region mean colour / its mean (R, G, B) vs time, s", span, _limits(norm))
    for ch, color in ((0, RED), (1, GREEN), (2, BLUE)):
        p.line(t, norm[:, ch], color)

    # 2. filtered pulse over the whole clip (on the uniform grid), 3. its spectrum
    method = run.opts.method
    grid_t, grid_rgb = rppg.resample_uniform(t, rgb, rate) if len(t) else (t, rgb)
    ok = len(grid_rgb) >= 8 and np.isfinite(rppg.fill_gaps(grid_rgb)).all()
    pulse = rppg.filtered_pulse(grid_rgb, rate, method, run.opts.detrend) if ok else np.zeros(len(grid_rgb))
    p = _Panel(img, TITLE_H + PANEL_H, f"{method.upper()} pulse, 0.7-3.5 Hz band-pass, vs time, s", span,
               _limits(pulse))
    p.line(grid_t, pulse, PURPLE)
    from scipy import signal

    nper = min(len(pulse), int(round(run.opts.window_s * rate))) if ok else 0
    if nper >= 8:
        freqs, power = signal.welch(pulse, rate, nperseg=nper, nfft=max(4096, nper))
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


REGION_COLOURS = (PURPLE, GREEN, BLUE, RED, (120, 120, 120))


def draw_bland_altman(pairs: np.ndarray, title: str) -> np.ndarray:
    """(H, W, 3) BGR Bland-Altman plot of (video bpm, PPG bpm) pairs (M, 2): difference vs mean, bias, 95% limits."""
    import cv2

    height = 480
    img = np.full((height, 640, 3), 255, np.uint8)
    pairs = np.asarray(pairs, np.float64).reshape(-1, 2)
    mean, diff = pairs.mean(axis=1), pairs[:, 0] - pairs[:, 1]
    bias = float(diff.mean()) if len(diff) else 0.0
    sd = float(diff.std(ddof=1)) if len(diff) > 1 else 0.0
    lo, hi = bias - 1.96 * sd, bias + 1.96 * sd
    ylim = _limits(diff, np.array([lo, hi, 0.0]))
    xlim = _limits(mean) if len(mean) else (60.0, 120.0)
    p = _Panel(img, 0, f"{title}: video - PPG bpm vs their mean ({len(diff)} windows)", xlim, ylim, height=height)
    p.hline(0.0, GREY)
    p.hline(bias, ORANGE, f"bias {bias:+.2f}")
    p.hline(hi, RED, f"+1.96 sd {hi:+.1f}")
    p.hline(lo, RED, f"-1.96 sd {lo:+.1f}")
    for a, b in zip(mean, diff):
        cv2.circle(img, (p._x(a), p._y(b)), 2, PURPLE, -1, cv2.LINE_AA)
    return img


def draw_clip_rates(result: dict[str, "ClipResult"], regions: Sequence[str], title: str) -> np.ndarray:
    """(H, W, 3) BGR: one clip's bpm per window (centre time) for each region, and the contact PPG's."""
    height = 360
    img = np.full((height, WIDTH, 3), 255, np.uint8)
    first = result[regions[0]].windows
    centre = [(s.window.start_s + s.window.end_s) / 2 for s in first]
    gt = [np.nan if s.gt_bpm is None else s.gt_bpm for s in first]
    vals = [v for r in regions for s in result[r].windows for v in (s.window.bpm,) if v is not None]
    ys = np.array(vals + [g for g in gt if np.isfinite(g)] or [60.0, 120.0], np.float64)
    span = (min(centre), max(centre)) if len(centre) > 1 else (0.0, 1.0)
    legend = "  ".join(f"{r}" for r in regions)
    p = _Panel(img, 0, f"{title}: bpm per window vs window centre, s; contact PPG thick orange; {legend}", span,
               (float(ys.min()) - 5, float(ys.max()) + 5), height=height)
    p.line(centre, gt, ORANGE, 3)
    for k, r in enumerate(regions):
        ws = result[r].windows
        p.line([(s.window.start_s + s.window.end_s) / 2 for s in ws],
               [np.nan if s.window.bpm is None else s.window.bpm for s in ws], REGION_COLOURS[k % len(REGION_COLOURS)])
    x = p.x0 + 10
    for k, r in enumerate(regions):  # legend swatches
        p.text(r, x, p.y0 + 16, REGION_COLOURS[k % len(REGION_COLOURS)], 0.45)
        x += 12 * len(r) + 20
    return img


def write_eval_plots(folder: Path, results: Sequence[dict[str, "ClipResult"]], regions: Sequence[str]) -> list[Path]:
    """bland-altman-<region>.png for each region and <clip>.png for each clip in ``folder``; the paths written."""
    from .media import write_png

    folder = Path(folder)
    written = []
    for r in regions:
        pairs = np.array([(s.window.bpm, s.gt_bpm) for res in results for s in res[r].windows if s.error is not None],
                         np.float64)
        path = folder / f"bland-altman-{r}.png"
        write_png(path, draw_bland_altman(pairs, r))
        written.append(path)
    for res in results:
        clip = res[regions[0]].clip
        path = folder / (clip.name.replace("/", "_") + ".png")
        write_png(path, draw_clip_rates(res, regions, clip.name))
        written.append(path)
    return written
