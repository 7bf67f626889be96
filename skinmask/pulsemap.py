"""The pulse map: where in the frame the heartbeat is visible (``skinmask pulse --map``).

The frame is cut into square blocks; each block's mean colour is resampled onto the run's uniform
grid and, every window length, turned into a pulse signal (the run's method, detrending and band).
Its SNR is taken at the heart rate the run tracked for that stretch (de Haan's: power within 0.1 Hz
of the rate and its first harmonic over the rest of the band), and signal and noise power are summed
over the whole recording before the ratio is taken, so noise averages out. Memory is two windows of
block means, however long the video.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from . import rppg

BLOCKS_ACROSS_SHORT_SIDE = 30  # 16 px blocks at 640x480
BLOCK_GROUP = 64  # blocks per POS call: keeps its (M, 3, blocks, segment) array near 20 MB


class PulseMap:
    """Accumulate per-block pulse SNR at the tracked rate of a :class:`skinmask.rppg.PulseEstimator`.

    Call :meth:`push` for every frame (after the estimator has had it) and :meth:`add_window` for
    every window it emits; :meth:`finish` after the last frame; then :meth:`snr_db` and :meth:`draw`.
    """

    def __init__(self, estimator: rppg.PulseEstimator) -> None:
        self.est = estimator
        self.rate = estimator.fps
        self.chunk = estimator.win  # samples per map chunk: one window, chunks do not overlap
        self.grid = rppg.UniformResampler(self.rate)
        self.block = 0
        self.shape: tuple[int, int] = (0, 0)  # blocks down, across
        self.frame: np.ndarray | None = None  # the frame drawn under the map
        self.face: np.ndarray | None = None  # its face landmarks
        self._rows: list[np.ndarray] = []
        self._pending: list[tuple[float, np.ndarray]] = []  # (start time, (chunk, 3, K)) waiting for a rate
        self._rates: dict[int, float] = {}  # window start (grid index) -> tracked bpm
        self._last_start = -1  # grid index of the latest window's start
        self._signal: np.ndarray | None = None
        self._noise: np.ndarray | None = None
        self.chunks = 0

    def push(self, frame: np.ndarray, time_s: float, face: np.ndarray | None = None) -> None:
        """Add one BGR frame (all frames must share a size) at ``time_s``; ``face`` its landmarks, if any."""
        if self.frame is None:
            h, w = frame.shape[:2]
            self.block = max(2, int(round(min(h, w) / BLOCKS_ACROSS_SHORT_SIDE)))
            self.shape = (h // self.block, w // self.block)
        if self.frame is None or (self.face is None and face is not None):
            self.frame, self.face = frame.copy(), face  # the first frame with a face (or the first frame)
        bh, bw = self.shape
        crop = frame[: bh * self.block, : bw * self.block]
        means = cv2.resize(crop, (bw, bh), interpolation=cv2.INTER_AREA).astype(np.float32)  # (bh, bw, 3) BGR
        rgb = means[..., ::-1].reshape(-1, 3).T  # (3, K)
        for row in self.grid.push(time_s, rgb.ravel()):
            self._rows.append(row.astype(np.float32))
            if len(self._rows) == self.chunk:
                start = self.grid.next_index - self.chunk
                self._pending.append((start, np.asarray(self._rows).reshape(self.chunk, 3, -1)))
                self._rows = []
                self._resolve()

    def add_window(self, window: rppg.PulseWindow) -> None:
        """The estimator's window: its tracked bpm is the rate the map measures for chunks starting there."""
        start = int(round((window.start_s - self.est.grid.time_of(0)) * self.rate))
        self._last_start = start
        if window.bpm is not None:
            self._rates[start] = window.bpm
        self._resolve()

    def finish(self) -> None:
        """After the last frame: chunks with no tracked rate nearby are dropped."""
        self._resolve(final=True)
        self._rows = []

    def _resolve(self, final: bool = False) -> None:
        keep = []
        for start, block_rgb in self._pending:
            near = [s for s in self._rates if abs(s - start) <= self.est.step / 2]
            if near:
                self._accumulate(block_rgb, self._rates[min(near, key=lambda s: abs(s - start))])
            elif not final and self._last_start < start + self.est.step / 2:  # a window near it may still come
                keep.append((start, block_rgb))
        self._pending = keep
        collecting = self.grid.next_index - len(self._rows)
        horizon = min([s for s, _ in self._pending], default=collecting) - self.est.step
        self._rates = {s: b for s, b in self._rates.items() if s >= horizon}

    def _accumulate(self, block_rgb: np.ndarray, bpm: float) -> None:
        """Add one chunk's per-block signal and noise power at ``bpm``. ``block_rgb`` is (N, 3, K)."""
        n, _, k = block_rgb.shape
        sig, noise = np.zeros(k), np.zeros(k)
        f0 = bpm / 60.0
        band = self.est.band
        for lo in range(0, k, BLOCK_GROUP):
            part = block_rgb[:, :, lo : lo + BLOCK_GROUP].astype(np.float64)
            part = np.maximum(part, 1.0)  # black blocks: no division by zero in the normalisations
            x = rppg.pulse_signal(part, self.rate, self.est.method)
            x = rppg.bandpass(rppg.detrend(x, self.rate, self.est.detrend_kind, band[0]), self.rate, band)
            freqs, power = rppg.spectrum(x, self.rate)  # power (F, group)
            near = (np.abs(freqs - f0) <= rppg.SNR_HALF_WIDTH_HZ) | (np.abs(freqs - 2 * f0) <= rppg.SNR_HALF_WIDTH_HZ)
            in_band = (freqs >= band[0]) & (freqs <= band[1])
            sig[lo : lo + BLOCK_GROUP] = power[near & (in_band | (freqs > band[1]))].sum(axis=0)
            noise[lo : lo + BLOCK_GROUP] = power[in_band & ~near].sum(axis=0)
        if self._signal is None:
            self._signal, self._noise = sig, noise
        else:
            self._signal += sig
            self._noise += noise
        self.chunks += 1

    def snr_db(self) -> np.ndarray | None:
        """(blocks down, across) SNR in dB over the recording; None before the first measured chunk."""
        if self._signal is None or self._noise is None:
            return None
        with np.errstate(divide="ignore", invalid="ignore"):
            snr = 10.0 * np.log10(self._signal / self._noise)
        return snr.reshape(self.shape)

    def draw(self, face_outline: np.ndarray | None = None, title: str = "") -> np.ndarray:
        """(H, W, 3) uint8 BGR: the frame in grey tinted by block SNR, the face region outlined, a colour bar.

        ``face_outline``: a bool (H, W) face region of the frame to outline (or None).
        """
        if self.frame is None:
            raise ValueError("no frame was pushed")
        return draw_snr_map(self.frame, self.snr_db(), self.block, face_outline, title)


