"""Videos as users have them, made in tmp_path by PyAV's FFmpeg: variable frame rate, AV1, VP9, HEVC (8 and
10-bit), rotated phone video, animated GIF, through `predict` and `trace` with frame counts and times checked."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest

from .conftest import container_times, read_mask_video, write_coded_video

VFR = [i / 15 for i in range(150)] + [10 + i / 30 for i in range(300)]  # 10 s at 15 fps, then 10 s at 30 fps


def _trace_times(run_cli, video: Path, weights: Path) -> list[float]:
    res = run_cli("trace", video, "-w", weights, "-q")
    assert res.code == 0, res
    rows = list(csv.DictReader(io.StringIO(res.out)))
    assert [int(r["index"]) for r in rows] == list(range(len(rows)))
    return [float(r["time_s"]) for r in rows]


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_vfr_video_traces_container_times_and_predicts_complete(run_cli, tmp_path: Path, weights_file: Path,
                                                                suffix: str) -> None:
    video = write_coded_video(tmp_path / f"vfr{suffix}", VFR)
    times = _trace_times(run_cli, video, weights_file)
    assert len(times) == 450
    assert np.abs(np.array(times) - container_times(video)).max() < 0.002
    res = run_cli("predict", video, "-o", tmp_path / "out", "-w", weights_file, "-q", "--json")
    assert res.code == 0, res
    record = json.loads(res.out)
    assert record["complete"] is True and record["frames"] == 450
    assert len(read_mask_video(tmp_path / "out" / "vfr.mkv")[0]) == 450
