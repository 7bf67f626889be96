"""Sheet drawing on synthetic arrays: layout, tile content, bar order, colour bar, kernels, overlay."""

from __future__ import annotations

import numpy as np
import pytest

from skinmask import grids


def _acts(rng: np.random.Generator, h: int = 30, w: int = 40) -> np.ndarray:
    return np.tanh(rng.normal(0, 1, (32, h, w))).astype(np.float32)


def _overlaps(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    return ax < bx + bw and bx < ax + aw and ay < by + bh and by < ay + ah


@pytest.mark.parametrize("width,size", [(1600, (30, 40)), (900, (90, 30)), (640, (5, 300))])
def test_activation_sheet_layout(rng: np.random.Generator, width: int, size: tuple[int, int]) -> None:
    h, w = size
    frame = rng.integers(0, 256, (h * 3, w * 3, 3), dtype=np.uint8)
    sheet = grids.activation_sheet(rng.random((h * 3, w * 3)).astype(np.float32), _acts(rng, h, w),
                                   rng.normal(0, 0.1, 32), 0.2, frame, width=width, caption=("a", "b"))
    img, boxes = sheet.image, sheet.boxes
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[1] == width
    tiles = [boxes[f"tile:{k}"] for k in range(32)]
    assert len({(bw, bh) for _, _, bw, bh in tiles}) == 1  # all tiles the same size
    tw, th = tiles[0][2:]
    assert abs(th / tw - h / w) < 0.05 or th == 8  # maps keep their aspect (floored at 8 px)
    xs = sorted({x for x, *_ in tiles})
    ys = sorted({y for _, y, *_ in tiles})
    assert len(xs) == grids.GRID_COLS and len(ys) == grids.GRID_ROWS
    for k, (x, y, _, _) in enumerate(tiles):  # row-major slots
        assert (xs.index(x), ys.index(y)) == (k % 8, k // 8)
    parts = tiles + [boxes["input"], boxes["mask"], boxes["overlay"], boxes["colorbar"]]
    for i, a in enumerate(parts):
        x, y, bw, bh = a
        assert x >= grids.MARGIN // 2 and y >= 0 and x + bw <= img.shape[1] and y + bh <= img.shape[0]
        assert not any(_overlaps(a, b) for b in parts[i + 1 :])
    assert boxes["input"][1] < ys[0] < boxes["colorbar"][1]  # input row, then grid, then colour bar


def test_tiles_hold_their_channels_in_the_requested_order(rng: np.random.Generator) -> None:
    tile_w = 40
    width = 2 * grids.MARGIN + 8 * tile_w + 7 * grids.GAP + 400  # wider than the grid: it is centred
    width = 2 * grids.MARGIN + 8 * tile_w + 7 * grids.GAP if width < grids.MIN_WIDTH else width
    acts = _acts(rng, 20, 40)
    weights = rng.normal(0, 0.1, 32)
    order = grids.activation_order(weights, "weight")
    sheet = grids.activation_sheet(np.zeros((20, 40), np.float32), acts, weights, 0.0, order=order, width=width)
    for slot, ch in enumerate(order):
        x, y, w, h = sheet.boxes[f"tile:{slot}"]
        expected = grids.colorize_activation(grids.resize_to(acts[ch], w, h))
        np.testing.assert_array_equal(sheet.image[y : y + h, x : x + w], expected)


def test_activation_order() -> None:
    w = np.array([0.1, -0.3, 0.5, 0.0, 0.1])
    assert grids.activation_order(w).tolist() == [0, 1, 2, 3, 4]
    assert grids.activation_order(w, "weight").tolist() == [2, 0, 4, 3, 1]  # ties keep index order
    with pytest.raises(ValueError):
        grids.activation_order(w, "size")


def test_bar_chart_order_lengths_and_colours(rng: np.random.Generator) -> None:
    weights = rng.normal(0, 0.1, 32)
    weights[5] = 0.0
    chart = grids.weight_bars(weights, bias=-0.05)
    img, boxes = chart.image, chart.boxes
    rows = sorted(range(32), key=lambda ch: boxes[f"bar:{ch}"][1])  # top to bottom
    assert rows == sorted(range(32), key=lambda ch: -weights[ch])
    assert boxes["bias"][1] > boxes[f"bar:{rows[-1]}"][1]
    longest = max(abs(weights))
    full = max(boxes[f"bar:{ch}"][2] for ch in range(32))
    for ch in range(32):
        x, y, w, h = boxes[f"bar:{ch}"]
        assert abs(w - abs(weights[ch]) / longest * full) <= 1.0
        if w >= 2:
            colour = tuple(int(v) for v in img[y + h // 2, x + w // 2])
            assert colour == (grids.POSITIVE if weights[ch] > 0 else grids.NEGATIVE)
    zero = boxes[f"bar:{rows[0]}"][0]
    assert boxes[f"bar:{rows[-1]}"][0] + boxes[f"bar:{rows[-1]}"][2] == zero  # negative bars end at the axis


def test_bias_longer_than_every_weight_is_clipped() -> None:
    chart = grids.weight_bars(np.linspace(-0.1, 0.1, 32), bias=3.0)
    assert chart.boxes["bias"][2] == max(chart.boxes[f"bar:{ch}"][2] for ch in range(32))


def test_colour_bar_runs_blue_white_red() -> None:
    bar = grids.colour_bar(201)
    x0, y = 20, 7
    assert tuple(bar[y, x0]) == grids.NEGATIVE
    assert tuple(bar[y, x0 + 200]) == grids.POSITIVE
    assert bar[y, x0 + 100].min() > 240


def test_colorize_fixed_scale() -> None:
    a = np.array([[-1.0, 0.0, 1.0, 5.0]], np.float32)
    c = grids.colorize_activation(a)
    assert tuple(c[0, 0]) == grids.NEGATIVE and tuple(c[0, 2]) == grids.POSITIVE == tuple(c[0, 3])
    assert c[0, 1].min() > 240


def test_kernel_tile_is_nearest_neighbour_enlargement() -> None:
    k = np.linspace(-1, 1, 27).reshape(3, 3, 3)
    tile = grids.kernel_tile(k, 90, scale=1.0)
    assert tile.shape == (90, 90, 3)
    for r in range(3):
        for c in range(3):
            cell = tile[r * 30 : (r + 1) * 30, c * 30 : (c + 1) * 30].reshape(-1, 3)
            expected = np.clip(np.rint(127.5 + 127.5 * k[:, r, c]), 0, 255)
            assert (cell == expected).all()


def test_filter_sheet_layout_rgb_and_stem(rng: np.random.Generator) -> None:
    conv1 = rng.normal(0, 0.2, (32, 3, 3, 3))
    weights = rng.normal(0, 0.1, 32)
    sheet = grids.filter_sheet(conv1, weights, 0.1, caption=("weights file: x.safetensors",))
    scale = np.abs(conv1).max()
    for i in range(32):
        x, y, w, h = sheet.boxes[f"filter:{i}"]
        np.testing.assert_array_equal(sheet.image[y : y + h, x : x + w], grids.kernel_tile(conv1[i], w, scale))
    bx = sheet.boxes["bars"][0]
    assert all(sheet.boxes[f"filter:{i}"][0] + sheet.boxes[f"filter:{i}"][2] < bx for i in range(32))

    ctx = grids.filter_sheet(rng.normal(0, 0.2, (32, 8, 3, 3)), weights, 0.1, stem0=rng.normal(0, 0.2, (6, 3, 3, 3)))
    assert [f"stem:{i}" in ctx.boxes for i in range(7)] == [True] * 6 + [False]
    assert ctx.boxes["stem:0"][1] < ctx.boxes["filter:0"][1]


def test_overlay_alpha_follows_probability(rng: np.random.Generator) -> None:
    frame = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    prob = np.zeros((20, 30), np.float32)
    prob[:, 15:] = 1.0
    out = grids.overlay(frame, prob)
    np.testing.assert_array_equal(out[:, :15], frame[:, :15])
    a = grids.OVERLAY_ALPHA
    expected = frame[:, 15:] * (1 - a) + np.array(grids.OVERLAY_COLOUR) * a
    assert np.abs(out[:, 15:].astype(float) - expected).max() <= 1.0
    small = grids.overlay(frame, prob[::2, ::2])  # a probability map of another size is resized
    assert small.shape == frame.shape
