"""Working-size geometry and map -> mask helpers: the scale the network runs at for a frame, resizing
frames down to it, and working-size probability maps back up to masks at the frame's size.

Pure NumPy/OpenCV, no model: inference, the pipeline, predict's runner, trace and training share one rule here.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

# Weights that work below full resolution never work on more pixels than this (640x360): larger frames run
# at a lower scale than the weights' own, so a 1080p frame costs what a 720p one does. Faces fill more pixels
# in larger frames, and the masks are upsampled to full size either way. Full-resolution weights (scale 1,
# the seed net) are never capped: seeing every pixel is what they are for. None (or --mask-scale in
# trace/pulse) lifts the cap.
MAX_WORKING_PIXELS = 640 * 360
# ...and never on fewer than this (192x192): small images (thumbnails, face crops, 227x227 close-ups) run
# at a higher scale than the weights' own, up to full resolution. The working scale is a speed knob for
# video; on a small image the detail is what is scarce and the speed is free. A 640x480 frame at scale
# 0.4 (49,152 working pixels) is above the floor, so video at 480p and up is unaffected.
MIN_WORKING_PIXELS = 192 * 192


def working_scale(height: int, width: int, scale: float, max_pixels: int | None = MAX_WORKING_PIXELS,
                  min_pixels: int | None = MIN_WORKING_PIXELS) -> float:
    """The scale a (height, width) frame is worked on for weights of the given scale: their own, lowered
    where the frame would exceed ``max_pixels`` working pixels, raised (at most to 1) where it would fall
    under ``min_pixels``. Full-resolution weights (scale 1) always work at 1. None lifts a limit."""
    scale = min(scale, 1.0)
    if scale >= 1.0:
        return 1.0
    pixels = height * width
    if max_pixels and pixels * scale * scale > max_pixels:
        return math.sqrt(max_pixels / pixels)
    if min_pixels and pixels * scale * scale < min_pixels:
        return min(1.0, math.sqrt(min_pixels / pixels))
    return scale


def working_size(height: int, width: int, scale: float) -> tuple[int, int]:
    """(h, w) the network sees for a frame of (height, width) at the given scale."""
    if scale >= 1.0:
        return height, width
    return max(1, round(height * scale)), max(1, round(width * scale))


def resize_frames(frames: np.ndarray, scale: float) -> np.ndarray:
    """Frames (B, H, W, C) resized (area) to the working size at ``scale``; the same array when sizes match."""
    h, w = frames.shape[1:3]
    sh, sw = working_size(h, w, scale)
    if (sh, sw) == (h, w):
        return frames
    return np.stack([cv2.resize(f, (sw, sh), interpolation=cv2.INTER_AREA) for f in frames])


def resize_maps(maps: np.ndarray, size: tuple[int, ...]) -> np.ndarray:
    """(B, h, w) maps resized to ``size``; the same array when sizes match."""
    if maps.shape[1:3] == tuple(size[:2]):
        return maps
    return np.stack([upsample_map(m, size) for m in maps])


def upsample_map(prob: np.ndarray, size: tuple[int, ...]) -> np.ndarray:
    """A working-size map (h, w) resized (bilinear) to ``size`` (H, W); the same array when sizes match."""
    h, w = int(size[0]), int(size[1])
    if prob.shape[:2] == (h, w):
        return prob
    return cv2.resize(prob, (w, h), interpolation=cv2.INTER_LINEAR)


def mask_from_working(prob: np.ndarray, size: tuple[int, ...], threshold: float | None = None) -> np.ndarray:
    """uint8 mask (H, W) from a working-size probability map: round(p x 255) resized (bilinear) to ``size``,
    or 0/255 where that 8-bit value reaches ``threshold`` x 255. Resizing 8-bit values instead of floats
    is 3-4x less memory traffic; the result is within 1/255 of resizing the float map."""
    mask = upsample_map(to_mask(prob), size)
    if threshold is None:
        return mask
    level = math.ceil(threshold * 255.0 - 1e-6)  # p >= threshold, at 8-bit precision
    if level <= 0:
        return np.full(mask.shape, 255, np.uint8)
    return cv2.threshold(mask, level - 1, 255, cv2.THRESH_BINARY)[1]


def to_mask(prob: np.ndarray, threshold: float | None = None) -> np.ndarray:
    """Probability map(s) -> uint8 mask: round(p * 255), or 0/255 where p >= threshold."""
    if prob.dtype == np.float32 and prob.ndim >= 2 and prob.size >= 4096 and prob.flags.c_contiguous:
        # OpenCV, one pass, same result (round half to even, saturating): 20x faster than numpy at 1080p
        flat = prob.reshape(-1, prob.shape[-1])
        if threshold is None:
            mask = cv2.convertScaleAbs(cv2.threshold(flat, 0.0, 0.0, cv2.THRESH_TOZERO)[1], alpha=255.0)
        else:
            mask = cv2.compare(flat, float(threshold), cv2.CMP_GE)
        return mask.reshape(prob.shape)
    if threshold is None:
        return np.rint(np.clip(prob, 0.0, 1.0) * 255.0).astype(np.uint8)
    return np.where(prob >= threshold, np.uint8(255), np.uint8(0))
