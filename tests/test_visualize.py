"""visualize: sheets from a model with known weights, frame picking, overlays, and the CLI commands."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from skinmask import grids, visualize
from skinmask.inference import SkinModel
from skinmask.model import build_model
from skinmask.weights import WeightsMeta, save_weights

from .conftest import make_frame, write_coded_video, write_video


def known_model(seed: int = 3) -> SkinModel:
    """A softconv net with seeded, known weights (input: RGB, mean 0.5, std 0.5)."""
    net = build_model("softconv")
    g = np.random.default_rng(seed)
    with torch.no_grad():
        net.conv1.weight.copy_(torch.from_numpy(g.normal(0, 0.6, (32, 3, 3, 3)).astype(np.float32)))
        net.conv1.bias.copy_(torch.from_numpy(g.normal(0, 0.2, 32).astype(np.float32)))
        net.softconv.weight.copy_(torch.from_numpy(g.normal(0, 0.3, (1, 32, 1, 1)).astype(np.float32)))
        net.softconv.bias.fill_(0.1)
    return SkinModel(net=net.eval(), meta=WeightsMeta(), device=torch.device("cpu"))


def tanh_conv(model: SkinModel, frame: np.ndarray) -> np.ndarray:
    """The 32 tanh maps computed by hand in NumPy: zero-padded 3x3 correlation over normalised RGB."""
    x = (frame[..., ::-1].astype(np.float64) / 255.0 - 0.5) / 0.5  # (H, W, 3) RGB
    h, w = x.shape[:2]
    pad = np.pad(x, ((1, 1), (1, 1), (0, 0)))
    wt = model.net.conv1.weight.detach().double().numpy()  # (32, 3, 3, 3)
    out = np.tile(model.net.conv1.bias.detach().double().numpy()[:, None, None], (1, h, w))
    for dy in range(3):
        for dx in range(3):
            out += np.einsum("oc,hwc->ohw", wt[:, :, dy, dx], pad[dy : dy + h, dx : dx + w])
    return np.tanh(out)


@pytest.mark.parametrize("sort", ["index", "weight"])
def test_each_tile_is_tanh_of_its_known_convolution(sort: str) -> None:
    model = known_model()
    tile_w = 48
    frame = make_frame(30, tile_w)
    width = 2 * grids.MARGIN + 8 * tile_w + 7 * grids.GAP
    width = max(width, grids.MIN_WIDTH)
    boxes: dict = {}
    sheet = visualize.activations_sheet(model, frame, sort=sort, width=width, boxes=boxes)
    expected = tanh_conv(model, frame)
    weights = model.net.softconv.weight.detach().numpy().reshape(-1)
    order = np.argsort(-weights, kind="stable") if sort == "weight" else np.arange(32)
    for slot, ch in enumerate(order):
        x, y, w, h = boxes[f"tile:{slot}"]
        tile = sheet[y : y + h, x : x + w].astype(int)
        want = grids.colorize_activation(grids.resize_to(expected[ch].astype(np.float32), w, h)).astype(int)
        assert np.abs(tile - want).max() <= 2, f"slot {slot} is not channel {ch}"
        if slot and sort == "weight":
            assert weights[ch] <= weights[order[slot - 1]]


def test_sheet_width_and_downscaled_large_input() -> None:
    model = known_model()
    big = cv2.resize(make_frame(60, 80), (2000, 1500))
    boxes: dict = {}
    sheet = visualize.activations_sheet(model, big, boxes=boxes)
    assert sheet.shape[1] == grids.DEFAULT_WIDTH
    tw, th = boxes["tile:0"][2:]
    assert abs(th / tw - 0.75) < 0.02
    assert visualize.downscale(big).shape[:2] == (768, 1024)
    assert visualize.downscale(make_frame(30, 40)).shape[:2] == (30, 40)


def test_filters_sheet_rgb_and_ctx(tmp_path: Path) -> None:
    model = known_model()
    sheet = visualize.filters_sheet(model)
    assert sheet.ndim == 3 and sheet.shape[1] > 1200
    torch.manual_seed(0)
    path = save_weights(tmp_path / "ctx.safetensors", build_model("softconv-ctx"), WeightsMeta(arch="softconv-ctx"))
    from skinmask.inference import load_model

    ctx = visualize.filters_sheet(load_model(path, device="cpu"))
    assert ctx.shape[0] > sheet.shape[0]  # the stem's RGB kernels get their own row above conv1
    # a prior net's stem reads RGB + the person prior: its RGB kernels are drawn, and its sheets draw too
    from skinmask.prior import default_prior_spec

    path = save_weights(tmp_path / "prior.safetensors", build_model("softconv-prior"),
                        WeightsMeta(arch="softconv-prior", prior=default_prior_spec()))
    prior_model = load_model(path, device="cpu")
    assert visualize.filters_sheet(prior_model).shape[0] > sheet.shape[0]
    assert visualize.activations_sheet(prior_model, make_frame(40, 48)).ndim == 3


def test_overlay_image_matches_probability() -> None:
    model = known_model()
    frame = make_frame(20, 24)
    out = visualize.overlay_image(model, frame)
    np.testing.assert_array_equal(out, grids.overlay(frame, model.probability_image(frame)))


def top_level_atoms(path: Path) -> list[str]:
    """The types of an MP4 file's top-level boxes, in file order."""
    data, i, atoms = path.read_bytes(), 0, []
    while i + 8 <= len(data):
        size, kind = int.from_bytes(data[i:i + 4], "big"), data[i + 4:i + 8].decode("latin-1")
        if size == 1:
            size = int.from_bytes(data[i + 8:i + 16], "big")
        atoms.append(kind)
        if size < 8:
            break
        i += size
    return atoms


