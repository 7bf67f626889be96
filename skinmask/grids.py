"""Pictures of the network as arrays: activation sheets, filter sheets, bar charts, colour bars, overlays.

Drawing only (OpenCV + NumPy), no files and no model runs: callers hand in the arrays. Every drawer
returns BGR uint8. The sheets are laid out for reading at 100% zoom: fixed margins, titles, labels in
a 0.5-scale Hershey font (about 11 px cap height), and one convention for signs everywhere: red is
positive, blue is negative (activations on a fixed -1..1 diverging scale, projection weights by sign).

:func:`activation_grid` is the one activation sheet drawer: ``predict --grids`` and
``visualize activations`` both call it, so the two never drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

GRID_ROWS, GRID_COLS = 4, 8
DEFAULT_WIDTH = 1600  # px; sheets are about this wide whatever the input size
MIN_WIDTH = 640

FONT = cv2.FONT_HERSHEY_SIMPLEX
MARGIN = 28
GAP = 10
LABEL_H = 20  # the label strip above a tile
TEXT_SCALE = 0.5
TITLE_SCALE = 0.85

BACKGROUND = (255, 255, 255)
INK = (34, 34, 34)
MUTED = (110, 110, 110)
RULE = (215, 215, 215)
POSITIVE = (43, 57, 192)  # BGR of #C0392B: red, positive weights and activations
NEGATIVE = (178, 113, 33)  # BGR of #2171B2: blue, negative ones
BIAS = (120, 120, 120)
OVERLAY_COLOUR = (60, 220, 0)  # BGR green: no skin tone is near it, so the tint reads at a glance
OVERLAY_ALPHA = 0.6  # tint opacity where the probability is 1


@dataclass
class Sheet:
    """A drawn sheet and where its parts are: name -> (x, y, w, h). Tests and callers use the boxes."""

    image: np.ndarray
    boxes: dict[str, tuple[int, int, int, int]] = field(default_factory=dict)


# --- colours ------------------------------------------------------------------------------------


def diverging_lut() -> np.ndarray:
    """256-entry BGR lookup table: blue (-1) -> white (0) -> red (+1)."""
    t = np.linspace(-1.0, 1.0, 256)[:, None]
    white = np.array([247, 247, 247], np.float32)
    blue = np.array(NEGATIVE, np.float32)
    red = np.array(POSITIVE, np.float32)
    lut = np.where(t < 0, white + (blue - white) * (-t), white + (red - white) * t)
    return np.rint(lut).astype(np.uint8)


_LUT = diverging_lut()


def colorize_activation(act: np.ndarray) -> np.ndarray:
    """A map in -1..1 (H, W) -> BGR uint8 (H, W, 3) on the fixed diverging scale (values outside are clipped)."""
    idx = np.clip(np.rint((np.asarray(act, np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)
    return _LUT[idx]


def sign_colour(value: float) -> tuple[int, int, int]:
    return POSITIVE if value >= 0 else NEGATIVE


# --- text and small parts -------------------------------------------------------------------------


def text_width(text: str, scale: float = TEXT_SCALE, thickness: int = 1) -> int:
    return cv2.getTextSize(text, FONT, scale, thickness)[0][0]


def put_text(
    img: np.ndarray,
    text: str,
    org: tuple[int, int],
    scale: float = TEXT_SCALE,
    colour: tuple[int, int, int] = INK,
    thickness: int = 1,
    align: str = "left",
) -> None:
    """Anti-aliased text with its baseline at org; align 'left', 'right' or 'center' on org's x."""
    x, y = org
    if align != "left":
        w = text_width(text, scale, thickness)
        x -= w if align == "right" else w // 2
    cv2.putText(img, text, (int(x), int(y)), FONT, scale, colour, thickness, cv2.LINE_AA)


def fit_text(text: str, max_width: int, scale: float = TEXT_SCALE) -> str:
    """Shorten text from the left with '...' until it fits max_width (paths keep their file name)."""
    if text_width(text, scale) <= max_width:
        return text
    while len(text) > 4 and text_width("..." + text, scale) > max_width:
        text = text[1:]
    return "..." + text


