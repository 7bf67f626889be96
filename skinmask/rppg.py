"""Remote photoplethysmography on a mean-RGB trace: pulse signal, windows, spectral heart rate.

Pure NumPy/SciPy on arrays; no video, no files, no printing. The trace is (N, 3) R, G, B (any
positive scale, e.g. the weighted mean of a region's 0..255 pixels), sampled at ``fps`` (a uniform grid:
frames at other times are resampled onto it first, :class:`UniformResampler`).

Methods (all give a 1-D pulse signal of length N):
- ``pos``   Wang, den Brinker, Stuijk, de Haan, "Algorithmic principles of remote PPG",
            IEEE TBME 64(7), 2017 (plane orthogonal to skin, 1.6 s overlap-add).
- ``chrom`` de Haan & Jeanne, "Robust pulse rate from chrominance-based rPPG", IEEE TBME 60(10),
            2013 (X = 3R - 2G, Y = 1.5R + G - 1.5B, alpha-tuned per 1.6 s Hann segment).
- ``green`` Verkruysse, Svaasand & Nelson, "Remote plethysmographic imaging using ambient light",
            Optics Express 16(26), 2008 (the normalised green channel).

Heart rate per window = the periodogram peak in the band (0.7-3.5 Hz, 42-210 bpm), refined
below the bin width by a parabola through the log power of the peak bin and its two neighbours;
SNR is de Haan's: power within +-0.1 Hz of the peak and of its first harmonic over the power in
the rest of the band, in dB. Which peak: by default the windows are tracked (:class:`HeartRateTracker`,
a causal Viterbi pass over the windows' spectra: heart rate moves a few bpm per second, motion peaks
jump), else the highest one in each window on its own.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import asdict, dataclass
from typing import Iterable, Iterator, Sequence

import numpy as np

METHODS = ("pos", "chrom", "green")
DETRENDS = ("none", "linear", "smooth")
BAND_HZ = (0.7, 3.5)
SEGMENT_S = 1.6  # POS / CHROM inner window: about one slow heartbeat at 40 bpm
SNR_HALF_WIDTH_HZ = 0.1
MIN_VALID_FRACTION = 0.5  # a window with fewer frames carrying skin gives no bpm
MIN_SHORT_CLIP_S = 4.0  # a clip shorter than one window is still scored as one window when at least this long
TRACK_BPM_PER_S = 4.0  # default HeartRateTracker prior: heart rate moves about this much per second of step (1 sd)
TRACK_FLOOR = 1e-2  # spectral share given to every bin, so one window with no power near the truth costs bounded


@dataclass(frozen=True)
class PulseWindow:
    """Heart rate over frames [start_frame, end_frame) (end exclusive); bpm/snr None if unmeasurable."""

    start_frame: int
    end_frame: int
    start_s: float
    end_s: float
    bpm: float | None
    snr: float | None

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        for key in ("start_s", "end_s"):
            d[key] = round(d[key], 3)
        for key in ("bpm", "snr"):
            d[key] = None if d[key] is None else round(d[key], 2)
        return d


# -- pulse signal from RGB -----------------------------------------------------------------------


def _segment_len(fps: float, n: int) -> int:
    return max(2, min(n, int(math.ceil(SEGMENT_S * fps))))


def pos(rgb: np.ndarray, fps: float) -> np.ndarray:
    """POS pulse signal (N, ...) from an (N, 3, ...) RGB trace (e.g. one per block), overlap-added over 1.6 s segments."""
    from numpy.lib.stride_tricks import sliding_window_view

    c = np.asarray(rgb, np.float64)
    n = len(c)
    seg = _segment_len(fps, n)
    win = sliding_window_view(c, seg, axis=0)  # (N-seg+1, 3, ..., seg)
    cn = win / win.mean(axis=-1, keepdims=True)  # temporal normalisation per segment
    s1 = cn[:, 1] - cn[:, 2]  # G - B                       (M, ..., seg)
    s2 = -2.0 * cn[:, 0] + cn[:, 1] + cn[:, 2]  # -2R + G + B (M, ..., seg)
    alpha = s1.std(axis=-1, keepdims=True) / np.maximum(s2.std(axis=-1, keepdims=True), 1e-12)
    h = s1 + alpha * s2
    h -= h.mean(axis=-1, keepdims=True)
    out = np.zeros((n,) + c.shape[2:])
    for m in range(len(h)):  # overlap-add; M is a few hundred per window
        out[m : m + seg] += np.moveaxis(h[m], -1, 0)
    return out


def chrom(rgb: np.ndarray, fps: float, band: tuple[float, float] = BAND_HZ) -> np.ndarray:
    """CHROM pulse signal (N, ...) of an (N, 3, ...) trace: band-passed X and Y, alpha per 1.6 s Hann segment,
    50% overlap-add."""
    c = np.asarray(rgb, np.float64)
    n = len(c)
    seg = _segment_len(fps, n)
    norm = c / _moving_mean(c, seg)
    x = 3.0 * norm[:, 0] - 2.0 * norm[:, 1]
    y = 1.5 * norm[:, 0] + norm[:, 1] - 1.5 * norm[:, 2]
    xf, yf = bandpass(x, fps, band), bandpass(y, fps, band)
    hop = max(1, seg // 2)
    taper = np.hanning(seg).reshape((seg,) + (1,) * (c.ndim - 2))
    out = np.zeros((n,) + c.shape[2:])
    starts = list(range(0, max(n - seg, 0) + 1, hop))
    if starts[-1] + seg < n:
        starts.append(n - seg)
    for s in starts:
        xs, ys = xf[s : s + seg], yf[s : s + seg]
        alpha = xs.std(axis=0) / np.maximum(ys.std(axis=0), 1e-12)
        out[s : s + seg] += taper * (xs - alpha * ys)
    return out


def green(rgb: np.ndarray, fps: float) -> np.ndarray:
    """GREEN pulse signal (N, ...): the green channel over its mean, minus one."""
    g = np.asarray(rgb, np.float64)[:, 1]
    return g / np.maximum(g.mean(axis=0), 1e-12) - 1.0


def _moving_mean(c: np.ndarray, size: int) -> np.ndarray:
    from scipy.ndimage import uniform_filter1d

    return np.maximum(uniform_filter1d(c, size=size, axis=0, mode="nearest"), 1e-12)


def pulse_signal(rgb: np.ndarray, fps: float, method: str = "pos") -> np.ndarray:
    """The raw (unfiltered) pulse signal (N, ...) of ``method`` for an (N, 3, ...) RGB trace."""
    if method == "pos":
        return pos(rgb, fps)
    if method == "chrom":
        return chrom(rgb, fps)
    if method == "green":
        return green(rgb, fps)
    raise ValueError(f"unknown method {method!r}; expected one of {', '.join(METHODS)}")


# -- filtering and spectra -----------------------------------------------------------------------


def detrend(x: np.ndarray, fps: float, kind: str = "none", cutoff_hz: float = BAND_HZ[0]) -> np.ndarray:
    """Remove slow drift along axis 0: ``none``, ``linear`` (scipy.signal.detrend) or ``smooth``.

    ``smooth`` is Tarvainen et al.'s smoothness-priors detrending (IEEE TBME 49(2), 2002), the usual
    rPPG choice, solved as one sparse system (scipy.sparse). Its trend is a low-pass with amplitude
    1 / (1 + (lambda w^2)^2), w in rad/sample, so lambda = (fps / (2 pi cutoff_hz))^2 puts the
    half-amplitude point at ``cutoff_hz``: by default the band's low edge (0.7 Hz; lambda ~ 18 at 30 fps).
    """
    from scipy import signal, sparse
    from scipy.sparse.linalg import spsolve

    x = np.asarray(x, np.float64)
    if kind == "none" or len(x) < 3:
        return x
    if kind == "linear":
        return signal.detrend(x, axis=0, type="linear")
    if kind == "smooth":
        n = len(x)
        lam = (fps / (2.0 * math.pi * cutoff_hz)) ** 2
        d2 = sparse.diags([np.ones(n - 2), -2 * np.ones(n - 2), np.ones(n - 2)], [0, 1, 2], shape=(n - 2, n))
        trend = spsolve((sparse.identity(n) + lam**2 * (d2.T @ d2)).tocsc(), x)
        return x - trend
    raise ValueError(f"unknown detrend {kind!r}; expected one of {', '.join(DETRENDS)}")


def bandpass(x: np.ndarray, fps: float, band: tuple[float, float] = BAND_HZ, order: int = 3) -> np.ndarray:
    """Zero-phase Butterworth band-pass along axis 0 (scipy.signal.butter + sosfiltfilt)."""
    from scipy import signal

    x = np.asarray(x, np.float64)
    nyq = fps / 2.0
    lo, hi = band[0] / nyq, min(band[1] / nyq, 0.99)
    if not 0 < lo < hi:
        raise ValueError(f"band {band} Hz does not fit a frame rate of {fps:g} fps")
    sos = signal.butter(order, [lo, hi], btype="bandpass", output="sos")
    padlen = min(3 * (2 * len(sos) + 1), len(x) - 1)
    return signal.sosfiltfilt(sos, x, axis=0, padlen=max(padlen, 0))


def spectrum(x: np.ndarray, fps: float, min_bins_per_bpm: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """(freqs Hz, power) of a Hann-windowed periodogram along axis 0, zero-padded to at least 2 bins per bpm."""
    from scipy import signal

    n = len(x)
    nfft = max(n, int(2 ** math.ceil(math.log2(max(fps * 60.0 * min_bins_per_bpm, 2)))))
    return signal.periodogram(x, fs=fps, window="hann", nfft=nfft, detrend="constant", scaling="spectrum", axis=0)


def peak_frequency(freqs: np.ndarray, power: np.ndarray, band: tuple[float, float] = BAND_HZ) -> float | None:
    """Frequency (Hz) of the highest in-band peak, refined by a parabola on log power; None if flat."""
    idx = np.flatnonzero((freqs >= band[0]) & (freqs <= band[1]))
    if len(idx) == 0:
        return None
    k = int(idx[np.argmax(power[idx])])
    if not power[k] > 0:
        return None
    return refine_peak(freqs, power, k)


def refine_peak(freqs: np.ndarray, power: np.ndarray, k: int) -> float:
    """Frequency of bin k refined by a parabola through the log power of k and its neighbours (when k is a peak)."""
    f = float(freqs[k])
    if 0 < k < len(power) - 1 and (power[k - 1 : k + 2] > 0).all():
        a, b, c = np.log(power[k - 1 : k + 2])
        den = a - 2.0 * b + c
        if den < 0 and b >= max(a, c):
            f += 0.5 * (a - c) / den * float(freqs[1] - freqs[0])
    return f


def snr_db(freqs: np.ndarray, power: np.ndarray, f0: float, band: tuple[float, float] = BAND_HZ) -> float:
    """de Haan's SNR: power within +-0.1 Hz of f0 and 2*f0 over the rest of the band, in dB."""
    near = (np.abs(freqs - f0) <= SNR_HALF_WIDTH_HZ) | (np.abs(freqs - 2.0 * f0) <= SNR_HALF_WIDTH_HZ)
    in_band = (freqs >= band[0]) & (freqs <= band[1])
    signal_p = float(power[near & (in_band | (freqs > band[1]))].sum())
    noise_p = float(power[in_band & ~near].sum())
    if noise_p <= 0:
        return math.inf if signal_p > 0 else 0.0
    if signal_p <= 0:
        return -math.inf
    return 10.0 * math.log10(signal_p / noise_p)


