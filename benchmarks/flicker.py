"""Mask flicker on real face videos, and lag on a moving face, with and without the pipeline's smoothing.

    python benchmarks/flicker.py                       # the shipped default, ../shared/data videos
    python benchmarks/flicker.py --weights softconv --frames 300

Flicker of a probability-map sequence p(t) (working size): mean over t of mean|p(t) - p(t-1)| / mean p(t),
on the UBFC-rPPG clips (still webcam faces, ../shared/data/ubfc_rppg) and evm_face.mp4 (a still face).

Lag: the first frame of each clip is panned across the frame (``--speed`` pixels per frame, then
back), a face moving at a known speed. The mask's horizontal centroid is tracked with and without
smoothing; lag = mean (centroid_unsmoothed - centroid_smoothed) / velocity, in frames (0 = none), and
``err`` = mean |p_smoothed - p_unsmoothed| / mean p on those moving frames.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data"


def clips() -> list[Path]:
    out = sorted((DATA / "ubfc_rppg").glob("subject*/vid.*"))
    evm = DATA / "videos" / "evm_face.mp4"
    return out + ([evm] if evm.exists() else [])


def first_frames(path: Path, n: int) -> list[np.ndarray]:
    from skinmask.media import VideoReader

    reader = VideoReader(path)
    frames = []
    try:
        for f in reader:
            frames.append(f)
            if len(frames) >= n:
                break
    finally:
        reader.close()
    return frames


def probs(model, frames: list[np.ndarray], alpha: float, motion: float | None = None,
          jump: float | None = None) -> np.ndarray:
    from skinmask.pipeline import run_frames
    from skinmask.temporal import JUMP_LEVEL, MOTION_LEVEL, FrameStream

    stream = FrameStream(alpha=alpha, motion_level=motion or MOTION_LEVEL, jump_level=jump or JUMP_LEVEL)
    return np.stack([r.small_prob for r in run_frames(model, iter(frames), 4, stream=stream)])


def flicker(p: np.ndarray) -> float:
    d = np.abs(np.diff(p, axis=0)).mean(axis=(1, 2))
    m = p[1:].mean(axis=(1, 2))
    return float(np.mean(d / np.maximum(m, 1e-6)))


def panned(frame: np.ndarray, speed: float, n: int) -> list[np.ndarray]:
    """The frame shifted right by speed px per frame for n/2 frames, then back (edge pixels replicated)."""
    import cv2

    h, w = frame.shape[:2]
    half = n // 2
    offsets = [speed * i for i in range(half)] + [speed * (half - i) for i in range(n - half)]
    return [cv2.warpAffine(frame, np.float32([[1, 0, dx], [0, 1, 0]]), (w, h), borderMode=cv2.BORDER_REPLICATE)
            for dx in offsets]


def centroid_x(p: np.ndarray) -> np.ndarray:
    xs = np.arange(p.shape[2], dtype=np.float64)
    return (p.sum(axis=1) * xs).sum(axis=1) / np.maximum(p.sum(axis=(1, 2)), 1e-9)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", default=None)
    ap.add_argument("--frames", type=int, default=240, help="frames of each clip")
    ap.add_argument("--speed", type=float, default=4.0, help="pan speed of the moving face, input pixels per frame")
    ap.add_argument("--alpha", type=float, default=None, help="smoothing weight to test (default: the pipeline's)")
    ap.add_argument("--motion", type=float, default=None, help="motion level to test (default: the pipeline's)")
    ap.add_argument("--jump", type=float, default=None, help="jump level to test (default: the pipeline's)")
    args = ap.parse_args()
    from skinmask.inference import load_model
    from skinmask.temporal import SMOOTH_ALPHA

    alpha = SMOOTH_ALPHA if args.alpha is None else args.alpha
    model = load_model(args.weights, device="cpu")
    print(f"weights {model.weights_path}, smoothing alpha {alpha}, motion {args.motion}, jump {args.jump}; flicker = mean|p(t)-p(t-1)| / mean p")
    print("| clip | flicker raw | flicker smoothed | ratio | pan lag (frames) | pan err |")
    print("|---|---|---|---|---|---|")
    rows = []
    for clip in clips():
        frames = first_frames(clip, args.frames)
        raw, smooth = probs(model, frames, 1.0), probs(model, frames, alpha, args.motion, args.jump)
        moving = panned(frames[0], args.speed, 60)
        mraw, msmooth = probs(model, moving, 1.0), probs(model, moving, alpha, args.motion, args.jump)
        scale = mraw.shape[2] / moving[0].shape[1]
        v = np.diff(centroid_x(mraw))  # working px per frame
        lag_px = (centroid_x(mraw) - centroid_x(msmooth))[1:]
        fast = np.abs(v) > 0.25 * args.speed * scale
        lag = float(np.mean(lag_px[fast] / v[fast])) if fast.any() else float("nan")
        err = float(np.abs(msmooth - mraw).mean() / mraw.mean())
        row = (flicker(raw), flicker(smooth), lag, err)
        rows.append(row)
        name = clip.parent.name if clip.name.startswith("vid") else clip.name
        print(f"| {name} | {row[0]:.4f} | {row[1]:.4f} | {row[1] / row[0]:.2f} | {lag:.2f} | {err:.4f} |", flush=True)
    m = np.mean(np.array(rows), axis=0)
    print(f"| mean | {m[0]:.4f} | {m[1]:.4f} | {m[1] / m[0]:.2f} | {m[2]:.2f} | {m[3]:.4f} |")


if __name__ == "__main__":
    sys.exit(main())
