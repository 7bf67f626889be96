"""Heart rate on face videos made from the shipped sample: variable frame rate, the face region, no face."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from skinmask.inference import load_model
from skinmask.pulse import PulseOptions, PulseRun
from skinmask.pulsemap import map_summary
from skinmask.trace import REGIONS, TraceOptions
from tests._face_synth import write_cfr, write_vfr


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_variable_frame_rate_keeps_container_times_and_rates(run_cli, tmp_path: Path, suffix: str) -> None:
    # 10 s at 15 fps then 10 s at 30 fps, as a phone records: counting frames gave 110 and 54 bpm here.
    video = tmp_path / f"vfr{suffix}"
    times = write_vfr(video, 72.0, size=160)
    res = run_cli("trace", video, "--json", "--region", "whole")
    assert res.code == 0, res
    got = np.array([json.loads(ln)["time_s"] for ln in res.out.splitlines()])
    assert len(got) == len(times) == 450 and np.abs(got - times).max() < 0.002
    res = run_cli("pulse", video, "--json")
    assert res.code == 0, res
    windows = [json.loads(ln) for ln in res.out.splitlines()[:-1]]
    assert len(windows) == 11 and all(abs(w["bpm"] - 72) < 3 for w in windows), [w["bpm"] for w in windows]
    assert (windows[0]["start_frame"], windows[0]["end_frame"]) == (0, 150)  # 10 s = 150 frames at 15 fps
    assert (windows[-1]["start_frame"], windows[-1]["end_frame"]) == (150, 450)  # and 300 at 30 fps
    assert windows[-1]["end_s"] == pytest.approx(20.0, abs=0.01)


@pytest.fixture(scope="module")
def moving_face(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 s of the astronaut, pulsing at 84 bpm on her face only, shifted and turned a little every frame."""
    return write_cfr(tmp_path_factory.mktemp("face") / "moving.mkv", 84.0, 12.0, motion=True)


def test_face_region_finds_a_pulse_only_the_face_has(moving_face: Path) -> None:
    run = PulseRun(load_model(), moving_face, PulseOptions(), TraceOptions(), regions=REGIONS, pulse_map=True)
    list(run)
    by = run.by_region
    assert run.frames == 360
    for region in ("face-skin", "face"):
        assert len(by[region].windows) == 3 and all(abs(w.bpm - 84) < 2 for w in by[region].windows), region
    face_snr = np.mean([w.snr for w in by["face"].windows])
    whole_snr = np.mean([w.snr for w in by["whole"].windows])
    whole_err = max(abs(w.bpm - 84) for w in by["whole"].windows)
    assert face_snr > whole_snr + 3 and whole_err >= max(abs(w.bpm - 84) for w in by["face"].windows)
    # the map: blocks inside the tracked face carry the pulse, blocks outside do not
    from skinmask.face import face_region

    pm = run.map
    region = face_region(pm.face, pm.frame.shape)
    inside = cv2.resize(region[: pm.shape[0] * pm.block, : pm.shape[1] * pm.block].astype(np.float32),
                        pm.shape[::-1], interpolation=cv2.INTER_AREA) > 0.9
    summary = map_summary(pm.snr_db(), inside)
    assert summary["inside"] > summary["outside"] + 6, summary


def test_no_face_is_a_clear_error_and_skin_still_works(run_cli, tmp_path: Path) -> None:
    from tests.test_pulse import write_pulse_video

    video = write_pulse_video(tmp_path / "hand.mkv", 72.0, seconds=6.0)  # a pulsing skin patch, no face
    res = run_cli("pulse", video)
    assert res.code == 1 and res.out == "" and "Traceback" not in res.err
    assert res.err.strip().splitlines() == [f"error: {video}: no face found in any of the 180 frames; --region skin "
                                            "averages the skin model's pixels without a face"]
    res = run_cli("trace", video, "--region", "face")
    assert res.code == 1 and "no face found" in res.err
    res = run_cli("pulse", video, "--region", "skin", "--json")
    assert res.code == 0, res
    assert json.loads(res.out.splitlines()[-1])["region"] == "skin"


def test_largest_face_by_default_or_the_one_asked_for(run_cli, tmp_path: Path) -> None:
    from tests._face_synth import SAMPLE

    head = cv2.imread(str(SAMPLE))[0:260, 100:330]
    canvas = np.full((240, 440, 3), 128, np.uint8)
    canvas[40:200, 20:180] = cv2.resize(head, (160, 160), interpolation=cv2.INTER_AREA)  # small face, left
    canvas[:, 200:] = cv2.resize(head, (240, 240), interpolation=cv2.INTER_AREA)  # large face, right
    image = tmp_path / "two.png"
    cv2.imwrite(str(image), canvas)

    def area(*extra: str) -> float:
        res = run_cli("trace", image, "--region", "face", "--json", *extra)
        assert res.code == 0, res
        return json.loads(res.out)["skin_fraction"]

    largest, left, right = area(), area("--face", "0"), area("--face", "1")
    assert largest == right and 1.8 < largest / left < 2.8  # the faces' areas differ 2.25x
    res = run_cli("trace", image, "--region", "face", "--face", "2")
    assert res.code == 1 and "no face found" in res.err