def video_stream_summary(path: Path) -> tuple[str, str, int, int, int]:
    """(codec, pixel format, width, height, frames decoded) of a video's first stream, read by PyAV."""
    import av

    with av.open(str(path)) as c:
        s = c.streams.video[0]
        n = sum(1 for _ in c.decode(s))
        return s.codec_context.name, s.codec_context.pix_fmt, s.width, s.height, n


def test_overlay_video_is_h264_with_the_index_first(tmp_path: Path) -> None:
    src = write_video(tmp_path / "clip.mkv", n=9, size=(33, 21))  # odd sizes are cropped to even
    out = tmp_path / "o" / "clip.overlay.mp4"
    n = visualize.write_overlay_video(known_model(), src, out)
    assert n == 9 and out.is_file() and not list(out.parent.glob(".*"))
    assert video_stream_summary(out) == ("h264", "yuv420p", 32, 20, 9)
    atoms = top_level_atoms(out)
    assert atoms[0] == "ftyp" and atoms.index("moov") < atoms.index("mdat")  # +faststart: plays while loading
    cap = cv2.VideoCapture(str(out))  # and OpenCV reads it back, frame for frame
    frames = 0
    while cap.read()[0]:
        frames += 1
    assert frames == 9 and (cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (32, 20)
    cap.release()


def test_overlay_video_falls_back_to_mp4v_without_libx264(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(visualize, "pyav_encoder_available", lambda codec: False)
    src = write_video(tmp_path / "clip.mkv", n=5)
    out = tmp_path / "clip.overlay.mp4"
    assert visualize.write_overlay_video(known_model(), src, out) == 5
    assert video_stream_summary(out)[0] == "mpeg4" and video_stream_summary(out)[4] == 5


# --- CLI ------------------------------------------------------------------------------------------


@pytest.fixture
def known_weights(tmp_path: Path) -> Path:
    model = known_model()
    return save_weights(tmp_path / "known.safetensors", model.net, model.meta)


def _read(path: Path) -> np.ndarray:
    img = cv2.imread(str(path))
    assert img is not None, path
    return img


def test_cli_filters(run_cli, tmp_path: Path, known_weights: Path) -> None:
    res = run_cli("visualize", "filters", "-w", known_weights, "-o", tmp_path / "f.png", "-q")
    assert res.code == 0, res
    from skinmask.inference import load_model

    np.testing.assert_array_equal(_read(tmp_path / "f.png"), visualize.filters_sheet(load_model(known_weights, "cpu")))


def test_cli_video_frame_picks_that_frame(run_cli, tmp_path: Path, known_weights: Path) -> None:
    src = write_video(tmp_path / "clip.mkv", n=12)  # lossless: every frame differs (moving disc)
    res = run_cli("visualize", "activations", src, "--frame", 7, "-o", tmp_path / "g.png", "-w", known_weights, "-q")
    assert res.code == 0, res
    cap = cv2.VideoCapture(str(src))
    for _ in range(8):
        ok, frame7 = cap.read()
    cap.release()
    from skinmask.inference import load_model

    model = load_model(known_weights, "cpu")
    expected = visualize.activations_sheet(model, frame7, note="clip.mkv, frame 7",
                                           title="Activation maps - clip.mkv, frame 7")
    np.testing.assert_array_equal(_read(tmp_path / "g.png"), expected)
    other = visualize.activations_sheet(model, make_frame(48, 64, seed=6), note="clip.mkv, frame 7",
                                        title="Activation maps - clip.mkv, frame 7")
    assert not np.array_equal(_read(tmp_path / "g.png"), other)


def test_cli_bad_frame_index_is_one_clear_error(run_cli, tmp_path: Path, known_weights: Path) -> None:
    src = write_video(tmp_path / "clip.mkv", n=5)
    res = run_cli("visualize", "activations", src, "--frame", 5, "-o", tmp_path / "g.png", "-w", known_weights)
    assert res.code == 1
    assert "frame 5 does not exist" in res.err and "5 frames" in res.err and "clip.mkv" in res.err
    assert "Traceback" not in res.err and len(res.err.strip().splitlines()) == 1
    assert not (tmp_path / "g.png").exists()
    res = run_cli("visualize", "activations", src, "--frame", -1, "-w", known_weights)
    assert res.code == 2


def test_cli_usage_errors(run_cli, tmp_path: Path, known_weights: Path) -> None:
    img = tmp_path / "a.png"
    cv2.imwrite(str(img), make_frame(20, 30))
    res = run_cli("visualize", "activations", img, "--frame", 3, "-w", known_weights)
    assert res.code == 2 and "for videos" in res.err
    src = write_video(tmp_path / "clip.mkv", n=3)
    res = run_cli("visualize", "activations", src, "--frame", 1, "--every", 2, "-w", known_weights)
    assert res.code == 2
    res = run_cli("visualize", "overlay", src, "-o", tmp_path / "x.avi", "-w", known_weights)
    assert res.code == 2 and ".mp4" in res.err
    res = run_cli("visualize", "overlay", img, "-o", img, "-w", known_weights)
    assert res.code == 1 and "overwrite the input" in res.err


def test_cli_every_writes_one_sheet_per_nth_frame(run_cli, tmp_path: Path, known_weights: Path) -> None:
    src = write_video(tmp_path / "clip.mkv", n=12)
    res = run_cli("visualize", "activations", src, "--every", 5, "-o", tmp_path / "grids", "-w", known_weights,
                  "--sort", "weight", "--width", 800, "-q")
    assert res.code == 0, res
    names = sorted(p.name for p in (tmp_path / "grids").iterdir())
    assert names == ["000000.png", "000005.png", "000010.png"]
    assert _read(tmp_path / "grids" / "000005.png").shape[1] == 800


def test_cli_overlay_image_and_video(run_cli, tmp_path: Path, known_weights: Path) -> None:
    img = tmp_path / "a.png"
    cv2.imwrite(str(img), make_frame(20, 30))
    res = run_cli("visualize", "overlay", img, "-o", tmp_path / "a.overlay.png", "-w", known_weights, "-q")
    assert res.code == 0, res
    assert _read(tmp_path / "a.overlay.png").shape == (20, 30, 3)
    src = write_video(tmp_path / "clip.mkv", n=4)
    res = run_cli("visualize", "overlay", src, "-o", tmp_path / "clip.mp4", "-w", known_weights, "-q")
    assert res.code == 0, res
    assert (tmp_path / "clip.mp4").stat().st_size > 0


def test_predict_grids_and_visualize_share_one_sheet(run_cli, tmp_path: Path, known_weights: Path) -> None:
    img = tmp_path / "in" / "face.png"
    img.parent.mkdir()
    cv2.imwrite(str(img), make_frame(40, 56))
    res = run_cli("predict", img, "-o", tmp_path / "out", "--grids", "--overlay", "-w", known_weights, "-q")
    assert res.code == 0, res
    res = run_cli("visualize", "activations", img, "-o", tmp_path / "v.png", "-w", known_weights, "-q")
    assert res.code == 0, res
    np.testing.assert_array_equal(_read(tmp_path / "out" / "face.grid.png"), _read(tmp_path / "v.png"))
    assert _read(tmp_path / "out" / "face.overlay.png").shape == (40, 56, 3)


def test_predict_overlay_video(run_cli, tmp_path: Path, known_weights: Path) -> None:
    """predict --overlay on an H.264 clip: an H.264 yuv420p .mp4 with every frame and the moov before the mdat."""
    (tmp_path / "in").mkdir()
    src = write_coded_video(tmp_path / "in" / "clip.mp4", 30, "libx264", size=(64, 48))
    res = run_cli("predict", src, "-o", tmp_path / "out", "--overlay", "-w", known_weights, "-q")
    assert res.code == 0, res
    out = tmp_path / "out" / "clip.overlay.mp4"
    assert video_stream_summary(out) == ("h264", "yuv420p", 64, 48, 30)
    atoms = top_level_atoms(out)
    assert atoms.index("moov") < atoms.index("mdat")
    res = run_cli("predict", src, "-o", tmp_path / "out", "--overlay", "-w", known_weights, "-q")
    assert res.code == 1 and "already exists" in res.err


@pytest.mark.parametrize("command", ["filters", "activations", "overlay", "activations-every"])
def test_cli_keeps_existing_outputs_unless_overwrite(run_cli, tmp_path: Path, known_weights: Path,
                                                     command: str) -> None:
    """predict's rule: an existing output is kept (one error line, exit 1) unless --overwrite replaces it."""
    img = tmp_path / "a.png"
    cv2.imwrite(str(img), make_frame(20, 30))
    src = write_video(tmp_path / "clip.mkv", n=3)
    out = tmp_path / ("grids" if command == "activations-every" else "f.png")
    target = out / "000000.png" if command == "activations-every" else out
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(b"earlier output")
    args = {"filters": ["filters"], "activations": ["activations", img], "overlay": ["overlay", img],
            "activations-every": ["activations", src, "--every", 2]}[command]
    res = run_cli("visualize", *args, "-o", out, "-w", known_weights, "-q")
    lines = res.err.strip().splitlines()
    assert res.code == 1 and len(lines) == 1 and str(target) in lines[0], res
    assert "already exists (use --overwrite to replace it)" in lines[0]
    assert target.read_bytes() == b"earlier output"
    res = run_cli("visualize", *args, "-o", out, "-w", known_weights, "-q", "--overwrite")
    assert res.code == 0, res
    assert _read(target).ndim == 3  # replaced by a real sheet
