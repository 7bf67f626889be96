"""UBFC ground-truth reader, the one-frame length rule, and the reference bpm per window."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from skinmask import groundtruth, rppg
from skinmask.errors import InputError

UBFC = Path(__file__).resolve().parents[2] / "shared" / "data" / "ubfc_rppg"


def write_ubfc2(path: Path, n: int, bpm: float = 84.0, fps: float = 30.0, t0: float = 17.385) -> Path:
    t = np.arange(n) / fps
    ppg = np.sin(2 * np.pi * bpm / 60 * t) + 0.3 * np.sin(2 * np.pi * 2 * bpm / 60 * t)
    hr = np.full(n, round(bpm))
    lines = [" ".join(f"{v: .7e}" for v in row) for row in (ppg, hr, t + t0)]
    path.write_text("\n".join("  " + ln for ln in lines) + "\n")
    return path


def test_reads_dataset2_format(tmp_path: Path) -> None:
    gt = groundtruth.read_ubfc(write_ubfc2(tmp_path / "ground_truth.txt", 300))
    assert len(gt) == 300 and gt.hr[0] == 84 and gt.times[0] == pytest.approx(17.385)
    assert groundtruth.window_bpm(gt, 0, 300, 30.0) == pytest.approx(84.0, abs=0.3)


def test_reads_dataset1_format(tmp_path: Path) -> None:
    t = np.arange(300) / 30.0
    ppg = np.sin(2 * np.pi * 1.5 * t)
    rows = [f"{1000 * ti:.0f},90,98,{p:.5f}" for ti, p in zip(t, ppg)]
    path = tmp_path / "gtdump.xmp"
    path.write_text("\n".join(rows) + "\n")
    gt = groundtruth.read_ubfc(path)
    assert len(gt) == 300 and gt.times[-1] == pytest.approx(t[-1], abs=1e-3)
    assert groundtruth.window_bpm(gt, 0, 300, 30.0) == pytest.approx(90.0, abs=0.3)


def test_length_rule(tmp_path: Path) -> None:
    gt = groundtruth.read_ubfc(write_ubfc2(tmp_path / "gt.txt", 299))
    groundtruth.check_length(gt, 300)  # one extra video frame: accepted, last frame unscored
    groundtruth.check_length(gt, 298)  # one extra sample: accepted
    with pytest.raises(InputError, match=r"gt\.txt.*299 samples.*305 frames"):
        groundtruth.check_length(gt, 305)
    # A window reaching the unpaired last frame is scored on the frames that have a sample.
    assert groundtruth.window_bpm(gt, 0, 300, 30.0) == pytest.approx(84.0, abs=0.5)
    assert groundtruth.window_bpm(gt, 290, 590, 30.0) is None


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "empty"),
        ("1 2 3\n4 5 6\n", "expected 3 lines"),
        ("1 2 3\n4 5\n7 8 9\n", "different lengths"),
        ("1 2 x\n4 5 6\n7 8 9\n", "not a UBFC"),
    ],
)
def test_bad_files(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "ground_truth.txt"
    path.write_text(text)
    with pytest.raises(InputError, match=message) as info:
        groundtruth.read_ubfc(path)
    assert str(path) in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such"):
        groundtruth.read_ubfc(tmp_path / "nope.txt")


@pytest.mark.shared
@pytest.mark.skipif(not UBFC.is_dir(), reason="needs ../shared/data/ubfc_rppg")
def test_real_ubfc_reference_rates() -> None:
    # SOURCE.md: subject12 10-s-window mean 66.1 bpm, subject3 93.8 bpm.
    for subject, mean_bpm in (("subject12", 66.1), ("subject3", 93.8)):
        gt = groundtruth.read_ubfc(UBFC / subject / "ground_truth.txt")
        fps = (len(gt) - 1) / (gt.times[-1] - gt.times[0])
        bpms = [groundtruth.window_bpm(gt, s, e, fps) for s, e in rppg.window_bounds(len(gt), fps)]
        assert np.mean(bpms) == pytest.approx(mean_bpm, abs=0.5)
