"""Pictures of the network as arrays: activation grids (4x8 labelled tiles). Drawing only, no files."""

from __future__ import annotations

import cv2
import numpy as np

from .inference import SkinModel

GRID_ROWS, GRID_COLS = 4, 8
FONT = cv2.FONT_HERSHEY_SIMPLEX


def diverging_lut() -> np.ndarray:
    """256-entry BGR lookup table: blue (-1) -> white (0) -> red (+1)."""
    t = np.linspace(-1.0, 1.0, 256)
    blue = np.array([180, 90, 30], np.float32)  # BGR
    red = np.array([40, 40, 200], np.float32)
    white = np.array([250, 250, 250], np.float32)
    lut = np.where(t[:, None] < 0, white + (blue - white) * (-t[:, None]), white + (red - white) * t[:, None])
    return lut.astype(np.uint8)


_LUT = diverging_lut()


def colorize_activation(act: np.ndarray) -> np.ndarray:
    """A tanh map in -1..1 -> BGR uint8 on the fixed diverging scale."""
    idx = np.clip(np.rint((act + 1.0) * 127.5), 0, 255).astype(np.uint8)
    return _LUT[idx]


def projection_weights(model: SkinModel) -> tuple[np.ndarray, float]:
    """The 32 weights and the bias of the 1x1 projection."""
    w = model.net.softconv.weight.detach().cpu().numpy().reshape(-1)
    b = float(model.net.softconv.bias.detach().cpu().numpy().reshape(-1)[0])
    return w, b


def activation_grid(
    prob: np.ndarray,
    acts: np.ndarray,
    model: SkinModel,
    tile_width: int = 200,
    order: np.ndarray | None = None,
) -> np.ndarray:
    """The 32 activation maps as a 4x8 grid of labelled tiles (index and projection weight), BGR uint8."""
    n, h, w = acts.shape
    weights, _ = projection_weights(model)
    order = np.arange(n) if order is None else np.asarray(order)
    tw = tile_width
    th = max(1, round(h * tw / w))
    label_h, gap = 22, 4
    grid = np.full((GRID_ROWS * (th + label_h + gap) + gap, GRID_COLS * (tw + gap) + gap, 3), 255, np.uint8)
    for slot, ch in enumerate(order):
        r, c = divmod(slot, GRID_COLS)
        y = gap + r * (th + label_h + gap)
        x = gap + c * (tw + gap)
        tile = cv2.resize(colorize_activation(acts[ch]), (tw, th), interpolation=cv2.INTER_AREA)
        grid[y + label_h : y + label_h + th, x : x + tw] = tile
        cv2.putText(grid, f"#{ch}  w={weights[ch]:+.2f}", (x + 2, y + 16), FONT, 0.45, (20, 20, 20), 1, cv2.LINE_AA)
    return grid