def filtered_pulse(
    rgb: np.ndarray, fps: float, method: str = "pos", detrend_kind: str = "smooth", band: tuple[float, float] = BAND_HZ
) -> np.ndarray:
    """Pulse signal of ``method``, detrended and band-passed: what the spectrum is taken of."""
    return bandpass(detrend(pulse_signal(fill_gaps(rgb), fps, method), fps, detrend_kind, band[0]), fps, band)


def window_pulse(
    rgb: np.ndarray, fps: float, method: str = "pos", detrend_kind: str = "smooth", band: tuple[float, float] = BAND_HZ
) -> np.ndarray | None:
    """One window's filtered pulse (N,); None when too few frames have skin."""
    rgb = np.asarray(rgb, np.float64)
    valid = np.isfinite(rgb).all(axis=1) & (rgb > 0).all(axis=1)
    if len(rgb) < 8 or valid.mean() < MIN_VALID_FRACTION:
        return None
    return filtered_pulse(rgb, fps, method, detrend_kind, band)


def window_spectrum(
    rgb: np.ndarray, fps: float, method: str = "pos", detrend_kind: str = "smooth", band: tuple[float, float] = BAND_HZ
) -> tuple[np.ndarray, np.ndarray] | None:
    """(freqs Hz, power) of one window's filtered pulse; None when too few frames have skin."""
    pulse = window_pulse(rgb, fps, method, detrend_kind, band)
    return None if pulse is None else spectrum(pulse, fps)