def resize_to(img: np.ndarray, width: int, height: int) -> np.ndarray:
    """Area-average when shrinking, nearest-neighbour when enlarging (pixels stay honest)."""
    h, w = img.shape[:2]
    if (w, h) == (width, height):
        return img
    interp = cv2.INTER_AREA if width < w or height < h else cv2.INTER_NEAREST
    return cv2.resize(img, (width, height), interpolation=interp)


def colour_bar(width: int, height: int = 14, ticks: tuple[float, ...] = (-1.0, -0.5, 0.0, 0.5, 1.0)) -> np.ndarray:
    """The -1..1 diverging scale as a horizontal bar with tick labels underneath, BGR uint8."""
    bar = _LUT[np.rint(np.linspace(0, 255, width)).astype(np.uint8)]  # (width, 3)
    out = np.full((height + 24, width + 40, 3), BACKGROUND, np.uint8)
    x0 = 20
    out[:height, x0 : x0 + width] = bar[None]
    cv2.rectangle(out, (x0 - 1, 0), (x0 + width, height), MUTED, 1)
    for t in ticks:
        x = x0 + round((t + 1) / 2 * (width - 1))
        cv2.line(out, (x, height), (x, height + 4), MUTED, 1)
        put_text(out, f"{t:+g}" if t else "0", (x, height + 19), 0.45, INK, align="center")
    return out


def overlay(frame: np.ndarray, prob: np.ndarray, colour: tuple[int, int, int] = OVERLAY_COLOUR,
            alpha: float = OVERLAY_ALPHA) -> np.ndarray:
    """The mask tinted over a BGR frame: each pixel moves toward ``colour`` by alpha x probability."""
    h, w = frame.shape[:2]
    if prob.shape != (h, w):
        prob = cv2.resize(prob, (w, h), interpolation=cv2.INTER_LINEAR)
    a = np.clip(prob, 0.0, 1.0).astype(np.float32) * np.float32(alpha)  # (H, W)
    tint = np.empty_like(frame)
    tint[:] = colour
    return cv2.blendLinear(np.ascontiguousarray(frame), tint, 1.0 - a, a)  # per-pixel weights, rounded


def _header(img: np.ndarray, title: str, lines: list[str], y: int, width: int) -> int:
    """Title and grey caption lines from y; returns the y below them."""
    y += 26
    put_text(img, fit_text(title, width - 2 * MARGIN, TITLE_SCALE), (MARGIN, y), TITLE_SCALE, INK, 2)
    for line in lines:
        y += 22
        put_text(img, fit_text(line, width - 2 * MARGIN), (MARGIN, y), TEXT_SCALE, MUTED)
    y += 12
    cv2.line(img, (MARGIN, y), (width - MARGIN, y), RULE, 1)
    return y + GAP


def _tile_label(img: np.ndarray, x: int, y: int, w: int, channel: int, weight: float) -> None:
    """'#12' on the left and 'w=+0.15' (coloured by sign) on the right of a label strip at (x, y)."""
    base = y + LABEL_H - 6
    put_text(img, f"#{channel}", (x + 1, base), TEXT_SCALE, INK)
    put_text(img, f"w={weight:+.3f}", (x + w - 1, base), TEXT_SCALE, sign_colour(weight), align="right")


