"""Contact-PPG ground truth for rPPG evaluation: the UBFC-rPPG files and the per-window reference bpm.

UBFC-rPPG ships two formats (https://sites.google.com/view/ybenezeth/ubfcrppg):
- DATASET_2 ``ground_truth.txt``: three lines of space-separated numbers, same length: line 1 the
  PPG waveform, line 2 the oximeter heart rate (bpm), line 3 the time of each sample (s).
- DATASET_1 ``gtdump.xmp``: comma-separated rows ``time_ms, heart_rate, spo2, ppg``.

Either way there is one sample per video frame: sample i belongs to frame i (align by index, not by
the timestamps, which do not start at 0 in every clip). The reference bpm of a window is the
spectral peak of the PPG in the same frames, found with the same filter and peak picker as the video.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import InputError
from .rppg import BAND_HZ, bandpass, spectral_bpm

MAX_LENGTH_MISMATCH = 1  # frames; UBFC's MP4 re-encodes often carry one extra frame


@dataclass(frozen=True)
class GroundTruth:
    """PPG waveform (N,), oximeter heart rate (N,) and sample times (N,) from one file."""

    path: Path
    ppg: np.ndarray
    hr: np.ndarray
    times: np.ndarray

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


def check_length(gt: GroundTruth, n_frames: int) -> None:
    """Accept a ground truth one sample longer or shorter than the video; otherwise InputError naming it.

    The rule: sample i is frame i; an extra last frame (or sample) has no partner and is not scored.
    """
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