def estimate(
    rgb: np.ndarray, fps: float, method: str = "pos", detrend_kind: str = "smooth", band: tuple[float, float] = BAND_HZ
) -> tuple[float | None, float | None]:
    """(bpm, snr dB) of one window of an (N, 3) RGB trace on its own (highest peak, no tracking);
    (None, None) when too few frames have skin."""
    spec = window_spectrum(rgb, fps, method, detrend_kind, band)
    if spec is None:
        return None, None
    return _bpm_snr(*spec, peak_frequency(*spec, band), band)


def _bpm_snr(freqs: np.ndarray, power: np.ndarray, f0: float | None,
             band: tuple[float, float]) -> tuple[float | None, float | None]:
    if f0 is None:
        return None, None
    return 60.0 * f0, snr_db(freqs, power, f0, band)


class HeartRateTracker:
    """Causal tracking of the heart rate across consecutive windows' spectra (forward Viterbi).

    Each in-band bin is a state; a window's evidence for it is the log of its share of the in-band
    power (plus a small floor), and moving between windows costs a Gaussian penalty with
    ``sigma_bpm`` per step. The estimate for a window is the end of the best path so far, so it
    uses only this and earlier windows (streams as they come) and a motion peak that beats the pulse
    in one or two windows does not pull the estimate away, while a real change wins in a few
    windows. Windows with no spectrum leave the state as it is; a change of frequency grid restarts it.
    """

    def __init__(self, sigma_bpm: float, band: tuple[float, float] = BAND_HZ, floor: float = TRACK_FLOOR) -> None:
        if not sigma_bpm > 0:
            raise ValueError(f"tracking sigma must be positive, got {sigma_bpm}")
        self.sigma_bpm, self.band, self.floor = sigma_bpm, band, floor
        self._freqs: np.ndarray | None = None
        self._idx = np.empty(0, np.intp)
        self._trans = np.empty((0, 0))
        self._score: np.ndarray | None = None

    def update(self, freqs: np.ndarray, power: np.ndarray) -> float | None:
        """The tracked frequency (Hz, sub-bin refined) for the next window's spectrum."""
        if self._freqs is None or len(freqs) != len(self._freqs) or not np.allclose(freqs, self._freqs):
            self._freqs = np.asarray(freqs, np.float64).copy()
            self._idx = np.flatnonzero((freqs >= self.band[0]) & (freqs <= self.band[1]))
            bpm = 60.0 * self._freqs[self._idx]
            self._trans = -0.5 * ((bpm[:, None] - bpm[None, :]) / self.sigma_bpm) ** 2
            self._score = None
        p = power[self._idx]
        total = float(p.sum())
        if len(p) == 0 or not total > 0:
            return None
        evidence = np.log(p / total + self.floor / len(p))
        if self._score is None:
            self._score = evidence
        else:
            self._score = evidence + np.max(self._score[None, :] + self._trans, axis=1)
        self._score -= self._score.max()
        return refine_peak(freqs, power, int(self._idx[np.argmax(self._score)]))