def draw_snr_map(frame: np.ndarray, snr: np.ndarray | None, block: int, face_outline: np.ndarray | None = None,
                 title: str = "") -> np.ndarray:
    """The map picture (see :meth:`PulseMap.draw`); blocks with no SNR are left grey."""
    h, w = frame.shape[:2]
    grey = cv2.cvtColor(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    img = grey.copy()
    lo, hi = -10.0, 10.0
    if snr is not None and np.isfinite(snr).any():
        vals = snr[np.isfinite(snr)]
        lo, hi = float(np.floor(np.percentile(vals, 2))), float(np.ceil(np.percentile(vals, 99.5)))
        if hi - lo < 1:
            lo, hi = lo - 1, hi + 1
        scaled = np.clip((snr - lo) / (hi - lo), 0, 1)
        colours = cv2.applyColorMap(np.nan_to_num(scaled * 255).astype(np.uint8), cv2.COLORMAP_TURBO)
        big = cv2.resize(colours, (snr.shape[1] * block, snr.shape[0] * block), interpolation=cv2.INTER_NEAREST)
        valid = cv2.resize(np.isfinite(snr).astype(np.uint8), (big.shape[1], big.shape[0]),
                           interpolation=cv2.INTER_NEAREST).astype(bool)
        region = img[: big.shape[0], : big.shape[1]]
        blend = cv2.addWeighted(region, 0.45, big, 0.55, 0)
        region[valid] = blend[valid]
    if face_outline is not None and face_outline.any():
        contours, _ = cv2.findContours(face_outline.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(img, contours, -1, (255, 255, 255), max(1, round(min(h, w) / 240)), cv2.LINE_AA)
    return _with_colour_bar(img, lo, hi, title)


def _with_colour_bar(img: np.ndarray, lo: float, hi: float, title: str) -> np.ndarray:
    h, w = img.shape[:2]
    bar_w, pad, label_w, head = max(16, w // 40), 8, 80, 28
    canvas = np.full((h + head, w + 2 * pad + bar_w + label_w, 3), 255, np.uint8)
    canvas[head:, :w] = img
    ramp = np.linspace(255, 0, h).astype(np.uint8)[:, None].repeat(bar_w, 1)
    canvas[head:, w + pad : w + pad + bar_w] = cv2.applyColorMap(ramp, cv2.COLORMAP_TURBO)
    font, black = cv2.FONT_HERSHEY_SIMPLEX, (30, 30, 30)
    for k in range(5):
        v = hi - k * (hi - lo) / 4
        y = head + int(round(k * (h - 1) / 4))
        cv2.putText(canvas, f"{v:+.1f} dB", (w + 2 * pad + bar_w, min(max(y + 5, head + 12), h + head - 2)), font, 0.4,
                    black, 1, cv2.LINE_AA)
    text = title or "pulse SNR at the tracked heart rate"
    cv2.putText(canvas, text, (4, 19), font, 0.5 if w >= 400 else 0.35, black, 1, cv2.LINE_AA)
    return canvas


def map_summary(snr: np.ndarray | None, inside: np.ndarray | None) -> dict[str, float]:
    """Median block SNR (dB) inside and outside a block-level bool region (for reports and tests)."""
    if snr is None or inside is None:
        return {}
    finite = np.isfinite(snr)
    out = {}
    for key, sel in (("inside", inside & finite), ("outside", ~inside & finite)):
        out[key] = float(np.median(snr[sel])) if sel.any() else math.nan
    return out
