"""Shared fixtures: tiny synthetic images, videos and weights made in tmp_path; ../shared/data when present."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
REPO = Path(__file__).resolve().parents[1]
SAMPLE_IMAGE = REPO / "samples" / "astronaut.jpg"


@pytest.fixture(autouse=True, scope="session")
def _onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The built ONNX graphs go to a cache of this test session (CLI subprocesses inherit it), not the user's."""
    os.environ["SKINMASK_ONNX_CACHE"] = str(tmp_path_factory.mktemp("onnx-cache"))


@pytest.fixture
def shared_data() -> Path:
    """../shared/data next to the checkout; tests using it skip cleanly when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"needs the shared datasets at {SHARED_DATA} (absent on this machine)")
    return SHARED_DATA


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def make_frame(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A smooth BGR test picture with a skin-coloured disc, so masks are not constant."""
    yy, xx = np.mgrid[0:h, 0:w]
    frame = np.empty((h, w, 3), np.uint8)
    frame[..., 0] = (xx * 255 // max(w - 1, 1)).astype(np.uint8)
    frame[..., 1] = (yy * 255 // max(h - 1, 1)).astype(np.uint8)
    frame[..., 2] = ((xx + yy + seed * 7) % 256).astype(np.uint8)
    disc = (yy - h / 2) ** 2 + (xx - w / 2 - seed) ** 2 < (min(h, w) / 3) ** 2
    frame[disc] = (120, 150, 210)  # BGR: a light skin tone
    return frame


@pytest.fixture
def weights_file(tmp_path: Path) -> Path:
    """A seeded random softconv weights file (not the shipped default)."""
    import torch

    from skinmask.model import build_model
    from skinmask.weights import WeightsMeta, save_weights

    torch.manual_seed(0)
    path = tmp_path / "w.safetensors"
    save_weights(path, build_model("softconv"), WeightsMeta(threshold=0.5, info={"test": True}))
    return path


@pytest.fixture
def model(weights_file: Path):
    from skinmask.inference import load_model

    return load_model(weights_file, device="cpu", engine="torch")


def write_video(path: Path, n: int = 12, size: tuple[int, int] = (64, 48), fps: float = 25.0, fourcc: str = "FFV1") -> Path:
    """A short synthetic colour video (lossless FFV1 .mkv by default) with a moving disc."""
    import cv2

    w, h = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (w, h))
    assert writer.isOpened(), f"cannot write test video {path}"
    for i in range(n):
        writer.write(make_frame(h, w, seed=i))
    writer.release()
    return path


def write_coded_video(path: Path, times: list[float] | int, codec: str = "libx264", size: tuple[int, int] = (64, 48),
                      pix_fmt: str = "yuv420p", rotation: int = 0, faststart: bool = False,
                      options: dict[str, str] | None = None) -> Path:
    """A synthetic video encoded by PyAV's FFmpeg: frame i (make_frame seed i) at ``times[i]`` seconds
    (an int n: n frames at 30 fps), ``rotation`` degrees in the display matrix, moov first with ``faststart``."""
    from fractions import Fraction

    import av

    if isinstance(times, int):
        times = [i / 30 for i in range(times)]
    tb = Fraction(1, 90000) if path.suffix in (".mp4", ".mov") else Fraction(1, 1000)
    w, h = size
    with av.open(str(path), "w", options={"movflags": "+faststart"} if faststart else {}) as out:
        stream = out.add_stream(codec, rate=30, options=dict(options or {}))
        stream.width, stream.height, stream.pix_fmt, stream.time_base = w, h, pix_fmt, tb
        if rotation:
            stream.set_display_rotation(rotation)
        for i, t in enumerate(times):
            frame = av.VideoFrame.from_ndarray(make_frame(h, w, seed=i), format="bgr24")
            frame.pts, frame.time_base = round(t / tb), tb
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    return path


def container_times(path: Path) -> list[float]:
    """Presentation times (s, from the stream's start) of a video's packets, read by demuxing alone."""
    import av

    with av.open(str(path)) as c:
        s = c.streams.video[0]
        pts = sorted(p.pts for p in c.demux(s) if p.pts is not None)
        return [float((t - (s.start_time or 0)) * s.time_base) for t in pts]


@pytest.fixture
def video_file(tmp_path: Path) -> Path:
    return write_video(tmp_path / "clip.mkv")


@pytest.fixture(autouse=True)
def _quiet_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "120")
    os.environ.setdefault("OPENCV_LOG_LEVEL", "SILENT")


class CliResult:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    def __repr__(self) -> str:
        return f"CliResult(code={self.code}, err={self.err[-500:]!r})"


@pytest.fixture
def run_cli(capfd: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch):
    """Run `skinmask ARGS...` in-process through main() (the real error mapping), return code/out/err."""
    import sys

    from skinmask.cli.app import main

    def run(*args: object) -> CliResult:
        capfd.readouterr()
        monkeypatch.setattr(sys, "argv", ["skinmask", *map(str, args)])
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        out, err = capfd.readouterr()
        return CliResult(code, out, err)

    return run


def read_mask_video(path: Path) -> tuple[list[np.ndarray], float]:
    """All frames of a single-channel mask video as (H, W) uint8 arrays, and its fps."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    cap.set(cv2.CAP_PROP_CONVERT_RGB, 0)
    fps = cap.get(cv2.CAP_PROP_FPS)
    masks = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        masks.append(f if f.ndim == 2 else f[..., 0])
    cap.release()
    return masks, fps
