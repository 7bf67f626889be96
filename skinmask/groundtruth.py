"""Contact-PPG ground truth for rPPG evaluation: UBFC-rPPG files, plain CSV, and the per-window reference bpm.

UBFC-rPPG ships two formats (https://sites.google.com/view/ybenezeth/ubfcrppg):
- DATASET_2 ``ground_truth.txt``: three lines of space-separated numbers, same length: line 1 the
  PPG waveform, line 2 the oximeter heart rate (bpm), line 3 the time of each sample (s).
- DATASET_1 ``gtdump.xmp``: comma-separated rows ``time_ms, heart_rate, spo2, ppg``.

There is one UBFC sample per video frame: sample i belongs to frame i (align by index, not by the
timestamps, which are on the recorder's clock and do not start at 0 in every clip).

A plain CSV (``time_s,ppg`` with that header, any sample rate) is on the video's clock: its samples
are matched to the video by time, seconds from the start of the video as ``trace`` writes them.

The reference bpm of a window is the spectral peak of the PPG over the same frames (UBFC) or the
same seconds (CSV), found with the same filter and peak picker as the video.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import InputError
from .rppg import BAND_HZ, bandpass, resample_uniform, spectral_bpm

MAX_LENGTH_MISMATCH = 1  # frames; UBFC's MP4 re-encodes often carry one extra frame


@dataclass(frozen=True)
class GroundTruth:
    """PPG waveform (N,), oximeter heart rate (N,) and sample times (N,) from one file.

    ``by_time``: the samples are matched to the video by time (CSV), else sample i is frame i (UBFC).
    """

    path: Path
    ppg: np.ndarray
    hr: np.ndarray
    times: np.ndarray
    by_time: bool = False

    def __len__(self) -> int:
        return len(self.ppg)


def read_ubfc(path: str | Path) -> GroundTruth:
    """Read a UBFC ``ground_truth.txt`` (DATASET_2) or ``gtdump.xmp`` (DATASET_1); InputError names the file."""
    path = Path(path)
    if not path.exists():
        raise InputError("no such ground-truth file", path)
    if path.is_dir():
        raise InputError("is a directory, expected a ground-truth file", path)
    try:
        text = path.read_text(encoding="ascii", errors="strict")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read ground truth as text ({exc})", path) from None
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise InputError("empty ground-truth file", path)
    try:
        if "," in lines[0]:
            rows = np.array([[float(v) for v in ln.split(",")] for ln in lines], np.float64)
            if rows.ndim != 2 or rows.shape[1] < 4:
                raise ValueError("expected rows of time_ms, hr, spo2, ppg")
            return GroundTruth(path, rows[:, 3], rows[:, 1], rows[:, 0] / 1000.0)
        cols = [np.array(ln.split(), np.float64) for ln in lines]
    except ValueError as exc:
        raise InputError(f"not a UBFC ground-truth file ({exc})", path) from None
    if len(cols) != 3:
        raise InputError(f"not a UBFC ground-truth file: expected 3 lines (PPG, HR, time), found {len(cols)}", path)
    n = {len(c) for c in cols}
    if len(n) != 1:
        raise InputError(f"the 3 lines have different lengths ({', '.join(str(len(c)) for c in cols)})", path)
    if len(cols[0]) < 2:
        raise InputError("ground truth has fewer than 2 samples", path)
    if not np.isfinite(cols[0]).all():
        raise InputError("PPG line holds non-numbers (nan/inf)", path)
    return GroundTruth(path, cols[0], cols[1], cols[2])


def read_ground_truth(path: str | Path) -> GroundTruth:
    """A UBFC file (see :func:`read_ubfc`) or a CSV with a ``time_s,ppg`` header; InputError names the file."""
    path = Path(path)
    if path.suffix.lower() != ".csv":
        return read_ubfc(path)
    try:
        text = path.read_text(encoding="utf-8-sig", errors="strict")
    except FileNotFoundError:
        raise InputError("no such ground-truth file", path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read ground truth as text ({exc})", path) from None
    lines = [ln for ln in text.splitlines() if ln.strip()]
    header = [h.strip().lower() for h in lines[0].split(",")] if lines else []
    if "time_s" not in header or "ppg" not in header:
        raise InputError("expected a CSV header naming the columns time_s and ppg", path)
    it, ip = header.index("time_s"), header.index("ppg")
    try:
        rows = np.array([[float(v) for v in (c[it], c[ip])] for c in (ln.split(",") for ln in lines[1:])], np.float64)
    except (ValueError, IndexError):
        raise InputError("rows must hold a number in each of the time_s and ppg columns", path) from None
    if len(rows) < 2:
        raise InputError("ground truth has fewer than 2 samples", path)
    if not np.isfinite(rows).all():
        raise InputError("time_s or ppg holds non-numbers (nan/inf)", path)
    if not (np.diff(rows[:, 0]) > 0).all():
        raise InputError("time_s must increase from row to row", path)
    rate = 1.0 / float(np.median(np.diff(rows[:, 0])))
    if rate <= 2 * BAND_HZ[1]:
        raise InputError(f"PPG sampled at {rate:.3g} Hz; the 0.7-3.5 Hz band needs more than {2 * BAND_HZ[1]:g} Hz",
                         path)
    return GroundTruth(path, rows[:, 1], np.full(len(rows), np.nan), rows[:, 0], by_time=True)


def check_length(gt: GroundTruth, n_frames: int) -> None:
    """Accept a ground truth one sample longer or shorter than the video; otherwise InputError naming it.

    The rule: sample i is frame i; an extra last frame (or sample) has no partner and is not scored.
    Ground truth matched by time has no length rule.
    """
    if gt.by_time:
        return
    diff = len(gt) - n_frames
    if abs(diff) > MAX_LENGTH_MISMATCH:
        raise InputError(
            f"ground truth has {len(gt)} samples but the video has {n_frames} frames "
            f"({diff:+d}); expected one sample per frame (at most {MAX_LENGTH_MISMATCH} off)",
            gt.path,
        )


def window_bpm(gt: GroundTruth, start: int, end: int, fps: float, band: tuple[float, float] = BAND_HZ) -> float | None:
    """Reference bpm of frames [start, end): the band-passed PPG's spectral peak; None with under half of them."""
    seg = gt.ppg[start : min(end, len(gt))]
    if len(seg) < max(8, (end - start) // 2):
        return None
    bpm, _ = spectral_bpm(bandpass(seg - seg.mean(), fps, band), fps, band)
    return bpm


def window_bpm_at(gt: GroundTruth, start_s: float, end_s: float, band: tuple[float, float] = BAND_HZ) -> float | None:
    """Reference bpm of the seconds [start_s, end_s) of a time-matched ground truth: its samples there,
    resampled onto a uniform grid at their median rate; None where they cover under half of the window."""
    inside = (gt.times >= start_s) & (gt.times < end_s)
    if inside.sum() < 8:
        return None
    t, ppg = gt.times[inside], gt.ppg[inside]
    rate = 1.0 / float(np.median(np.diff(t)))
    if t[-1] - t[0] < 0.5 * (end_s - start_s) or rate <= 2 * band[1]:
        return None
    _, grid = resample_uniform(t, ppg[:, None], rate)
    seg = grid[:, 0]
    bpm, _ = spectral_bpm(bandpass(seg - seg.mean(), rate, band), rate, band)
    return bpm
