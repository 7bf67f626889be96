"""The one frame pipeline: each FrameResult carries its frame's time, however the frames came."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

import skinmask
from skinmask.pipeline import run_frames

from .conftest import make_frame, write_coded_video

VFR = [i / 15 for i in range(6)] + [0.4 + i / 30 for i in range(6)]


def test_results_carry_container_times_or_index_over_fps(model, tmp_path: Path) -> None:
    video = write_coded_video(tmp_path / "vfr.mkv", VFR)
    results = list(run_frames(model, skinmask.VideoReader(video).timed(), batch_size=3))
    assert [r.index for r in results] == list(range(12))
    assert np.abs(np.array([r.time_s for r in results]) - VFR).max() < 0.002
    frames = [make_frame(16, 16, s) for s in range(3)]
    assert [r.time_s for r in run_frames(model, frames, fps=25.0)] == [0.0, 0.04, 0.08]
    assert all(math.isnan(r.time_s) for r in run_frames(model, frames))  # no times, no rate: unknown


def test_iter_frames_reads_av1(tmp_path: Path) -> None:
    """The public API reads what the OpenCV wheel cannot (AV1, through PyAV)."""
    video = write_coded_video(tmp_path / "a.mkv", 4, "libsvtav1")
    frames = list(skinmask.iter_frames(video))
    assert len(frames) == 4 and frames[0].shape == (48, 64, 3) and frames[0].dtype == np.uint8
    err = [np.abs(frames[2].astype(int) - make_frame(48, 64, seed=k)).mean() for k in range(4)]
    assert int(np.argmin(err)) == 2  # lossy, but frame 2 is the one decoded third
