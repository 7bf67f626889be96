"""Ctrl-C and SIGTERM mid-video: prompt stop, completed outputs kept, the unfinished one removed or kept as partial."""

import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import pytest

from .conftest import REPO, make_frame


@pytest.fixture(scope="module")
def long_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3000 frames of 320x240 MJPEG (cheap to write, seconds of work to predict)."""
    path = tmp_path_factory.mktemp("long") / "long.avi"
    frames = [cv2.imencode(".jpg", make_frame(240, 320, i))[1] for i in range(4)]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (320, 240))
    decoded = [cv2.imdecode(f, cv2.IMREAD_COLOR) for f in frames]
    for i in range(3000):
        writer.write(decoded[i % 4])
    writer.release()
    return path


def _start(src_dir: Path, out: Path, weights: Path, *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "skinmask", "predict", str(src_dir / "a.png"), str(src_dir / "long.avi"),
           "-o", str(out), "-w", str(weights), "--batch-size", "1", "-q", *extra]
    # A runner started in the background by a non-interactive shell ignores SIGINT, and children inherit
    # that (Python then keeps it ignored, as it should); restore the default so Ctrl-C is what is tested.
    return subprocess.Popen(cmd, cwd=REPO, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _wait_for_video_temp(out: Path, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(p.name.startswith(".long.") for p in out.glob(".*")):
            return
        if proc.poll() is not None:
            pytest.fail(f"predict ended before the video started: {proc.stderr.read()}")
        time.sleep(0.02)
    pytest.fail("the video output never started")


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupt_keeps_finished_outputs_only(tmp_path: Path, long_video: Path, weights_file: Path, sig, code) -> None:
    src = long_video.parent
    cv2.imwrite(str(src / "a.png"), make_frame(32, 32))
    out = tmp_path / "out"
    proc = _start(src, out, weights_file)
    _wait_for_video_temp(out, proc)
    proc.send_signal(sig)
    assert proc.wait(timeout=30) == code
    err = proc.stderr.read()
    assert "Traceback" not in err
    assert sorted(p.name for p in out.iterdir()) == ["a.png"]  # no half-written long.mkv, no temp file


def test_keep_partial(tmp_path: Path, long_video: Path, weights_file: Path) -> None:
    src = long_video.parent
    cv2.imwrite(str(src / "a.png"), make_frame(32, 32))
    out = tmp_path / "out"
    proc = _start(src, out, weights_file, "--keep-partial")
    _wait_for_video_temp(out, proc)
    time.sleep(0.5)  # let some frames reach the disk
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 130
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "long.partial.mkv"]
    cap = cv2.VideoCapture(str(out / "long.partial.mkv"))
    assert cap.isOpened() and cap.read()[0]
