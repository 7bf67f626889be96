"""`skinmask predict` end to end through main(): outputs, mirroring, overwrite refusal, exit codes."""

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from skinmask.inference import predict
from skinmask.maps import mask_from_working, to_mask
from skinmask.media import VideoReader
from skinmask.temporal import FrameStream

from .conftest import REPO, SAMPLE_IMAGE, make_frame, read_mask_video, write_video


def _write(path: Path, image: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image)
    return path


@pytest.mark.parametrize(
    "name,image",
    [
        ("rgb.jpg", make_frame(31, 45)),
        ("gray.png", make_frame(20, 21)[..., 1].copy()),
        ("rgba.png", np.dstack([make_frame(10, 13), np.full((10, 13), 200, np.uint8)])),
        ("odd.bmp", make_frame(1, 1)),
        ("wide.png", make_frame(3, 501)),
    ],
)
def test_images_of_every_common_kind(run_cli, tmp_path: Path, weights_file: Path, model, name: str, image) -> None:
    src = _write(tmp_path / "in" / name, image)
    res = run_cli("predict", src, "-o", tmp_path / "out", "-w", weights_file, "-q")
    assert res.code == 0, res
    mask = cv2.imread(str(tmp_path / "out" / (Path(name).stem + ".png")), cv2.IMREAD_UNCHANGED)
    assert mask.ndim == 2 and mask.dtype == np.uint8 and mask.shape == image.shape[:2]
    expected = predict(model, cv2.imread(str(src), cv2.IMREAD_COLOR))
    assert np.array_equal(mask, expected)


def test_folder_tree_is_mirrored_and_inputs_untouched(run_cli, tmp_path: Path, weights_file: Path) -> None:
    src = tmp_path / "photos"
    _write(src / "a.jpg", make_frame(16, 16))
    _write(src / "sub" / "deeper" / "b.png", make_frame(16, 20, 1))
    (src / "notes.txt").write_text("not an image")
    before = {p: p.read_bytes() for p in src.rglob("*") if p.is_file()}
    res = run_cli("predict", src, "-o", tmp_path / "masks", "-w", weights_file, "--threshold", "0.5", "-q")
    assert res.code == 0, res
    outs = sorted(p.relative_to(tmp_path / "masks").as_posix() for p in (tmp_path / "masks").rglob("*.png"))
    assert outs == ["a.png", "sub/deeper/b.png"]
    mask = cv2.imread(str(tmp_path / "masks" / "a.png"), cv2.IMREAD_UNCHANGED)
    assert set(np.unique(mask)) <= {0, 255}
    assert before == {p: p.read_bytes() for p in src.rglob("*") if p.is_file()}


def test_output_folder_inside_input_tree_is_not_read_back(run_cli, tmp_path: Path, weights_file: Path) -> None:
    src = tmp_path / "photos"
    _write(src / "a.jpg", make_frame(16, 16))
    assert run_cli("predict", src, "-o", src / "masks", "-w", weights_file, "-q").code == 0
    res = run_cli("predict", src, "-o", src / "masks", "-w", weights_file, "--overwrite", "-q")
    assert res.code == 0, res
    assert sorted(p.relative_to(src).as_posix() for p in src.rglob("*.png")) == ["masks/a.png"]


def test_globs_and_overwrite_refusal(run_cli, tmp_path: Path, weights_file: Path) -> None:
    for i in range(3):
        _write(tmp_path / "shots" / f"s{i}.jpg", make_frame(12, 12, i))
    res = run_cli("predict", str(tmp_path / "shots" / "*.jpg"), "-o", tmp_path / "o", "-w", weights_file, "-q")
    assert res.code == 0 and len(list((tmp_path / "o").glob("*.png"))) == 3
    stamp = (tmp_path / "o" / "s0.png").stat().st_mtime_ns
    res = run_cli("predict", tmp_path / "shots" / "s0.jpg", "-o", tmp_path / "o", "-w", weights_file)
    assert res.code == 1 and "s0.png: already exists (use --overwrite" in res.err
    assert (tmp_path / "o" / "s0.png").stat().st_mtime_ns == stamp
    res = run_cli("predict", tmp_path / "shots" / "s0.jpg", "-o", tmp_path / "o", "-w", weights_file, "--overwrite")
    assert res.code == 0


