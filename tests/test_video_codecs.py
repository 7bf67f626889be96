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
    res = run_cli("trace", video, "-w", weights, "-q", "--region", "skin")
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


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_mask_and_overlay_videos_keep_the_input_frame_times(run_cli, tmp_path: Path, weights_file: Path,
                                                             suffix: str) -> None:
    """Masks and overlays of a VFR video are at their frames' times, so they line up with the input in time."""
    video = write_coded_video(tmp_path / f"vfr{suffix}", VFR[135:165])  # 15 fps, then 30 fps
    res = run_cli("predict", video, "-o", tmp_path / "out", "--overlay", "-w", weights_file, "-q")
    assert res.code == 0, res
    source = container_times(video)
    for out in (tmp_path / "out" / "vfr.mkv", tmp_path / "out" / "vfr.overlay.mp4"):
        times = container_times(out)
        assert len(times) == 30 and np.abs(np.array(times) - source).max() < 0.002, out


CODECS = {  # name: (file, encoder, pix_fmt, encoder options)
    "av1": ("clip.mkv", "libsvtav1", "yuv420p", {}),
    "vp9": ("clip.webm", "libvpx-vp9", "yuv420p", {}),
    "hevc": ("clip.mp4", "libx265", "yuv420p", {"x265-params": "log-level=none"}),
    "hevc10": ("clip10.mp4", "libx265", "yuv420p10le", {"x265-params": "log-level=none"}),
}


@pytest.mark.parametrize("name", list(CODECS))
def test_codecs_predict_and_trace(run_cli, tmp_path: Path, weights_file: Path, name: str) -> None:
    """30-frame clips -> 30-frame mask videos (exit 0), and trace times equal the container's."""
    file, encoder, pix_fmt, options = CODECS[name]
    video = write_coded_video(tmp_path / file, 30, encoder, pix_fmt=pix_fmt, options=options)
    res = run_cli("predict", video, "-o", tmp_path / "out", "-w", weights_file, "-q", "--json")
    assert res.code == 0 and res.err == "", res
    record = json.loads(res.out)
    assert (record["frames"], record["complete"], record["width"], record["height"]) == (30, True, 64, 48)
    masks, fps = read_mask_video(Path(record["output"]))
    assert len(masks) == 30 and masks[0].shape == (48, 64) and fps == pytest.approx(30.0)
    times = _trace_times(run_cli, video, weights_file)
    assert len(times) == 30 and np.abs(np.array(times) - container_times(video)).max() < 0.002


@pytest.mark.parametrize("file, encoder", [("phone.mp4", "libx264"), ("phone.mkv", "libsvtav1")])
def test_rotated_video_is_upright(run_cli, tmp_path: Path, weights_file: Path, file: str, encoder: str) -> None:
    """A display matrix (phones record sideways) is applied by either decoder: masks have the shown size."""
    video = write_coded_video(tmp_path / file, 6, encoder, size=(64, 48), rotation=90)
    res = run_cli("predict", video, "-o", tmp_path / "out", "-w", weights_file, "-q", "--json")
    assert res.code == 0, res
    record = json.loads(res.out)
    assert (record["frames"], record["width"], record["height"]) == (6, 48, 64)
    assert read_mask_video(Path(record["output"]))[0][0].shape == (64, 48)


def test_animated_gif(run_cli, tmp_path: Path, weights_file: Path) -> None:
    video = write_coded_video(tmp_path / "anim.gif", [i / 10 for i in range(8)], "gif", pix_fmt="rgb8")
    res = run_cli("predict", video, "-o", tmp_path / "out", "-w", weights_file, "-q", "--json")
    assert res.code == 0, res
    assert json.loads(res.out)["frames"] == 8
    times = _trace_times(run_cli, video, weights_file)
    assert np.abs(np.array(times) - [i / 10 for i in range(8)]).max() < 0.002


def test_undecodable_codec_is_one_line_naming_it(run_cli, tmp_path: Path, weights_file: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Where nothing can decode the stream (here: AV1 with PyAV missing) the error names the file and codec."""
    import sys

    from skinmask import media

    video = write_coded_video(tmp_path / "clip.mkv", 4, "libsvtav1")
    monkeypatch.setitem(sys.modules, "av", None)  # import av -> ImportError
    opencv = media._open_opencv

    def without_av1(path):  # OpenCV wheels before 5.x have no AV1 decoder: be one of them where this one has
        decoder, codec = opencv(path)
        if decoder is not None and decoder.info.codec == "av1":
            decoder.close()
            return None, "av1"
        return decoder, codec

    monkeypatch.setattr(media, "_open_opencv", without_av1)
    res = run_cli("predict", video, "-o", tmp_path / "out", "-w", weights_file, "-q")
    lines = res.err.strip().splitlines()
    assert res.code == 1 and len(lines) == 1, res
    assert "clip.mkv" in lines[0] and "av1" in lines[0] and "pip install av" in lines[0]
    assert not (tmp_path / "out" / "clip.mkv").exists()