def spectral_bpm(x: np.ndarray, fps: float, band: tuple[float, float] = BAND_HZ) -> tuple[float | None, float | None]:
    """(bpm, snr dB) of an already filtered 1-D signal."""
    freqs, power = spectrum(x, fps)
    return _bpm_snr(freqs, power, peak_frequency(freqs, power, band), band)


def fill_gaps(rgb: np.ndarray) -> np.ndarray:
    """Linearly interpolate rows that are NaN or non-positive (frames with no skin)."""
    rgb = np.array(rgb, np.float64)
    bad = ~(np.isfinite(rgb).all(axis=1) & (rgb > 0).all(axis=1))
    if bad.any() and not bad.all():
        t = np.arange(len(rgb))
        for ch in range(3):
            rgb[bad, ch] = np.interp(t[bad], t[~bad], rgb[~bad, ch])
    return rgb


# -- windows -------------------------------------------------------------------------------------


def window_frames(window_s: float, step_s: float, fps: float) -> tuple[int, int]:
    """(window, step) in frames for durations in seconds (rounded, at least 1 frame)."""
    if not window_s > 0 or not step_s > 0:
        raise ValueError("window and step must be positive seconds")
    return max(1, int(round(window_s * fps))), max(1, int(round(step_s * fps)))


def window_bounds(n_frames: int, fps: float, window_s: float = 10.0, step_s: float = 1.0) -> list[tuple[int, int]]:
    """[(start, end)] frame ranges (end exclusive) of full windows; one whole-clip window if the clip is
    shorter than a window but at least MIN_SHORT_CLIP_S long; [] if shorter still."""
    win, step = window_frames(window_s, step_s, fps)
    if n_frames >= win:
        return [(s, s + win) for s in range(0, n_frames - win + 1, step)]
    if n_frames >= MIN_SHORT_CLIP_S * fps:
        return [(0, n_frames)]
    return []


