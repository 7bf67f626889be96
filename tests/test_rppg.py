"""rPPG DSP on synthetic mean-RGB traces: each method finds a known pulse; windows and streaming."""

from __future__ import annotations

import json

import numpy as np
import pytest

from skinmask import rppg

FPS = 30.0
# Relative pulse strength per channel (R, G, B) of real skin: green carries most of it.
SKIN_PULSE = np.array([0.33, 0.77, 0.53])


def synthetic_trace(bpm: float, seconds: float = 20.0, fps: float = FPS, seed: int = 0) -> np.ndarray:
    """(N, 3) mean-RGB trace: skin colour x (1 + pulse) with slow drift, lighting flicker and noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * fps)) / fps
    pulse = 0.004 * np.sin(2 * np.pi * bpm / 60 * t + 0.3)
    drift = 1 + 0.05 * t / seconds + 0.01 * np.sin(2 * np.pi * 0.1 * t)  # lighting change, same on all channels
    base = np.array([150.0, 110.0, 90.0])
    rgb = base * drift[:, None] * (1 + SKIN_PULSE * pulse[:, None])
    return rgb + rng.normal(0, 0.05, rgb.shape)


@pytest.mark.parametrize("method", rppg.METHODS)
@pytest.mark.parametrize("bpm", [48.0, 72.5, 117.0, 180.0])
def test_methods_recover_known_rate(method: str, bpm: float) -> None:
    rgb = synthetic_trace(bpm, seed=int(bpm))
    windows = list(rppg.estimate_windows(rgb, FPS, method=method))
    assert len(windows) == 11
    for w in windows:
        assert w.bpm is not None and abs(w.bpm - bpm) < 1.0, (method, w)
        assert w.snr is not None and w.snr > 0
    assert abs(rppg.overall_bpm(windows) - bpm) < 1.0


@pytest.mark.parametrize("detrend", rppg.DETRENDS)
def test_detrend_options_keep_the_pulse(detrend: str) -> None:
    rgb = synthetic_trace(66.0)
    for w in rppg.estimate_windows(rgb, FPS, detrend_kind=detrend):
        assert abs(w.bpm - 66.0) < 1.0


def test_sub_bin_interpolation_beats_bin_width() -> None:
    # A pure tone between two FFT bins: the refined peak is far closer than half a bin.
    f = 1.2345
    x = np.sin(2 * np.pi * f * np.arange(300) / FPS)
    freqs, power = rppg.spectrum(x, FPS)
    bin_hz = freqs[1] - freqs[0]
    assert abs(rppg.peak_frequency(freqs, power) - f) < 0.1 * bin_hz


def test_snr_high_for_clean_tone_low_for_noise() -> None:
    rng = np.random.default_rng(1)
    t = np.arange(300) / FPS
    clean = rppg.bandpass(np.sin(2 * np.pi * 1.5 * t) + 0.05 * rng.normal(size=300), FPS)
    noise = rppg.bandpass(rng.normal(size=300), FPS)
    assert rppg.spectral_bpm(clean, FPS)[1] > 10
    assert rppg.spectral_bpm(noise, FPS)[1] < 0


def test_peak_stays_in_band() -> None:
    # A strong 0.3 Hz (breathing) component and a weak 1.5 Hz pulse: the answer is the pulse.
    t = np.arange(300) / FPS
    x = 5 * np.sin(2 * np.pi * 0.3 * t) + np.sin(2 * np.pi * 1.5 * t)
    bpm, _ = rppg.spectral_bpm(rppg.bandpass(x, FPS), FPS)
    assert 42 <= bpm <= 210 and abs(bpm - 90) < 1


def test_window_bounds() -> None:
    assert rppg.window_bounds(600, 30.0, 10, 1)[:3] == [(0, 300), (30, 330), (60, 360)]
    bounds = rppg.window_bounds(600, 30.0, 10, 1)
    assert bounds[-1] == (300, 600) and len(bounds) == 11
    assert rppg.window_bounds(599, 30.0, 10, 5) == [(0, 300), (150, 450)]
    assert rppg.window_bounds(200, 30.0, 10, 1) == [(0, 200)]  # short clip: one window
    assert rppg.window_bounds(100, 30.0, 10, 1) == []  # too short to measure
    assert rppg.window_frames(10, 1, 29.55) == (296, 30)


def test_streaming_emits_each_window_on_its_last_frame() -> None:
    rgb = synthetic_trace(90.0, seconds=15)
    est = rppg.PulseEstimator(FPS, window_s=10, step_s=2.5)
    got = []
    for i, row in enumerate(rgb):
        for w in est.push(row):
            assert w.end_frame == i + 1  # emitted as soon as complete
            got.append(w)
    assert est.finish() == []
    assert [(w.start_frame, w.end_frame) for w in got] == rppg.window_bounds(len(rgb), FPS, 10, 2.5)
    assert len(est._rows) == est.win  # memory bounded by one window
    w = got[1]
    assert (w.start_s, w.end_s) == (75 / FPS, 375 / FPS)


def test_streaming_matches_batch_on_a_window() -> None:
    rgb = synthetic_trace(100.0, seconds=12)
    ws = list(rppg.estimate_windows(rgb, FPS, step_s=2))
    direct = rppg.estimate(rgb[60:360], FPS)
    assert ws[1].start_frame == 60 and ws[1].bpm == pytest.approx(direct[0])


def test_short_clip_is_one_window() -> None:
    ws = list(rppg.estimate_windows(synthetic_trace(80.0, seconds=6), FPS))
    assert len(ws) == 1 and (ws[0].start_frame, ws[0].end_frame) == (0, 180)
    assert abs(ws[0].bpm - 80) < 1.5


def test_gaps_without_skin_are_bridged_and_mostly_empty_windows_give_none() -> None:
    rgb = synthetic_trace(75.0, seconds=10)
    rgb[100:110] = np.nan  # a few frames where the mask found no skin
    (w,) = rppg.estimate_windows(rgb, FPS)
    assert abs(w.bpm - 75) < 1.0
    rgb[:200] = np.nan
    (w,) = rppg.estimate_windows(rgb, FPS)
    assert w.bpm is None and w.snr is None
    assert rppg.overall_bpm([w]) is None


def _with_motion_bursts(rgb: np.ndarray, bpm: float, bursts: list[tuple[float, float]]) -> np.ndarray:
    """Add a wobble at ``bpm`` during each (start_s, end_s) burst, 2.5x the pulse and in the pulse's own colour
    direction, so no rPPG projection can tell them apart: only the windows around it can."""
    t = np.arange(len(rgb)) / FPS
    on = np.zeros(len(rgb))
    for a, b in bursts:
        on[(t >= a) & (t < b)] = 1.0
    wobble = 0.01 * on * np.sin(2 * np.pi * bpm / 60 * t)
    return rgb * (1 + SKIN_PULSE * wobble[:, None])


def test_tracking_holds_the_pulse_through_motion_bursts() -> None:
    # 40 s at 96 bpm; in two 6 s bursts a 60 bpm motion wobble outweighs the pulse in the windows around them.
    rgb = _with_motion_bursts(synthetic_trace(96.0, seconds=40), 60.0, [(14, 20), (27, 33)])
    alone = list(rppg.estimate_windows(rgb, FPS, track_bpm_per_s=0))
    tracked = list(rppg.estimate_windows(rgb, FPS))
    assert sum(abs(w.bpm - 96) > 5 for w in alone) >= 5  # the bursts do fool the window-by-window peak
    assert all(abs(w.bpm - 96) < 1.5 for w in tracked), [round(w.bpm, 1) for w in tracked]
    assert [(w.start_frame, w.end_frame) for w in tracked] == [(w.start_frame, w.end_frame) for w in alone]


def test_tracking_follows_a_real_change_of_rate() -> None:
    # Heart rate climbing 70 -> 100 bpm over 40 s (0.75 bpm/s, as at the start of exercise).
    t = np.arange(int(60 * FPS)) / FPS
    rate = np.interp(t, [0, 10, 50, 60], [70, 70, 100, 100])
    phase = 2 * np.pi * np.cumsum(rate / 60) / FPS
    rgb = np.array([150.0, 110.0, 90.0]) * (1 + SKIN_PULSE * 0.004 * np.sin(phase)[:, None])
    rgb += np.random.default_rng(3).normal(0, 0.05, rgb.shape)
    for w in rppg.estimate_windows(rgb, FPS):
        mid = rate[w.start_frame:w.end_frame].mean()
        assert abs(w.bpm - mid) < 3.0, (w.start_s, w.bpm, mid)


def test_tracker_is_causal_and_restarts_on_a_new_grid() -> None:
    rgb = _with_motion_bursts(synthetic_trace(96.0, seconds=40), 60.0, [(27, 33)])
    full = [w.bpm for w in rppg.estimate_windows(rgb, FPS)]
    first = [w.bpm for w in rppg.estimate_windows(rgb[: 25 * 30], FPS)]
    assert full[: len(first)] == first  # later frames never change earlier windows
    tracker = rppg.HeartRateTracker(4.0)
    f1, p1 = rppg.spectrum(rppg.bandpass(np.sin(2 * np.pi * 1.5 * np.arange(300) / FPS), FPS), FPS)
    assert abs(tracker.update(f1, p1) - 1.5) < 0.01
    f2, p2 = rppg.spectrum(rppg.bandpass(np.sin(2 * np.pi * 2.5 * np.arange(300) / 25.0), 25.0), 25.0)
    assert abs(tracker.update(f2, p2) - 2.5) < 0.01  # other frame rate: other grid, fresh start
    assert tracker.update(f2, np.zeros_like(p2)) is None


def test_window_json_schema() -> None:
    (w,) = rppg.estimate_windows(synthetic_trace(75.0, seconds=10), FPS)
    d = json.loads(json.dumps(w.to_dict()))
    assert set(d) == {"start_frame", "end_frame", "start_s", "end_s", "bpm", "snr"}
    assert isinstance(d["start_frame"], int) and isinstance(d["bpm"], float)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="method"):
        rppg.PulseEstimator(FPS, method="ica")
    with pytest.raises(ValueError, match="fps"):
        rppg.PulseEstimator(5.0)  # band up to 3.5 Hz needs more than 7 fps
    with pytest.raises(ValueError, match="positive"):
        rppg.window_frames(0, 1, FPS)


def _vfr_times(seconds_each: float = 10.0) -> np.ndarray:
    """Frame times of a phone-like recording: 15 fps, then 30 fps."""
    slow = np.arange(int(seconds_each * 15)) / 15
    fast = seconds_each + np.arange(int(seconds_each * 30)) / 30
    return np.concatenate([slow, fast])


def test_variable_frame_rate_is_resampled_by_time() -> None:
    times = _vfr_times()
    rgb = synthetic_trace_at(72.0, times)
    by_time = list(rppg.estimate_windows(rgb, 30.0, times=times))
    assert len(by_time) == 11 and all(abs(w.bpm - 72) < 1.0 for w in by_time), [w.bpm for w in by_time]
    first, last = by_time[0], by_time[-1]
    assert (first.start_frame, first.end_frame, first.start_s, first.end_s) == (0, 150, 0.0, 10.0)
    assert (last.start_frame, last.end_frame) == (150, 450) and last.end_s == pytest.approx(20.0)
    by_index = list(rppg.estimate_windows(rgb, 30.0))  # what frame counting did: rates off in both halves
    assert abs(by_index[0].bpm - 72) > 20


def synthetic_trace_at(bpm: float, times: np.ndarray, seed: int = 0) -> np.ndarray:
    """synthetic_trace sampled at arbitrary frame times."""
    rng = np.random.default_rng(seed)
    pulse = 0.004 * np.sin(2 * np.pi * bpm / 60 * times + 0.3)
    rgb = np.array([150.0, 110.0, 90.0]) * (1 + SKIN_PULSE * pulse[:, None])
    return rgb + rng.normal(0, 0.05, rgb.shape)


def test_resampler_passes_grid_frames_through_and_interpolates_between() -> None:
    values = np.arange(10.0)[:, None] * [1.0, 2.0, 3.0]
    t, out = rppg.resample_uniform(np.arange(10) / 30.0, values, 30.0)
    assert np.array_equal(out, values) and t[3] == pytest.approx(0.1)
    t, out = rppg.resample_uniform(np.array([0.0, 0.1, 0.2]), np.array([[0.0], [3.0], [6.0]]), 30.0)
    assert out[:, 0] == pytest.approx([0, 1, 2, 3, 4, 5, 6])
    gap = np.array([[1.0], [np.nan], [3.0]])
    _, out = rppg.resample_uniform(np.array([0.0, 0.1, 0.2]), gap, 30.0)
    assert out[:, 0][[0, 1, 5, 6]] == pytest.approx([1, 1, 3, 3]) and np.isnan(out[2:5, 0]).all()
    _, out = rppg.resample_uniform(np.array([0.0, 0.1, 0.1, 0.05, 0.2]), np.arange(5.0)[:, None], 10.0)
    assert out[:, 0] == pytest.approx([0, 1, 4])  # times that do not increase are skipped


def test_bvp_is_the_pulse_on_the_grid() -> None:
    rgb = synthetic_trace(84.0, seconds=20)
    est = rppg.PulseEstimator(FPS, keep_bvp=True)
    bvp = []
    for row in rgb:
        est.push(row)
        bvp += est.pop_bvp()
        assert len(est._bvp.num) <= est.win  # streamed: never more than one window pending
    est.finish()
    bvp += est.pop_bvp()
    t, v = np.array(bvp).T
    assert len(t) == len(rgb) and t == pytest.approx(np.arange(len(rgb)) / FPS)
    assert np.isfinite(v).all() and abs(v.std() - 1) < 0.3
    truth = np.sin(2 * np.pi * 84 / 60 * t + 0.3)
    assert np.corrcoef(v[30:-30], truth[30:-30])[0, 1] > 0.95


def test_grid_rate_is_the_nominal_rate_within_30_to_60_hz() -> None:
    assert rppg.grid_rate(29.55) == 30.0 and rppg.grid_rate(15.0) == 30.0  # a VFR clip's first-segment rate
    assert rppg.grid_rate(50.0) == 50.0 and rppg.grid_rate(1000.0) == 60.0 and rppg.grid_rate(float("nan")) == 30.0
