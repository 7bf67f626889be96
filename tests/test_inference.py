from dataclasses import replace

import numpy as np
import pytest
import torch

from skinmask import inference, maps
from skinmask.engines import to_input
from skinmask.errors import InputError
from skinmask.inference import load_model, predict
from skinmask.weights import InputSpec

from .conftest import make_frame


def test_to_input_follows_the_stored_convention() -> None:
    frame = np.zeros((1, 2, 2, 3), np.uint8)
    frame[..., 0], frame[..., 1], frame[..., 2] = 10, 20, 250  # B, G, R
    rgb = to_input(frame, InputSpec("rgb", (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)), torch.device("cpu"))
    assert rgb.shape == (1, 3, 2, 2)
    assert torch.allclose(rgb[0, :, 0, 0], torch.tensor([250, 20, 10]) / 127.5 - 1)
    bgr = to_input(frame, InputSpec("bgr", (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)), torch.device("cpu"))
    assert torch.allclose(bgr[0, :, 0, 0], torch.tensor([10, 20, 250]) / 255.0)


def test_predict_matches_the_network(model) -> None:
    frame = make_frame(20, 30)
    mask = predict(model, frame)
    assert mask.shape == (20, 30) and mask.dtype == np.uint8
    with torch.no_grad():
        ref = model.net(to_input(frame[None], model.meta.input, torch.device("cpu")))[0, 0].numpy()
    assert np.abs(mask.astype(int) - np.rint(ref * 255).astype(int)).max() <= 1


def test_gray_and_bgra_inputs(model) -> None:
    frame = make_frame(16, 16)
    gray = frame[..., 1].copy()
    assert predict(model, gray).shape == (16, 16)
    bgra = np.dstack([frame, np.full((16, 16), 255, np.uint8)])
    assert np.array_equal(predict(model, bgra), predict(model, frame))
    with pytest.raises(InputError):
        predict(model, frame.astype(np.float32))


@pytest.mark.parametrize("weights", ["fixture", "softconv-ctx", "default"])
def test_tiled_large_image_is_identical(model, weights: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tiles overlap by the receptive field at the working scale: the same map as one pass (scale 1 and 0.4).
    Nets with a context branch (the default) take the working image in one pass instead: the same map too."""
    if weights != "fixture":
        model = load_model(None if weights == "default" else weights, device="cpu")
        assert model.meta.scale < 1
    frame = np.concatenate([make_frame(91, 71, s) for s in range(3)], axis=1)
    whole = model.probabilities(frame[None])[0]
    monkeypatch.setattr(inference, "TILE_PIXELS", 100)
    monkeypatch.setattr(inference, "TILE_SIZE", 32)
    tiled = model.probability_image(frame)
    assert np.abs(whole - tiled).max() < 1e-5


def test_working_size_is_capped_for_large_frames(monkeypatch: pytest.MonkeyPatch) -> None:
    """Frames beyond MAX_WORKING_PIXELS run at a lower scale (a 1080p frame costs what 720p does); the
    probability map still has the frame's size, and lifting the cap restores the weights' own scale."""
    model = load_model(None, device="cpu")
    s = model.meta.scale
    cap = maps.MAX_WORKING_PIXELS
    assert model.working_scale(480, 640) == s  # small frames: the weights' own scale
    big = model.working_scale(1080, 1920)
    assert big < s and abs(1080 * 1920 * big * big - cap) < 1e-6 * cap
    seen: list[tuple[int, ...]] = []
    engine = model._engine()
    run = engine.probabilities
    monkeypatch.setattr(engine, "probabilities", lambda f, *prior: (seen.append(f.shape), run(f, *prior))[1])
    frame = np.tile(make_frame(108, 192), (10, 10, 1))  # 1080 x 1920
    prob = model.probabilities(frame[None])
    assert prob.shape == (1, 1080, 1920)
    assert seen[-1][1] * seen[-1][2] <= cap * 1.01
    model.max_working_pixels = None
    assert model.working_scale(1080, 1920) == s
    seed = load_model("softconv", device="cpu")  # full-resolution weights: never capped
    assert seed.meta.scale == 1.0 and seed.working_scale(1080, 1920) == 1.0


def test_small_images_run_at_a_higher_scale() -> None:
    """Images under MIN_WORKING_PIXELS at the weights' scale run at a higher one (at most 1), so a thumbnail
    or face crop keeps its detail; 480p and larger frames keep the weights' own scale; None lifts the floor."""
    model = load_model(None, device="cpu")
    s, floor = model.meta.scale, maps.MIN_WORKING_PIXELS
    assert s < 1.0 and 480 * 640 * s * s >= floor  # 480p video is above the floor: speed unaffected
    assert model.working_scale(480, 640) == s
    mid = model.working_scale(227, 227)  # a 227x227 close-up: raised to exactly the floor
    assert s < mid < 1.0 and abs(227 * 227 * mid * mid - floor) < 1e-6 * floor
    assert model.working_scale(64, 64) == 1.0  # never above full resolution
    assert maps.working_size(227, 227, mid)[0] * maps.working_size(227, 227, mid)[1] >= floor * 0.99
    image = make_frame(227, 227)
    prob = model.probability_image(image)
    assert prob.shape == (227, 227)
    low = replace(model, min_working_pixels=None)
    assert low.working_scale(227, 227) == s
    assert np.abs(low.probability_image(image) - prob).max() > 0  # the floor really changes what the net sees
    assert load_model("softconv", device="cpu").working_scale(64, 64) == 1.0
    assert maps.working_scale(100, 100, 1.0, None, 10**9) == 1.0
    assert maps.working_scale(1000, 1000, 0.5, None, None) == 0.5