def overall_bpm(windows: Iterable[PulseWindow]) -> float | None:
    """The clip's heart rate: the median of the windows' bpm (None when no window has one).

    A median, not the peak of one whole-clip spectrum: heart rate drifts over a clip (a whole-clip
    spectrum smears across the rates it visits) and a few windows spoiled by motion should not move it.
    """
    bpms = [w.bpm for w in windows if w.bpm is not None]
    return float(np.median(bpms)) if bpms else None


GRID_MIN_HZ, GRID_MAX_HZ = 30.0, 60.0  # the uniform grid's rate is the video's nominal rate, within these


def grid_rate(nominal_fps: float) -> float:
    """Rate (Hz) of the uniform grid a video's trace is resampled onto: its nominal fps within 30-60 Hz.

    A variable-rate recording's nominal rate is an average or the first segment's (15 for a phone clip
    that later runs at 30): at 30 Hz or more no stretch of a phone or webcam recording is decimated. A
    container's claim of hundreds of fps (a millisecond time base) would cost memory and time for no
    gain: 60 Hz is 17 times the band's top (3.5 Hz).
    """
    if not math.isfinite(nominal_fps):
        return GRID_MIN_HZ
    return min(max(float(nominal_fps), GRID_MIN_HZ), GRID_MAX_HZ)


class UniformResampler:
    """Linear resampling of a stream of (time, vector) samples onto the grid ``t0 + j / rate``.

    ``t0`` is the first sample's time. Each push returns the grid values it completes (a grid point
    a quarter step or less past the sample takes the sample's value, so frames already on the grid
    pass through unchanged). Where one neighbour is NaN (no skin) the nearer one is taken, so a gap
    stays a gap and does not spread. Times that do not increase are skipped.
    """

    def __init__(self, rate: float) -> None:
        if not rate > 0:
            raise ValueError(f"grid rate must be positive, got {rate}")
        self.rate = rate
        self.t0: float | None = None
        self.next_index = 0  # the next grid point to produce
        self._prev: tuple[float, np.ndarray] | None = None

    def time_of(self, j: int | float) -> float:
        """Time (s) of grid point ``j``."""
        return (self.t0 or 0.0) + j / self.rate

    def push(self, t: float, value: np.ndarray) -> list[np.ndarray]:
        value = np.asarray(value, np.float64)
        if self.t0 is None:
            self.t0 = t
        if self._prev is not None and not t > self._prev[0]:
            return []
        out = []
        tol = 0.25 / self.rate
        while self.time_of(self.next_index) <= t + tol:
            g = self.time_of(self.next_index)
            if self._prev is None or g >= t:
                out.append(value)
            else:
                tp, vp = self._prev
                w = (g - tp) / (t - tp)  # 0 at the previous sample, 1 at this one
                mixed = (1.0 - w) * vp + w * value
                if not np.isfinite(mixed).all():
                    mixed = np.where(np.isfinite(mixed), mixed, value if w >= 0.5 else vp)
                out.append(mixed)
            self.next_index += 1
        self._prev = (t, value)
        return out