def _tile_grid_geometry(grid_width: int, aspect: float) -> tuple[int, int]:
    """Tile (w, h) so that 8 tiles and their gaps fill grid_width; aspect = h / w of a tile."""
    tw = max(8, (grid_width - (GRID_COLS - 1) * GAP) // GRID_COLS)
    return tw, max(8, round(tw * aspect))


# --- the activation sheet -------------------------------------------------------------------------


def activation_order(weights: np.ndarray, sort: str = "index") -> np.ndarray:
    """Tile order: filter index, or projection weight from most positive to most negative."""
    if sort == "index":
        return np.arange(len(weights))
    if sort == "weight":
        return np.argsort(-np.asarray(weights), kind="stable")
    raise ValueError(f"sort must be 'index' or 'weight', not {sort!r}")


def activation_sheet(
    prob: np.ndarray,
    acts: np.ndarray,
    weights: np.ndarray,
    bias: float,
    frame: np.ndarray | None = None,
    *,
    order: np.ndarray | None = None,
    width: int = DEFAULT_WIDTH,
    title: str = "Activation maps",
    caption: tuple[str, ...] = (),
) -> Sheet:
    """Input, mask and overlay on top; the 32 tanh maps as a 4x8 grid; a colour bar. Boxes name each part.

    prob (H, W) in 0..1, acts (32, h, w) in -1..1, weights (32,) and bias of the 1x1 projection, frame the
    BGR input (H', W', 3) or None. Tiles keep the maps' aspect ratio; each is labelled with its filter index
    and projection weight, and ``order`` (default 0..31) says which channel goes in which slot.
    """
    n, mh, mw = acts.shape
    if n != GRID_ROWS * GRID_COLS or len(weights) != n:
        raise ValueError(f"expected {GRID_ROWS * GRID_COLS} maps and weights, got {n} maps, {len(weights)} weights")
    width = max(MIN_WIDTH, int(width))
    order = np.arange(n) if order is None else np.asarray(order)
    inner = width - 2 * MARGIN
    aspect = mh / mw
    tw, th = _tile_grid_geometry(inner, aspect)
    grid_w = GRID_COLS * tw + (GRID_COLS - 1) * GAP
    gx = MARGIN + (inner - grid_w) // 2

    # Top row: input | mask | overlay, each at most a third of the width and 420 px tall.
    panels: list[tuple[str, tuple[str, ...], np.ndarray]] = []  # name, labels from longest to shortest, picture
    if frame is not None:
        panels.append(("input", ("input",), frame))
    grey = np.rint(np.clip(prob, 0, 1) * 255).astype(np.uint8)
    panels.append(("mask", ("skin probability (black 0, white 1)", "probability (0 black)", "mask"),
                   cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)))
    if frame is not None:
        panels.append(("overlay", ("mask tinted over the input", "mask over input", "overlay"), overlay(frame, prob)))
    ph_full, pw_full = (frame if frame is not None else prob).shape[:2]
    pw = (inner - 2 * GAP) // 3
    ph = round(pw * ph_full / pw_full)
    if ph > 480:
        ph, pw = 480, max(8, round(480 * pw_full / ph_full))
    row_w = len(panels) * pw + (len(panels) - 1) * GAP

    caption_lines = list(caption)
    header_h = 26 + 22 * len(caption_lines) + 12 + GAP
    height = (MARGIN // 2 + header_h + LABEL_H + ph + 2 * GAP + 24 + GRID_ROWS * (LABEL_H + th) + (GRID_ROWS - 1) * GAP
              + 2 * GAP + 60 + MARGIN // 2)
    img = np.full((height, width, 3), BACKGROUND, np.uint8)
    boxes: dict[str, tuple[int, int, int, int]] = {}
    y = _header(img, title, caption_lines, MARGIN // 2, width)

    x = MARGIN + (inner - row_w) // 2
    for name, labels, picture in panels:
        label = next((t for t in labels if text_width(t) <= pw), labels[-1])
        put_text(img, label, (x, y + LABEL_H - 6), TEXT_SCALE, INK)
        img[y + LABEL_H : y + LABEL_H + ph, x : x + pw] = resize_to(picture, pw, ph)
        boxes[name] = (x, y + LABEL_H, pw, ph)
        x += pw + GAP
    y += LABEL_H + ph + 2 * GAP

    put_text(img, "conv1 -> tanh: the 32 activation maps (label: filter #, projection weight w)", (gx, y + 14),
             TEXT_SCALE, INK)
    y += 24
    for slot, ch in enumerate(order):
        r, c = divmod(slot, GRID_COLS)
        tx = gx + c * (tw + GAP)
        ty = y + r * (LABEL_H + th + GAP)
        _tile_label(img, tx, ty, tw, int(ch), float(weights[ch]))
        img[ty + LABEL_H : ty + LABEL_H + th, tx : tx + tw] = colorize_activation(resize_to(acts[ch], tw, th))
        boxes[f"tile:{slot}"] = (tx, ty + LABEL_H, tw, th)
    y += GRID_ROWS * (LABEL_H + th) + (GRID_ROWS - 1) * GAP + 2 * GAP

    bar = colour_bar(min(400, grid_w // 2))
    legend = f"tanh activation, one scale for all tiles;   mask = sigmoid(sum of w x map + b),  b = {bias:+.3f}"
    bx = gx + grid_w - bar.shape[1] + 20
    img[y : y + bar.shape[0], bx : bx + bar.shape[1]] = bar
    boxes["colorbar"] = (bx + 20, y, bar.shape[1] - 40, 14)
    put_text(img, fit_text(legend, bx - gx - GAP), (gx, y + 12), TEXT_SCALE, MUTED)
    return Sheet(img, boxes)


def activation_grid(
    prob: np.ndarray,
    acts: np.ndarray,
    model,
    frame: np.ndarray | None = None,
    *,
    sort: str = "index",
    width: int = DEFAULT_WIDTH,
    title: str | None = None,
    note: str | None = None,
    boxes: dict | None = None,
) -> np.ndarray:
    """The activation sheet for one frame of a loaded SkinModel, BGR uint8 (the drawer predict and visualize share).

    prob (H, W) and acts (32, h, w) as returned by ``model.probabilities_and_activations``; frame the BGR
    input they came from (shown beside the mask, optional). ``sort`` is 'index' or 'weight'; ``note`` is an
    extra caption line (input name, frame number, sizes). A ``boxes`` dict is filled with the layout.
    """
    weights, bias = projection_weights(model)
    order = activation_order(weights, sort)
    ordering = "ordered by filter index" if sort == "index" else "ordered by projection weight, + to -"
    caption = (f"weights: {weights_label(model)};   tiles {ordering}",) + ((note,) if note else ())
    sheet = activation_sheet(prob, acts, weights, bias, frame, order=order, width=width,
                             title=title or "Activation maps", caption=caption)
    if boxes is not None:
        boxes.update(sheet.boxes)
    return sheet.image


# --- the filter sheet -----------------------------------------------------------------------------


def bar_order(weights: np.ndarray) -> np.ndarray:
    """Bar chart order: most positive weight first, most negative last (ties by index)."""
    return np.argsort(-np.asarray(weights), kind="stable")


def weight_bars(weights: np.ndarray, bias: float, width: int = 420, row_h: int = 18) -> Sheet:
    """Horizontal bar chart of the projection weights sorted by value, plus the bias, BGR uint8.

    Bars grow right (red) for positive and left (blue) for negative weights from a zero axis, all on the
    scale of the largest |weight|; the bias is a grey bar under a rule, clipped (with an arrow) if it is
    longer. Boxes: 'bar:<channel>' and 'bias' are the bars' rectangles.
    """
    weights = np.asarray(weights, np.float64)
    order = bar_order(weights)
    n = len(weights)
    label_w, value_w = 42, 62
    axis_w = width - label_w - value_w * 2
    x_zero = label_w + value_w + axis_w // 2
    half = axis_w // 2 - 2
    scale = float(np.abs(weights).max()) or 1.0
    top = 30
    height = top + (n + 2) * row_h + 16
    img = np.full((height, width, 3), BACKGROUND, np.uint8)
    boxes: dict[str, tuple[int, int, int, int]] = {}
    put_text(img, "1x1 projection weights, sorted", (0, 16), TEXT_SCALE, INK)
    cv2.line(img, (x_zero, top - 4), (x_zero, top + (n + 2) * row_h), RULE, 1)

    def bar(y: int, value: float, name: str, colour: tuple[int, int, int], label: str) -> None:
        length = round(min(abs(value) / scale, 1.0) * half)
        x0, x1 = (x_zero, x_zero + length) if value >= 0 else (x_zero - length, x_zero)
        if length:
            cv2.rectangle(img, (x0, y + 3), (x1 - 1, y + row_h - 4), colour, -1)
        boxes[name] = (x0, y + 3, x1 - x0, row_h - 6)
        put_text(img, label, (label_w - 6, y + row_h - 5), 0.45, INK, align="right")
        text = f"{value:+.3f}"
        if abs(value) > scale:  # clipped: say so
            tip = x1 if value >= 0 else x0
            d = 5 if value >= 0 else -5
            cv2.fillConvexPoly(img, np.array([[tip, y + 2], [tip + d, y + row_h // 2], [tip, y + row_h - 3]]), colour)
        if value >= 0:
            put_text(img, text, (x1 + 6, y + row_h - 5), 0.45, colour)
        else:
            put_text(img, text, (x0 - 6, y + row_h - 5), 0.45, colour, align="right")

    for row, ch in enumerate(order):
        bar(top + row * row_h, float(weights[ch]), f"bar:{int(ch)}", sign_colour(weights[ch]), f"#{int(ch)}")
    y_bias = top + (n + 1) * row_h
    cv2.line(img, (label_w - 30, y_bias - row_h // 2), (width - 10, y_bias - row_h // 2), RULE, 1)
    bar(y_bias, float(bias), "bias", BIAS, "bias")
    return Sheet(img, boxes)


def kernel_tile(kernel: np.ndarray, size: int, scale: float) -> np.ndarray:
    """One (3, k, k) kernel in display BGR order as an RGB picture, enlarged nearest-neighbour to size x size.

    Colour = 127.5 + 127.5 x weight / scale per channel, so mid grey is zero and a colour says which input
    colour the filter responds to (one ``scale`` for all kernels keeps their strengths comparable).
    """
    img = np.clip(np.rint(127.5 + 127.5 * kernel / scale), 0, 255).astype(np.uint8)  # (3, k, k)
    return cv2.resize(np.ascontiguousarray(img.transpose(1, 2, 0)), (size, size), interpolation=cv2.INTER_NEAREST)


def channel_kernels_tile(kernel: np.ndarray, size: int, scale: float) -> np.ndarray:
    """A (C, k, k) kernel over C feature maps: each channel's k x k weights as a small diverging square.

    The C squares are arranged in a near-square grid (8 -> 2x4, 16 -> 4x4) with 1 px grey gaps, inside a
    size x size tile.
    """
    c, k, _ = kernel.shape
    cols = int(np.ceil(np.sqrt(c))) if c > 9 else min(c, 4)
    rows = int(np.ceil(c / cols))
    cell = max(1, (size - (cols - 1)) // cols // k) * k
    tile = np.full((size, size, 3), RULE, np.uint8)
    oy = (size - rows * cell - (rows - 1)) // 2
    ox = (size - cols * cell - (cols - 1)) // 2
    for i in range(c):
        r, cc = divmod(i, cols)
        sq = colorize_activation(kernel[i] / scale)
        sq = cv2.resize(sq, (cell, cell), interpolation=cv2.INTER_NEAREST)
        y, x = oy + r * (cell + 1), ox + cc * (cell + 1)
        tile[y : y + cell, x : x + cell] = sq
    return tile


def filter_sheet(
    conv1: np.ndarray,
    weights: np.ndarray,
    bias: float,
    *,
    stem0: np.ndarray | None = None,
    title: str = "First-layer filters",
    caption: tuple[str, ...] = (),
    tile: int = 108,
) -> Sheet:
    """The 32 conv1 kernels as a 4x8 grid of enlarged tiles labelled with index and projection weight, and the
    projection weights as a sorted bar chart beside it.

    conv1 (32, C, k, k) in display order: for C = 3 the channels are B, G, R (already divided by the input std),
    drawn as colour pictures; for any other C they are feature maps, drawn per channel on the diverging scale.
    stem0 (S, 3, k, k), BGR, is the stem's first (RGB) layer, drawn as a row of colour tiles when given.
    """
    n = conv1.shape[0]
    rgb = conv1.shape[1] == 3
    bars = weight_bars(weights, bias)
    grid_w = GRID_COLS * tile + (GRID_COLS - 1) * GAP
    width = MARGIN * 2 + grid_w + 3 * GAP + bars.image.shape[1]
    caption_lines = list(caption)
    header_h = 26 + 22 * len(caption_lines) + 12 + GAP

    stem_rows = 0
    if stem0 is not None:
        stem_tile = tile * 2 // 3
        per_row = max(1, (grid_w + GAP) // (stem_tile + GAP))
        stem_rows = int(np.ceil(stem0.shape[0] / per_row))
        stem_h = 24 + stem_rows * (LABEL_H + stem_tile + GAP) + GAP
    else:
        stem_h = 0
    grid_h = 24 + GRID_ROWS * (LABEL_H + tile) + (GRID_ROWS - 1) * GAP
    legend_h = 40
    body_h = max(stem_h + grid_h + legend_h, bars.image.shape[0] + 24)
    height = MARGIN // 2 + header_h + body_h + MARGIN
    img = np.full((height, width, 3), BACKGROUND, np.uint8)
    boxes: dict[str, tuple[int, int, int, int]] = {}
    y = _header(img, title, caption_lines, MARGIN // 2, width)
    y_body = y

    if stem0 is not None:
        put_text(img, f"stem layer 1: {stem0.shape[0]} RGB {stem0.shape[2]}x{stem0.shape[3]} kernels "
                 "(what the network sees of colour)", (MARGIN, y + 14), TEXT_SCALE, INK)
        y += 24
        s_scale = float(np.abs(stem0).max()) or 1.0
        for i in range(stem0.shape[0]):
            r, c = divmod(i, per_row)
            tx, ty = MARGIN + c * (stem_tile + GAP), y + r * (LABEL_H + stem_tile + GAP)
            put_text(img, f"s{i}", (tx + 1, ty + LABEL_H - 6), TEXT_SCALE, INK)
            img[ty + LABEL_H : ty + LABEL_H + stem_tile, tx : tx + stem_tile] = kernel_tile(stem0[i], stem_tile, s_scale)
            boxes[f"stem:{i}"] = (tx, ty + LABEL_H, stem_tile, stem_tile)
        y += stem_rows * (LABEL_H + stem_tile + GAP) + GAP

    scale = float(np.abs(conv1).max()) or 1.0
    if rgb:
        head = f"conv1: 32 RGB {conv1.shape[2]}x{conv1.shape[3]} kernels, enlarged (label: filter #, projection weight w)"
    else:
        head = (f"conv1: 32 filters over {conv1.shape[1]} stem feature maps, each tile = its {conv1.shape[1]} "
                f"{conv1.shape[2]}x{conv1.shape[3]} kernels (label: filter #, projection w)")
    put_text(img, fit_text(head, grid_w), (MARGIN, y + 14), TEXT_SCALE, INK)
    y += 24
    for i in range(n):
        r, c = divmod(i, GRID_COLS)
        tx, ty = MARGIN + c * (tile + GAP), y + r * (LABEL_H + tile + GAP)
        _tile_label(img, tx, ty, tile, i, float(weights[i]))
        pic = kernel_tile(conv1[i], tile, scale) if rgb else channel_kernels_tile(conv1[i], tile, scale)
        img[ty + LABEL_H : ty + LABEL_H + tile, tx : tx + tile] = pic
        boxes[f"filter:{i}"] = (tx, ty + LABEL_H, tile, tile)
    y += GRID_ROWS * (LABEL_H + tile) + (GRID_ROWS - 1) * GAP + 14
    if rgb:
        legend = f"colour = the RGB direction a filter responds to; mid grey = 0; one scale for all 32 (max |w| = {scale:.3g})"
    else:
        legend = f"blue -1 .. white 0 .. red +1 times max |w| = {scale:.3g}, one scale for all 32"
    put_text(img, fit_text(legend, grid_w), (MARGIN, y + 10), TEXT_SCALE, MUTED)

    bx = MARGIN + grid_w + 3 * GAP
    bh, bw = bars.image.shape[:2]
    img[y_body : y_body + bh, bx : bx + bw] = bars.image
    for name, (x0, y0, w0, h0) in bars.boxes.items():
        boxes[name] = (x0 + bx, y0 + y_body, w0, h0)
    boxes["bars"] = (bx, y_body, bw, bh)
    return Sheet(img, boxes)


# --- reading the model ----------------------------------------------------------------------------


def projection_weights(model) -> tuple[np.ndarray, float]:
    """The 32 weights and the bias of the 1x1 projection of a SkinModel (or a bare SkinNet)."""
    net = getattr(model, "net", model)
    w = net.softconv.weight.detach().float().cpu().numpy().reshape(-1)
    b = float(net.softconv.bias.detach().float().cpu().numpy().reshape(-1)[0])
    return w, b


def weights_label(model) -> str:
    """'default.safetensors (softconv, provisional)': the weights file name, arch and a provisional flag."""
    path = getattr(model, "weights_path", None)
    meta = getattr(model, "meta", None)
    name = Path(path).name if path is not None else "(in memory)"
    bits = [getattr(model, "net", model).arch]
    if meta is not None and meta.info.get("provisional"):
        bits.append("provisional")
    if meta is not None and meta.scale != 1.0:
        bits.append(f"runs at scale {meta.scale:g}")
    return f"{name} ({', '.join(bits)})"