def test_output_equal_to_input_is_refused(run_cli, tmp_path: Path, weights_file: Path) -> None:
    src = _write(tmp_path / "a.png", make_frame(8, 8))
    data = src.read_bytes()
    res = run_cli("predict", src, "-o", tmp_path, "-w", weights_file, "--overwrite")
    assert res.code == 1 and "would overwrite the input" in res.err
    assert src.read_bytes() == data


def test_video_round_trip(run_cli, tmp_path: Path, weights_file: Path, model) -> None:
    video = write_video(tmp_path / "clip.mp4", n=9, size=(40, 30), fps=12.5, fourcc="mp4v")
    res = run_cli("predict", video, "-o", tmp_path / "out", "-w", weights_file, "--json", "-q")
    assert res.code == 0, res
    record = json.loads(res.out)
    assert record["kind"] == "video" and record["frames"] == 9 and (record["width"], record["height"]) == (40, 30)
    out = tmp_path / "out" / "clip.mkv"
    masks, fps = read_mask_video(out)
    assert fps == pytest.approx(12.5)
    frames = list(VideoReader(video))
    assert len(masks) == 9
    stream = FrameStream()  # a video's frames are smoothed over time, in order
    for mask, frame in zip(masks, frames):
        assert mask.shape == (30, 40)
        want = mask_from_working(model.working_probabilities(frame[None], stream)[0], frame.shape[:2])
        assert np.abs(mask.astype(int) - want.astype(int)).max() <= 1  # lossless round trip
    assert np.abs(masks[0].astype(int) - predict(model, frames[0]).astype(int)).max() <= 1


def test_video_as_png_sequence_with_grids(run_cli, tmp_path: Path, weights_file: Path) -> None:
    video = write_video(tmp_path / "clip.mkv", n=7)
    res = run_cli("predict", video, "-o", tmp_path / "out", "-w", weights_file, "--video-format", "png",
                  "--grids", "--grid-every", "3", "-q")
    assert res.code == 0, res
    assert len(list((tmp_path / "out" / "clip").glob("*.png"))) == 7
    assert sorted(p.name for p in (tmp_path / "out" / "clip.grids").iterdir()) == ["000000.png", "000003.png", "000006.png"]


def test_one_bad_input_does_not_stop_the_others(run_cli, tmp_path: Path, weights_file: Path) -> None:
    good = _write(tmp_path / "good.png", make_frame(8, 8))
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\x00" * 100)
    res = run_cli("predict", bad, good, tmp_path / "missing.png", "-o", tmp_path / "o", "-w", weights_file)
    assert res.code == 1
    assert (tmp_path / "o" / "good.png").exists() and not (tmp_path / "o" / "bad.png").exists()
    errors = [line for line in res.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 2 and "Traceback" not in res.err
    assert any("bad.jpg" in e for e in errors) and any("missing.png" in e for e in errors)


def test_usage_errors_exit_2(run_cli, tmp_path: Path) -> None:
    assert run_cli("predict", "x.jpg", "--bogus").code == 2
    assert run_cli("predict", "x.jpg", "--threshold", "1.5").code == 2
    res = run_cli("predict", SAMPLE_IMAGE, "-o", tmp_path, "--device", "cuda")
    if res.code != 0:  # a machine with CUDA may succeed
        assert res.code == 2 and "no CUDA device" in res.err


def test_threshold_auto_uses_the_stored_threshold(run_cli, tmp_path: Path, weights_file: Path, model) -> None:
    src = _write(tmp_path / "a.png", make_frame(24, 24))
    assert run_cli("predict", src, "-o", tmp_path / "o", "-w", weights_file, "-t", "auto", "-q").code == 0
    mask = cv2.imread(str(tmp_path / "o" / "a.png"), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(mask, to_mask(model.probability_image(make_frame(24, 24)), model.threshold))


def test_console_script_and_python_m(tmp_path: Path) -> None:
    """The installed console script and `python -m skinmask` run the shipped default on the sample."""
    exe = Path(sys.executable).with_name("skinmask")
    for cmd in ([str(exe)], [sys.executable, "-m", "skinmask"]):
        out = tmp_path / cmd[-1].replace("/", "_")
        proc = subprocess.run([*cmd, "predict", str(SAMPLE_IMAGE), "-o", str(out)], capture_output=True, text=True,
                              cwd=REPO, timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert cv2.imread(str(out / "astronaut.png"), cv2.IMREAD_UNCHANGED).shape == (512, 512)