def resample_uniform(times: np.ndarray, values: np.ndarray, rate: float) -> tuple[np.ndarray, np.ndarray]:
    """(grid times (M,), values (M, ...)) of a whole trace held in memory, as :class:`UniformResampler` gives."""
    rs = UniformResampler(rate)
    out = [g for t, v in zip(np.asarray(times, np.float64), np.asarray(values, np.float64)) for g in rs.push(t, v)]
    vals = np.asarray(out, np.float64).reshape((len(out),) + np.shape(values)[1:])
    return rs.time_of(np.arange(len(out))), vals


class PulseEstimator:
    """Streaming heart rate: push one RGB row per frame with its time, get each window once its frames are in.

    The rows are resampled onto a uniform grid at ``fps`` (the grid's rate; see :func:`grid_rate`), so
    frames may come at any times (variable frame rate); without times frame i is at i / fps. Windows
    are cut on the grid, ``window_s`` long every ``step_s``, and each reports the frames whose times fall
    inside it. Memory is one window, however long the video. ``track_bpm_per_s`` (None or 0: off)
    tracks the heart rate across windows with a :class:`HeartRateTracker` whose step is
    ``track_bpm_per_s * step_s`` bpm (1 sd). ``keep_bvp``: the windows' filtered pulses, each scaled to
    unit power and Hann-weighted, are overlap-added on the grid; :meth:`pop_bvp` hands out the
    (time, value) samples no later window will touch.
    """

    def __init__(
        self,
        fps: float,
        method: str = "pos",
        window_s: float = 10.0,
        step_s: float = 1.0,
        detrend_kind: str = "smooth",
        band: tuple[float, float] = BAND_HZ,
        track_bpm_per_s: float | None = TRACK_BPM_PER_S,
        keep_bvp: bool = False,
    ) -> None:
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; expected one of {', '.join(METHODS)}")
        if detrend_kind not in DETRENDS:
            raise ValueError(f"unknown detrend {detrend_kind!r}; expected one of {', '.join(DETRENDS)}")
        if not fps > 0:
            raise ValueError(f"frame rate must be positive, got {fps}")
        if not 0 < band[0] < band[1] < fps / 2:
            raise ValueError(f"band {band[0]:g}-{band[1]:g} Hz needs a frame rate above {2 * band[1]:g} fps, got {fps:g}")
        self.fps, self.method, self.detrend_kind, self.band = fps, method, detrend_kind, band
        self.window_s, self.step_s = window_s, step_s
        self.win, self.step = window_frames(window_s, step_s, fps)
        if track_bpm_per_s is not None and track_bpm_per_s < 0:
            raise ValueError(f"tracking rate must be >= 0 bpm/s, got {track_bpm_per_s}")
        self.tracker = HeartRateTracker(track_bpm_per_s * self.step / fps, band) if track_bpm_per_s else None
        self.grid = UniformResampler(fps)
        self._rows: deque[np.ndarray] = deque(maxlen=self.win)
        self._frame_times: deque[tuple[int, float]] = deque()  # (index, time) of the frames since the next window start
        self.frames = 0  # frames pushed
        self.samples = 0  # grid samples made
        self.emitted = 0
        self._bvp: _OverlapAdd | None = _OverlapAdd(self.win) if keep_bvp else None

    def push(self, rgb: Sequence[float], time_s: float | None = None) -> list[PulseWindow]:
        """Add the next frame's (R, G, B) at ``time_s`` (default: frame index / fps); returns the windows
        it completes (none, usually one; several after a long gap in the timestamps)."""
        t = self.frames / self.fps if time_s is None else float(time_s)
        self._frame_times.append((self.frames, t))
        self.frames += 1
        done = []
        for row in self.grid.push(t, np.asarray(rgb[:3], np.float64)):
            self._rows.append(row)
            self.samples += 1
            start = self.samples - self.win
            if start >= 0 and start % self.step == 0:
                done.append(self._window(start, self.samples))
        return done

    def finish(self) -> list[PulseWindow]:
        """Call after the last frame: a clip shorter than one window is scored as a single window."""
        out = []
        if self.emitted == 0 and self.samples < self.win and self.samples >= MIN_SHORT_CLIP_S * self.fps:
            out.append(self._window(0, self.samples))
        if self._bvp is not None:
            self._bvp.flush()
        return out

    def pop_bvp(self) -> list[tuple[float, float]]:
        """(time s, value) of the combined pulse samples completed since the last call (``keep_bvp``)."""
        if self._bvp is None:
            return []
        return [(self.grid.time_of(j), v) for j, v in self._bvp.pop()]

    def _frame_span(self, start: int, end: int) -> tuple[int, int]:
        """Frames [first, last + 1) whose times fall on grid samples [start, end), within a quarter step."""
        tol = 0.25 / self.fps
        lo, hi = self.grid.time_of(start) - tol, self.grid.time_of(end - 1) + tol
        inside = [i for i, t in self._frame_times if lo <= t <= hi]
        if not inside:  # a window inside a gap of the timestamps
            after = [i for i, t in self._frame_times if t > hi]
            first = after[0] if after else self.frames
            return first, first
        return inside[0], inside[-1] + 1

    def _window(self, start: int, end: int) -> PulseWindow:
        rgb = np.asarray(self._rows, np.float64)[-(end - start) :]
        pulse = window_pulse(rgb, self.fps, self.method, self.detrend_kind, self.band)
        bpm = snr = None
        if pulse is not None:
            spec = spectrum(pulse, self.fps)
            f0 = self.tracker.update(*spec) if self.tracker else peak_frequency(*spec, self.band)
            bpm, snr = _bpm_snr(*spec, f0, self.band)
        first, last = self._frame_span(start, end)
        next_start = self.grid.time_of(start + self.step) - 0.25 / self.fps
        while self._frame_times and self._frame_times[0][1] < next_start:
            self._frame_times.popleft()
        if self._bvp is not None:
            self._bvp.add(start, pulse, end - start, final_below=start + self.step)
        self.emitted += 1
        return PulseWindow(first, last, self.grid.time_of(start), self.grid.time_of(end), bpm, snr)


