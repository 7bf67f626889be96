"""Outputs: unwritable destinations, disk full, inputs never overwritten, concurrent writers."""

import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from .conftest import REPO, make_frame, write_video


def _cli(*args: object, limit_bytes: int | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    def limit() -> None:  # simulate a full disk: writes past limit_bytes fail with EFBIG
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return subprocess.run([sys.executable, "-m", "skinmask", *map(str, args)], capture_output=True, text=True,
                          cwd=REPO, timeout=timeout, preexec_fn=limit if limit_bytes else None)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.name.startswith(".") or ".tmp" in p.name)


def test_output_folder_that_cannot_be_created(run_cli, tmp_path: Path, weights_file: Path) -> None:
    src = tmp_path / "a.png"
    cv2.imwrite(str(src), make_frame(8, 8))
    blocker = tmp_path / "file"
    blocker.write_text("x")
    res = run_cli("predict", src, "-o", blocker / "masks", "-w", weights_file, "-q")
    assert res.code == 1 and "cannot write" in res.err and "Traceback" not in res.err
    assert len(res.err.strip().splitlines()) == 1


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_read_only_output_folder(run_cli, tmp_path: Path, weights_file: Path) -> None:
    src = tmp_path / "a.png"
    cv2.imwrite(str(src), make_frame(8, 8))
    out = tmp_path / "ro"
    out.mkdir(mode=0o500)
    res = run_cli("predict", src, "-o", out, "-w", weights_file, "-q")
    assert res.code == 1 and "cannot write" in res.err


def test_disk_full_image(tmp_path: Path, weights_file: Path) -> None:
    src = tmp_path / "big.png"
    cv2.imwrite(str(src), np.random.default_rng(0).integers(0, 256, (400, 400, 3), dtype=np.uint8))
    out = tmp_path / "out"
    proc = _cli("predict", src, "-o", out, "-w", weights_file, "--threshold", "0.5", "--grids", limit_bytes=20_000)
    assert proc.returncode == 1, proc.stderr
    assert "cannot write" in proc.stderr and "big" in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists() or [p.name for p in out.iterdir() if p.stat().st_size >= 20_000] == []
    assert _leftovers(tmp_path) == []


def test_disk_full_video(tmp_path: Path, weights_file: Path) -> None:
    rng = np.random.default_rng(1)
    src = tmp_path / "noise.mkv"
    writer = cv2.VideoWriter(str(src), cv2.VideoWriter_fourcc(*"FFV1"), 25, (160, 120))
    for _ in range(30):
        writer.write(rng.integers(0, 256, (120, 160, 3), dtype=np.uint8))
    writer.release()
    out = tmp_path / "out"
    proc = _cli("predict", src, "-o", out, "-w", weights_file, limit_bytes=8000)
    # the input itself is below the limit; the soft-mask video of noise is not
    assert proc.returncode == 1, proc.stderr
    assert "noise.mkv" in proc.stderr and "disk full" in proc.stderr and "Traceback" not in proc.stderr
    assert not (out / "noise.mkv").exists()
    assert _leftovers(tmp_path) == []


def test_concurrent_runs_into_one_folder(tmp_path: Path, weights_file: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    for i in range(6):
        cv2.imwrite(str(src / f"p{i}.png"), make_frame(120, 160, i))
    write_video(src / "clip.mkv", n=20, size=(96, 64))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "skinmask", "predict", str(src), "-o", str(out), "-w", str(weights_file),
           "--overwrite", "-q"]
    procs = [subprocess.Popen(cmd, cwd=REPO, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for p in procs:
        assert p.wait(timeout=180) == 0, p.stderr.read()
    for i in range(6):
        mask = cv2.imread(str(out / f"p{i}.png"), cv2.IMREAD_UNCHANGED)
        assert mask is not None and mask.shape == (120, 160)
    cap = cv2.VideoCapture(str(out / "clip.mkv"))
    n = 0
    while cap.read()[0]:
        n += 1
    assert n == 20
    assert _leftovers(out) == []
