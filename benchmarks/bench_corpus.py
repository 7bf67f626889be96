"""Corpus speed: images/s and video frames/s of `skinmask predict`, plain and with `--cluster local:N`.

    python benchmarks/bench_corpus.py                  # the 1,118 SFA face photos + 3 generated videos
    python benchmarks/bench_corpus.py --quick          # 200 photos, 3 short videos (a smoke run)
    python benchmarks/bench_corpus.py --repeat 3       # each measurement 3 times, interleaved

In each round, on the same files:

- floor: read every photo and write it back as a gray PNG, one thread, in this process (cv2.imread ->
  cvtColor -> imwrite): what any tool that reads JPEGs and writes PNG masks pays;
- plain: the real CLI process, `skinmask predict PHOTOS -o DIR -q`, wall clock from spawn to exit
  (start-up included), and its CPU time (user + system, workers included);
- cluster: the same with `--cluster local:N` (N worker processes here, start-up of the cluster included);
- the same two for the videos (`skinmask predict V1 V2 V3 -o DIR`), as frames/s.

The outputs of the plain and cluster runs are compared (PNG bytes, video frames) and the run fails
if they differ. Photos default to ../shared/data/sfa/images (synthetic JPEGs when it is absent);
videos are H.264 clips of ffmpeg's testsrc2 pattern, generated and cached like bench_predict.py's.
Numbers depend on what else the machine runs: the load average is printed with every round.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_predict import load, machine, make_video  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SFA = REPO.parent / "shared" / "data" / "sfa" / "images"


def photos(folder: Path | None, limit: int | None, tmp: Path) -> Path:
    """A folder holding the photos to time (a subset linked in when ``limit`` is set)."""
    if folder is None and SFA.is_dir():
        folder = SFA
    if folder is None:  # no shared data: synthetic 512x768 JPEGs
        folder = tmp / "synthetic"
        folder.mkdir()
        rng = np.random.default_rng(0)
        for i in range(limit or 300):
            img = cv2.GaussianBlur(rng.integers(0, 256, (768, 512, 3), dtype=np.uint8), (0, 0), 3)
            cv2.imwrite(str(folder / f"p{i:04d}.jpg"), img)
        return folder
    if limit is None:
        return folder
    subset = tmp / "photos"
    subset.mkdir()
    for p in sorted(q for q in folder.iterdir() if q.is_file())[:limit]:
        os.symlink(p.resolve(), subset / p.name)
    return subset


def floor(folder: Path, out: Path) -> float:
    """Seconds to read every photo and write it as a gray PNG, one thread."""
    cv2.setNumThreads(1)
    files = sorted(p for p in folder.iterdir() if p.is_file())
    out.mkdir()
    start = time.perf_counter()
    for p in files:
        cv2.imwrite(str(out / (p.stem + ".png")), cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2GRAY))
    return time.perf_counter() - start


def run(args: list[str]) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system, children included) of one CLI process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "skinmask", *args], cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.exit(f"skinmask {' '.join(args)} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def frames_of(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    out = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        out.append(f)
    cap.release()
    return out


def check_same(a: Path, b: Path) -> None:
    """Plain and cluster outputs: the same files, PNG bytes and video frames equal."""
    names = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    if names != sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file()):
        sys.exit(f"plain and cluster runs wrote different files: {a} vs {b}")
    for rel in names:
        if rel.suffix == ".png":
            same = (a / rel).read_bytes() == (b / rel).read_bytes()
        else:
            fa, fb = frames_of(a / rel), frames_of(b / rel)
            same = len(fa) == len(fb) and all(np.array_equal(x, y) for x, y in zip(fa, fb))
        if not same:
            sys.exit(f"plain and cluster outputs differ: {rel}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=Path, help="folder of photos [default: ../shared/data/sfa/images]")
    ap.add_argument("--limit", type=int, help="time only the first N photos")
    ap.add_argument("--videos", type=int, default=3, help="generated videos")
    ap.add_argument("--video-size", default="640x480", help="WxH of the generated videos")
    ap.add_argument("--video-frames", type=int, default=300, help="frames of each generated video")
    ap.add_argument("--workers", type=int, default=2, help="N of --cluster local:N")
    ap.add_argument("--repeat", type=int, default=1, help="rounds (each measures everything once)")
    ap.add_argument("--quick", action="store_true", help="200 photos, 100-frame videos")
    args = ap.parse_args()
    if args.quick:
        args.limit, args.video_frames = args.limit or 200, 100
    w, h = map(int, args.video_size.split("x"))
    videos = [make_video(w + 16 * k, h, args.video_frames) for k in range(args.videos)]
    cluster = ["--cluster", f"local:{args.workers}"]
    print(machine())
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        folder = photos(args.photos, args.limit, tmp)
        n_photos = sum(1 for p in folder.iterdir() if p.is_file())
        n_frames = sum(len(frames_of(v)) for v in videos)
        print(f"{n_photos} photos from {folder}; {len(videos)} videos, {n_frames} frames ({args.video_size}+)")
        print(f"{'round':>5s} {'load':>15s} {'floor s':>8s} {'plain s':>8s} {'x floor':>8s} {'photos/s':>9s} "
              f"{'cpu s':>6s} {'cluster s':>9s} {'photos/s':>9s} {'vid plain fps':>13s} {'vid cluster fps':>15s}")
        for r in range(args.repeat):
            out = tmp / f"round{r}"
            out.mkdir()
            at = load()
            fl = floor(folder, out / "floor")
            plain, cpu = run(["predict", str(folder), "-o", str(out / "plain"), "-q"])
            clus, _ = run(["predict", str(folder), "-o", str(out / "cluster"), "-q", *cluster])
            check_same(out / "plain", out / "cluster")
            vplain = vclus = float("nan")
            if videos:
                vplain = n_frames / run(["predict", *map(str, videos), "-o", str(out / "vplain"), "-q"])[0]
                vclus = n_frames / run(["predict", *map(str, videos), "-o", str(out / "vcluster"), "-q", *cluster])[0]
                check_same(out / "vplain", out / "vcluster")
            print(f"{r:>5d} {at:>15s} {fl:8.2f} {plain:8.2f} {plain / fl:8.2f} {n_photos / plain:9.1f} {cpu:6.1f} "
                  f"{clus:9.2f} {n_photos / clus:9.1f} {vplain:13.1f} {vclus:15.1f}", flush=True)
            shutil.rmtree(out)
        print(f"load after: {load()}")


if __name__ == "__main__":
    main()