class _OverlapAdd:
    """Hann-weighted overlap-add of window signals on a grid, handing out samples as they become final."""

    def __init__(self, win: int) -> None:
        self.taper = 0.5 - 0.5 * np.cos(2 * np.pi * (np.arange(win) + 0.5) / win)  # never 0 at the ends
        self.base = 0  # grid index of num[0]
        self.num: deque[float] = deque()
        self.den: deque[float] = deque()
        self.ready: list[tuple[int, float]] = []

    def add(self, start: int, x: np.ndarray | None, length: int, final_below: int) -> None:
        need = start + length - self.base
        while len(self.num) < need:
            self.num.append(0.0)
            self.den.append(0.0)
        if x is not None:
            sd = float(np.std(x))
            taper = self.taper if len(x) == len(self.taper) else np.hanning(len(x) + 2)[1:-1]
            if sd > 0:
                for k, (v, w) in enumerate(zip(x / sd, taper)):
                    self.num[start - self.base + k] += w * v
                    self.den[start - self.base + k] += w
        self._release(final_below)

    def _release(self, below: int) -> None:
        while self.num and self.base < below:
            n, d = self.num.popleft(), self.den.popleft()
            self.ready.append((self.base, n / d if d > 0 else math.nan))
            self.base += 1

    def flush(self) -> None:
        self._release(self.base + len(self.num))

    def pop(self) -> list[tuple[int, float]]:
        out, self.ready = self.ready, []
        return out


def estimate_windows(
    rgb: np.ndarray,
    fps: float,
    method: str = "pos",
    window_s: float = 10.0,
    step_s: float = 1.0,
    detrend_kind: str = "smooth",
    band: tuple[float, float] = BAND_HZ,
    track_bpm_per_s: float | None = TRACK_BPM_PER_S,
    times: np.ndarray | None = None,
) -> Iterator[PulseWindow]:
    """All windows of a whole (N, 3) trace held in memory (frame times ``times``, default i / fps);
    same results as :class:`PulseEstimator`, whose ``fps`` is the grid's rate."""
    est = PulseEstimator(fps, method, window_s, step_s, detrend_kind, band, track_bpm_per_s)
    rows = np.asarray(rgb, np.float64)
    for row, t in zip(rows, np.arange(len(rows)) / fps if times is None else times):
        yield from est.push(row, t)
    yield from est.finish()
