"""Per-video state of the one pipeline: the person prior reused between refreshes, and a motion-adaptive
moving average of the probabilities that cuts mask flicker on still faces without lagging moving ones.

A still webcam face still gives a mask that changes from frame to frame (sensor and compression
noise at the skin's edges), while the pulse it serves is a colour change of about 0.5 %. Averaging the
probabilities over frames removes that noise, but a plain average drags a moving face's mask behind
it. So the weight of the new frame is set per pixel by how much changed there: where the
(working-size) gray image is still and the probability moved by little (noise), the map is averaged
(weight :data:`SMOOTH_ALPHA`); where the image changed by :data:`MOTION_LEVEL` gray levels or more since
the previous frame, or the probability by :data:`JUMP_LEVEL` or more (the net saw something new), the new
map is taken as it is; in between, linearly. The filter restarts when the frame size changes.

Measured with ``benchmarks/flicker.py`` (the session-3 default, 150 frames of each UBFC clip and
evm_face.mp4): flicker 0.0135 -> 0.0077 (0.57x), lag on a face panned 4 px a frame 0.14 frames.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from .prior import PRIOR_EVERY

SMOOTH_ALPHA = 0.2  # weight of the new probability map where the image did not change
MOTION_LEVEL = 12.0  # gray-level change (3x3 box mean) at which a pixel follows the new map fully
JUMP_LEVEL = 0.2  # ... and the change of probability at which it does (a real change, not noise)
# The prior is refreshed early where the frame's 64x48 gray thumbnail differs from that of the prior's frame by this
# many gray levels on average: a cut (32 at those of face_recognition_short_hamilton_clip.mp4), where the old prior
# would gate the new shot by the old one's people. UBFC's webcam clips stay under 8 (subject11 moving its head).
CUT_LEVEL = 16.0
THUMB = (64, 48)


class FrameStream:
    """State carried across the frames of one video (or frame stream) by :func:`skinmask.pipeline.run_frames`.

    ``prior_every``: the person prior runs on one frame in this many (1: every frame). ``alpha``: the
    weight of the new map on still pixels (1 turns the filter off).
    """

    def __init__(self, prior_every: int = PRIOR_EVERY, alpha: float = SMOOTH_ALPHA,
                 motion_level: float = MOTION_LEVEL, jump_level: float = JUMP_LEVEL) -> None:
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        self.prior_every, self.alpha, self.motion_level = max(1, prior_every), alpha, motion_level
        self.jump_level = jump_level
        self.index = 0  # frames seen so far
        self._prior: np.ndarray | None = None
        self._prior_age = 0
        self._prior_thumb: np.ndarray | None = None
        self._gray: np.ndarray | None = None
        self._prob: np.ndarray | None = None

    def priors(self, frames: np.ndarray, compute: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """Priors (B, h, w) or (B, h, w, K) uint8 for working frames (B, h, w, 3): ``compute`` runs on the frames due a
        refresh (every ``prior_every``-th, any frame whose size differs from the last prior's, and any frame that
        differs from the prior's own frame by :data:`CUT_LEVEL` gray levels on average: a cut, or a fast pan)."""
        out: np.ndarray | None = None
        for k, frame in enumerate(frames):
            thumb = cv2.cvtColor(cv2.resize(frame, THUMB, interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2GRAY)
            stale = (self._prior is None or self._prior.shape[:2] != frame.shape[:2]
                     or self._prior_age >= self.prior_every
                     or float(cv2.absdiff(thumb, self._prior_thumb).mean()) >= CUT_LEVEL)
            if stale:
                self._prior, self._prior_age, self._prior_thumb = compute(frame[None])[0], 0, thumb
            if out is None:
                out = np.empty((len(frames), *self._prior.shape), np.uint8)
            out[k] = self._prior
            self._prior_age += 1
        return out if out is not None else np.empty(frames.shape[:3], np.uint8)

    def smooth(self, frames: np.ndarray, probs: np.ndarray) -> np.ndarray:
        """The motion-adaptive average of the maps (B, h, w) float32 of working frames (B, h, w, 3), in order."""
        if self.alpha >= 1.0:
            self.index += len(frames)
            return probs
        out = np.empty_like(probs)
        for k, (frame, prob) in enumerate(zip(frames, probs)):
            gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY).astype(np.float32)
            if self._prob is None or self._prob.shape != prob.shape:
                out[k] = prob
            else:
                change = cv2.blur(cv2.absdiff(gray, self._gray), (3, 3))  # (h, w) gray levels
                follow = np.maximum(change * (1.0 / self.motion_level), np.abs(prob - self._prob) * (1.0 / self.jump_level))
                a = self.alpha + (1.0 - self.alpha) * np.minimum(follow, 1.0)
                out[k] = self._prob + a * (prob - self._prob)
            self._gray, self._prob = gray, out[k].copy()
        self.index += len(frames)
        return out
