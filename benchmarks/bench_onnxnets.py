"""Speed of the shipped MediaPipe networks with their pre- and post-processing, per frame, on CPU.

    python benchmarks/bench_onnxnets.py               # 1 thread, 640x480 frames (the astronaut on a canvas)
    python benchmarks/bench_onnxnets.py --threads 2

Rows: PersonSegmenter (batch 1 and 4, map back at 640x480), FaceDetector, FaceMesh on a detection's ROI,
FaceTracker on a still face (the mesh from the previous landmarks, no detector), face_region. Each number
is the median (and best) milliseconds per frame over --repeat calls after a warm-up. Numbers depend on
what else the machine runs: the load average is printed before and after.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def timed(fn: Callable[[], object], repeat: int, per: int = 1) -> tuple[float, float]:
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times)) * 1000 / per, min(times) * 1000 / per


def main() -> None:
    import cv2

    from skinmask.face import FaceDetector, FaceMesh, FaceTracker, face_region, roi_from_detection
    from skinmask.person import PersonSegmenter

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=50)
    args = ap.parse_args()

    sample = cv2.imread(str(REPO / "samples" / "astronaut.jpg"))
    frame = np.zeros((480, 640, 3), np.uint8)
    frame[:, 64:576] = cv2.resize(sample, (512, 480))
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; threads {args.threads}; 640x480")

    seg = PersonSegmenter(args.threads)
    det = FaceDetector(args.threads)
    mesh = FaceMesh(args.threads)
    tracker = FaceTracker(threads=args.threads)
    (face,) = det(frame)
    roi = roi_from_detection(face)
    tracker(frame)
    points = mesh(frame, roi).points
    four = np.stack([frame] * 4)
    rows = [
        ("PersonSegmenter, batch 1", timed(lambda: seg(frame[None]), args.repeat)),
        ("PersonSegmenter, batch 4", timed(lambda: seg(four), args.repeat, per=4)),
        ("PersonSegmenter, batch 1, map at 256x256", timed(lambda: seg(frame[None], size=(256, 256)), args.repeat)),
        ("FaceDetector", timed(lambda: det(frame), args.repeat)),
        ("FaceMesh on a ROI", timed(lambda: mesh(frame, roi), args.repeat)),
        ("FaceTracker, tracking", timed(lambda: tracker(frame), args.repeat)),
        ("face_region", timed(lambda: face_region(points, frame.shape), args.repeat)),
    ]
    for name, (median, best) in rows:
        print(f"{name:42s} {median:7.2f} ms/frame (best {best:.2f})")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; detector runs of the tracker: "
          f"{tracker.detections}")


if __name__ == "__main__":
    main()
