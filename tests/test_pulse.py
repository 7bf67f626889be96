"""pulse / pulse-eval end to end on tiny synthetic face videos whose skin flickers at a known rate."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from skinmask.pulse import PulseOptions, PulseRun, find_clips
from skinmask.trace import TraceOptions

FPS = 30.0
YCRCB = TraceOptions(region="ycrcb")
SKIN_BGR = np.array([120.0, 150.0, 210.0])  # passes the YCrCb rule
PULSE_BGR = np.array([0.53, 0.77, 0.33])  # relative pulse strength per channel (B, G, R)


def write_pulse_video(path: Path, bpm: float, seconds: float = 12.0, seed: int = 0, size=(96, 72)) -> Path:
    """Skin rectangle pulsing at ``bpm`` with noise and lighting drift; a moving blue background that
    flickers strongly at 150 bpm, so averaging the whole frame gives the wrong answer."""
    import cv2

    rng = np.random.default_rng(seed)
    w, h = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FFV1"), FPS, (w, h))
    assert writer.isOpened()
    yy, xx = np.mgrid[0:h, 0:w]
    for i in range(int(seconds * FPS)):
        t = i / FPS
        drift = 1 + 0.04 * t / seconds
        stripes = 0.5 + 0.5 * np.sin((xx + 3 * i) / 5.0)  # moving texture
        bg_flicker = 1 + 0.08 * np.sin(2 * np.pi * 2.5 * t)
        frame = np.empty((h, w, 3))
        frame[..., 0] = (150 + 60 * stripes) * bg_flicker
        frame[..., 1] = (60 + 40 * stripes) * bg_flicker
        frame[..., 2] = 40 * bg_flicker
        skin = (slice(h // 6, h - h // 6), slice(w // 4, w - w // 4))
        frame[skin] = SKIN_BGR * (1 + 0.012 * PULSE_BGR * np.sin(2 * np.pi * bpm / 60 * t))
        frame = frame * drift + rng.normal(0, 2.0, frame.shape)
        writer.write(np.clip(np.rint(frame), 0, 255).astype(np.uint8))
    writer.release()
    return path


def write_gt(path: Path, n: int, bpm: float) -> Path:
    t = np.arange(n) / FPS
    ppg = np.sin(2 * np.pi * bpm / 60 * t)
    path.write_text("\n".join(" ".join(f"{v:.7e}" for v in row) for row in (ppg, np.full(n, bpm), t)) + "\n")
    return path


def write_gt_csv(path: Path, bpm: float, start: float, seconds: float, rate: float = 64.0) -> Path:
    t = start + np.arange(int(seconds * rate)) / rate
    rows = [f"{ti:.5f},{np.sin(2 * np.pi * bpm / 60 * ti):.6f}" for ti in t]
    path.write_text("time_s,ppg\n" + "\n".join(rows) + "\n")
    return path


@pytest.fixture(scope="module")
def clip_72(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_pulse_video(tmp_path_factory.mktemp("pulse") / "vid.mkv", 72.0)


@pytest.mark.parametrize("method", ["pos", "chrom", "green"])
def test_each_method_recovers_the_skin_rate(clip_72: Path, method: str) -> None:
    run = PulseRun(None, clip_72, PulseOptions(method=method, step_s=1.0), YCRCB)
    windows = list(run)
    assert len(windows) == 3 and run.frames == 360
    for w in windows:
        assert abs(w.bpm - 72.0) < 1.0, (method, w)
    assert abs(run.overall_bpm - 72.0) < 1.0


def test_whole_frame_is_fooled_by_the_background(clip_72: Path) -> None:
    run = PulseRun(None, clip_72, PulseOptions(), TraceOptions(region="whole"))
    list(run)
    assert abs(run.overall_bpm - 72.0) > 10  # the 150 bpm background flicker wins


def test_windows_stream_before_the_video_ends(clip_72: Path) -> None:
    run = PulseRun(None, clip_72, PulseOptions(window_s=5, step_s=5), YCRCB)
    it = iter(run)
    first = next(it)
    assert (first.start_frame, first.end_frame) == (0, 150)
    assert run.frames == 150  # nothing past the window's last frame consumed yet
    rest = list(it)
    assert [(w.start_frame, w.end_frame) for w in rest] == [(150, 300)]


def test_smoothing_and_threshold_options_run(clip_72: Path) -> None:
    run = PulseRun(None, clip_72, PulseOptions(), TraceOptions(region="ycrcb", threshold=0.5, smooth=0.5))
    list(run)
    assert abs(run.overall_bpm - 72.0) < 1.0


def test_cli_json_schema_and_stdout(run_cli, clip_72: Path) -> None:
    res = run_cli("pulse", clip_72, "--json", "--mask", "ycrcb", "--step", "2")
    assert res.code == 0, res
    lines = [json.loads(ln) for ln in res.out.splitlines()]
    windows, overall = lines[:-1], lines[-1]
    assert [(w["start_frame"], w["end_frame"]) for w in windows] == [(0, 300), (60, 360)]
    for w in windows:
        assert set(w) == {"start_frame", "end_frame", "start_s", "end_s", "bpm", "snr"}
        assert w["end_s"] == pytest.approx(w["end_frame"] / FPS, abs=1e-3)
    assert overall["overall"] is True and abs(overall["bpm"] - 72) < 1


def test_cli_plain_output_and_plot(run_cli, clip_72: Path, tmp_path: Path) -> None:
    import cv2

    png = tmp_path / "p.png"
    res = run_cli("pulse", clip_72, "--mask", "ycrcb", "--method", "chrom", "--plot", png)
    assert res.code == 0, res
    assert abs(float(res.out.strip()) - 72) < 1  # stdout: only the overall bpm
    assert "bpm" in res.err and "snr" in res.err
    img = cv2.imread(str(png))
    assert img is not None and img.shape[1] == 1000


def test_cli_with_model_weights(run_cli, clip_72: Path, weights_file: Path) -> None:
    res = run_cli("pulse", clip_72, "--weights", weights_file, "--json", "--mask-scale", "0.25", "-q", "-t", "soft",
                  "--region", "skin")
    assert res.code in (0, 1), res  # random weights: any answer, but a well-formed one
    assert json.loads(res.out.splitlines()[-1])["overall"] is True
    assert res.err == ""


def test_cli_gt_scoring_and_length_rule(run_cli, clip_72: Path, tmp_path: Path) -> None:
    gt = write_gt(tmp_path / "ground_truth.txt", 359, 72.0)  # one sample short: accepted
    res = run_cli("pulse", clip_72, "--mask", "ycrcb", "--gt", gt, "--json")
    assert res.code == 0, res
    lines = [json.loads(ln) for ln in res.out.splitlines()]
    assert all(abs(w["gt_bpm"] - 72) < 0.5 and abs(w["error"]) < 1 for w in lines[:-1])
    assert lines[-1]["mae"] < 1 and lines[-1]["n"] == 3
    bad = write_gt(tmp_path / "gt_bad.txt", 300, 72.0)
    res = run_cli("pulse", clip_72, "--mask", "ycrcb", "--gt", bad)
    assert res.code == 1 and "gt_bad.txt" in res.err and "300 samples" in res.err and "Traceback" not in res.err


def test_pulse_eval(run_cli, tmp_path: Path) -> None:
    import cv2

    for k, bpm in ((1, 66.0), (2, 96.0)):
        d = tmp_path / "data" / f"subject{k}"
        d.mkdir(parents=True)
        write_pulse_video(d / "vid.mkv", bpm, seconds=10.5, seed=k)
        if k == 1:
            write_gt(d / "ground_truth.txt", 315, bpm)
        else:  # a plain CSV, matched by time
            write_gt_csv(d / "ground_truth.csv", bpm, 0.0, 10.5)
    assert [c.name for c in find_clips(tmp_path / "data")] == ["subject1", "subject2"]
    plots = tmp_path / "plots"
    res = run_cli("pulse-eval", tmp_path / "data", "--mask", "ycrcb", "--region", "whole", "--json", "--plot", plots)
    assert res.code == 0, res
    rows = [json.loads(ln) for ln in res.out.splitlines()]
    totals = {r["region"]: r for r in rows if r.get("overall")}
    assert totals["ycrcb"]["mae"] < 1 and totals["ycrcb"]["n"] == 2
    assert totals["whole"]["mae"] > 10
    names = sorted(p.name for p in plots.iterdir())
    assert names == ["bland-altman-whole.png", "bland-altman-ycrcb.png", "subject1.png", "subject2.png"]
    assert all(cv2.imread(str(plots / n)) is not None for n in names)
    res = run_cli("pulse-eval", tmp_path / "data", "--region", "ycrcb")
    assert res.out.splitlines()[0] == "region\twindows\tmae\trmse\tr" and "subject2" in res.err


def test_bad_input(run_cli, tmp_path: Path) -> None:
    res = run_cli("pulse", tmp_path / "missing.mp4", "--mask", "ycrcb")
    assert res.code == 1 and "missing.mp4" in res.err and "Traceback" not in res.err
    junk = tmp_path / "junk.mp4"
    junk.write_text("not a video\n")
    res = run_cli("pulse", junk, "--mask", "ycrcb")
    assert res.code == 1 and res.out == ""
    assert res.err.strip().splitlines() == [f"error: {junk}: cannot open as a video (unknown container or codec, or corrupt)"]
    res = run_cli("pulse", junk, "--track", "-1")
    assert res.code == 2 and "--track" in res.err
    short = write_pulse_video(tmp_path / "short.mkv", 72.0, seconds=2.0)
    res = run_cli("pulse", short, "--mask", "ycrcb")
    assert res.code == 1 and "too short" in res.err
    res = run_cli("pulse-eval", tmp_path, "--mask", "ycrcb")
    assert res.code == 1 and "no clips found" in res.err
    res = run_cli("pulse", short, "--mask", "ycrcb", "--method", "ica")
    assert res.code == 2


def test_trace_mask_scale_and_smooth_options(model, clip_72: Path) -> None:
    import itertools

    from skinmask.media import VideoReader
    from skinmask.trace import trace_frames

    frames = list(itertools.islice(iter(VideoReader(clip_72)), 6))
    full = list(trace_frames(model, frames, FPS, TraceOptions(region="skin", threshold=0.5)))
    small = list(trace_frames(model, frames, FPS, TraceOptions(region="skin", threshold=0.5, mask_scale=0.5)))
    smooth = list(trace_frames(model, frames, FPS, TraceOptions(region="skin", smooth=0.9)))
    assert model.meta.scale == 1.0  # the option does not change the caller's model
    assert len(full) == len(small) == len(smooth) == 6
    first = list(trace_frames(model, frames[:1], FPS, TraceOptions(region="skin")))[0]
    assert smooth[0].r == pytest.approx(first.r)  # EMA starts at frame 0
    with pytest.raises(ValueError, match="smooth"):
        list(trace_frames(model, frames, FPS, TraceOptions(region="skin", smooth=1.0)))


def test_cli_track_default_is_the_library_default() -> None:
    from skinmask.cli.pulse import TRACK_DEFAULT
    from skinmask.pulse import PulseOptions
    from skinmask.rppg import TRACK_BPM_PER_S

    assert TRACK_DEFAULT == TRACK_BPM_PER_S == PulseOptions().track


def test_cli_region_and_old_mask_option_agree(run_cli, clip_72: Path) -> None:
    new = run_cli("pulse", clip_72, "--region", "ycrcb", "--json", "-q")
    old = run_cli("pulse", clip_72, "--mask", "ycrcb", "--json", "-q")
    assert new.code == old.code == 0 and new.out == old.out
    assert json.loads(new.out.splitlines()[-1])["region"] == "ycrcb"
    res = run_cli("pulse", clip_72, "--region", "ycrcb", "--mask", "whole")
    assert res.code == 2 and "one region" in res.err


def test_cli_bvp_is_the_pulse_on_a_uniform_grid(run_cli, clip_72: Path, tmp_path: Path) -> None:
    from skinmask import rppg

    out = tmp_path / "sub" / "bvp.csv"
    res = run_cli("pulse", clip_72, "--region", "ycrcb", "--bvp", out, "-q")
    assert res.code == 0, res
    lines = out.read_text().splitlines()
    assert lines[0] == "time_s,bvp"
    t, v = np.array([[float(x) for x in ln.split(",")] for ln in lines[1:]]).T
    assert len(t) == 360 and np.diff(t) == pytest.approx(1 / FPS, abs=2e-6) and t[0] == 0.0
    bpm, snr = rppg.spectral_bpm(v, FPS)
    assert abs(bpm - 72) < 1 and snr > 3
    assert sorted(p.name for p in out.parent.iterdir()) == ["bvp.csv"]  # no temporary left behind


def test_pulse_map_shows_where_the_pulse_is(clip_72: Path, tmp_path: Path) -> None:
    run = PulseRun(None, clip_72, PulseOptions(), YCRCB, pulse_map=True)
    list(run)
    snr = run.map.snr_db()
    bh, bw = snr.shape
    block = run.map.block
    yy, xx = np.mgrid[0:bh, 0:bw]
    h, w = 72, 96  # write_pulse_video's skin rectangle: rows h/6..5h/6, columns w/4..3w/4
    inside = (yy * block >= h // 6) & ((yy + 1) * block <= h - h // 6) & (xx * block >= w // 4) & ((xx + 1) * block <= w - w // 4)
    outside = ((yy + 1) * block <= h // 6) | (yy * block >= h - h // 6) | ((xx + 1) * block <= w // 4) | (xx * block >= w - w // 4)
    assert np.median(snr[inside]) > np.median(snr[outside]) + 6, (snr[inside], snr[outside])
    img = run.map.draw(title="test")
    assert img.shape[0] > 72 and img.shape[1] > 96 and img.dtype == np.uint8


def test_cli_map_png(run_cli, clip_72: Path, tmp_path: Path) -> None:
    import cv2

    png = tmp_path / "map.png"
    res = run_cli("pulse", clip_72, "--region", "ycrcb", "--map", png)
    assert res.code == 0, res
    img = cv2.imread(str(png))
    assert img is not None and img.shape[0] >= 72 and img.shape[1] > 96
    short = write_pulse_video(tmp_path / "short.mkv", 72.0, seconds=5.0)
    res = run_cli("pulse", short, "--region", "ycrcb", "--map", tmp_path / "none.png")
    assert res.code == 0 and "no pulse map" in res.err and not (tmp_path / "none.png").exists()


def test_cli_gt_csv_is_matched_by_time(run_cli, clip_72: Path, tmp_path: Path) -> None:
    # 64 Hz PPG from 2 to 9.5 s into the video: windows it covers at least half of are scored, the rest not.
    gt = write_gt_csv(tmp_path / "ppg.csv", 72.0, 2.0, 7.5)
    res = run_cli("pulse", clip_72, "--region", "ycrcb", "--gt", gt, "--json", "--window", "4", "--step", "2")
    assert res.code == 0, res
    windows = [json.loads(ln) for ln in res.out.splitlines()[:-1]]
    scored = [w for w in windows if w["gt_bpm"] is not None]
    assert [(w["start_s"], w["end_s"]) for w in scored] == [(2.0, 6.0), (4.0, 8.0), (6.0, 10.0)]
    assert all(abs(w["gt_bpm"] - 72) < 2 and abs(w["error"]) < 2.5 for w in scored), scored
    far = write_gt_csv(tmp_path / "later.csv", 72.0, 100.0, 20.0)
    res = run_cli("pulse", clip_72, "--region", "ycrcb", "--gt", far)
    assert res.code == 1 and "later.csv" in res.err and "covers none" in res.err
    bad = tmp_path / "bad.csv"
    bad.write_text("t,value\n0,1\n")
    res = run_cli("pulse", clip_72, "--region", "ycrcb", "--gt", bad)
    assert res.code == 1 and "bad.csv" in res.err and "time_s and ppg" in res.err and "Traceback" not in res.err
