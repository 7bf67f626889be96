"""End-to-end speed of `skinmask predict` against naive eager PyTorch and decode-only, on one machine.

    python benchmarks/bench_predict.py                 # 300-frame videos at 480p, 720p, 1080p; RSS 300 vs 3000
    python benchmarks/bench_predict.py --quick         # 100 frames, RSS 100 vs 1000 (a smoke run)
    python benchmarks/bench_predict.py --long-size 1920x1080   # the memory check at 1080p (slower)
    python benchmarks/bench_predict.py --weights softconv-ctx     # another shipped model or file

For each video (generated H.264 at each size with ffmpeg's testsrc2 pattern, cached under
$XDG_CACHE_HOME/skinmask/bench; plus ../shared/data/videos/evm_face.mp4 when present) it measures,
in this order and on the same file:

- decode-only: frames/s of VideoReader alone (the floor any pipeline pays);
- naive eager: the seed's loop, frame by frame: decode -> eager PyTorch (NCHW fp32) -> numpy mask ->
  FFV1 write, over the first --naive-frames frames;
- predict: the real CLI process, `skinmask predict VIDEO -o DIR` (default settings, masks written),
  wall clock from spawn to exit (start-up included) and the pipeline alone (the JSON record's seconds),
  with the process's peak RSS (wait4);
- agreement: max |mask difference| between the onnxruntime and torch engines on the first frames.

Then peak RSS of predict on a short and a long video of one size, and `skinmask --help` time.
Numbers depend on what else the machine runs: the load average is printed before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
EVM = REPO.parent / "shared" / "data" / "videos" / "evm_face.mp4"
SIZES = [(640, 480), (1280, 720), (1920, 1080)]


def cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    d = base / "skinmask" / "bench"
    d.mkdir(parents=True, exist_ok=True)
    return d


def ffmpeg_exe() -> str:
    exe = shutil.which("ffmpeg")
    if exe:
        return exe
    import imageio_ffmpeg  # the test extra

    return imageio_ffmpeg.get_ffmpeg_exe()


def make_video(w: int, h: int, frames: int) -> Path:
    """An H.264 (yuv420p) mp4 of ffmpeg's moving testsrc2 pattern, cached."""
    path = cache_dir() / f"testsrc2_{w}x{h}_{frames}.mp4"
    if not path.exists():
        tmp = path.with_suffix(".tmp.mp4")
        subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
                        "-i", f"testsrc2=size={w}x{h}:rate=30", "-frames:v", str(frames), "-c:v", "libx264",
                        "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p", str(tmp)], check=True)
        tmp.rename(path)
    return path


def video_info(path: Path) -> tuple[int, int, int]:
    from skinmask.media import VideoReader

    r = VideoReader(path)
    info = (r.info.width, r.info.height, r.info.declared_frames)
    r.close()
    return info


def decode_only(path: Path) -> float:
    """frames/s of decoding the whole video."""
    from skinmask.media import VideoReader

    t = time.perf_counter()
    n = sum(1 for _ in VideoReader(path))
    return n / (time.perf_counter() - t)


def naive_eager(path: Path, frames: int, out_dir: Path, weights: str | None = None) -> float:
    """frames/s of the seed's loop: one frame at a time, eager torch NCHW fp32, numpy mask, FFV1 write."""
    import cv2
    import torch

    from skinmask.engines import to_input
    from skinmask.media import VideoReader
    from skinmask.weights import load_weights

    net, meta = load_weights(weights)
    prior = None
    if meta.prior is not None:  # a prior net: the person segmenter on every frame too, as a naive loop would
        from skinmask.prior import PersonPrior

        prior = PersonPrior(meta.prior, threads=1)
    writer = None
    times = []
    reader = VideoReader(path)
    it = iter(reader)
    with torch.inference_mode():
        for i in range(frames + 1):
            t = time.perf_counter()
            try:
                frame = next(it)
            except StopIteration:
                break
            person = None if prior is None else prior.maps(frame[None])
            prob = net(to_input(frame[None], meta.input, torch.device("cpu"), person))[0, 0].numpy()
            mask = np.rint(np.clip(prob, 0.0, 1.0) * 255.0).astype(np.uint8)
            if writer is None:
                writer = cv2.VideoWriter(str(out_dir / "naive.mkv"), cv2.CAP_FFMPEG, cv2.VideoWriter_fourcc(*"FFV1"),
                                         30.0, (mask.shape[1], mask.shape[0]), isColor=False)
            writer.write(mask)
            if i:  # the first frame warms up
                times.append(time.perf_counter() - t)
    reader.close()
    if writer is not None:
        writer.release()
    return 1.0 / statistics.median(times)


# Spawns the measured command from a small process and reports its wall time and rusage. (Spawned from
# this big process directly, a child's ru_maxrss would include this process's own peak: Linux carries
# the old memory map's high-water mark across vfork + exec.)
_LAUNCHER = """
import json, resource, subprocess, sys, time
t = time.perf_counter()
proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
out, err = proc.communicate()
wall = time.perf_counter() - t
r = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"rc": proc.returncode, "wall": wall, "maxrss_kb": r.ru_maxrss, "cpu": r.ru_utime + r.ru_stime,
                  "out": out.decode(), "err": err.decode()}))
"""


def run_predict(path: Path, out_dir: Path, extra: list[str] | None = None) -> dict:
    """Run `skinmask predict` as its own process: wall seconds, CPU seconds, peak RSS (MB), the JSON record."""
    exe = shutil.which("skinmask") or ""
    cmd = [exe] if exe else [sys.executable, "-m", "skinmask"]
    cmd += ["predict", str(path), "-o", str(out_dir), "--overwrite", "--json", "-q", *(extra or [])]
    res = json.loads(subprocess.run([sys.executable, "-c", _LAUNCHER, *cmd], capture_output=True, text=True,
                                    check=True).stdout)
    if res["rc"] != 0:
        raise SystemExit(f"predict failed on {path}: {res['err'].strip()}")
    record = json.loads(res["out"].splitlines()[0])
    return {"wall": res["wall"], "cpu": res["cpu"], "rss_mb": res["maxrss_kb"] / 1024, "record": record}


def agreement(path: Path, weights: str | None = None, frames: int = 8) -> float:
    """Max |mask(onnxruntime) - mask(torch)| over the first frames, in mask units (1 = 1/255)."""
    from skinmask.inference import load_model
    from skinmask.maps import to_mask
    from skinmask.media import VideoReader

    reader = VideoReader(path)
    batch = []
    for f in reader:
        batch.append(f)
        if len(batch) == frames:
            break
    reader.close()
    stack = np.stack(batch)
    fast = to_mask(load_model(weights, "cpu", "onnxruntime").probabilities(stack)).astype(int)
    ref = to_mask(load_model(weights, "cpu", "torch").probabilities(stack)).astype(int)
    return float(np.abs(fast - ref).max())


def help_time(runs: int = 5) -> list[float]:
    exe = shutil.which("skinmask")
    cmd = [exe, "--help"] if exe else [sys.executable, "-m", "skinmask", "--help"]
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - t)
    return times


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    import cv2
    import onnxruntime
    import torch

    return (f"{cpu}, {cores} cores, {platform.system()} {platform.release()}; python {platform.python_version()}, "
            f"torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, opencv {cv2.__version__}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=300, help="frames of each generated video")
    ap.add_argument("--long-frames", type=int, default=3000, help="frames of the long video (memory check)")
    ap.add_argument("--long-size", default="640x480", help="WxH of the short/long memory check")
    ap.add_argument("--naive-frames", type=int, default=12, help="frames timed for naive eager")
    ap.add_argument("--repeat", type=int, default=1, help="predict runs per video (the best is reported)")
    ap.add_argument("--quick", action="store_true", help="100 frames, long video 1000 frames")
    ap.add_argument("--no-evm", action="store_true", help="skip ../shared/data/videos/evm_face.mp4")
    ap.add_argument("--weights", default=None, help="weights file or shipped model name (default: the shipped default)")
    args = ap.parse_args()
    extra = [] if args.weights is None else ["--weights", str(args.weights)]
    if args.weights is not None:  # refuse a bad file before generating videos
        from skinmask.errors import SkinmaskError
        from skinmask.weights import read_weights

        try:
            read_weights(args.weights)
        except SkinmaskError as exc:
            raise SystemExit(f"error: {exc}") from None
    if args.quick:
        args.frames, args.long_frames, args.naive_frames = 100, 1000, 6

    print(f"machine: {machine()}")
    print(f"weights: {args.weights or 'the shipped default'}")
    print(f"load average at start: {load()}")
    print("(predict = the whole `skinmask predict VIDEO -o DIR` process; pipeline = the same minus start-up, "
          "from its JSON record; CPU ms/frame = the process's user+sys time per frame, start-up included; "
          "'fps if the cores were free' = cores / CPU time per frame, an estimate for an idle machine)\n", flush=True)
    videos = [(f"{w}x{h}", make_video(w, h, args.frames)) for w, h in SIZES]
    if EVM.exists() and not args.no_evm:
        videos.append(("evm_face.mp4", EVM))

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    header = ("| video | frames | decode-only fps | naive eager fps | predict fps (process) | pipeline fps "
              "| x naive | / decode-only | CPU ms/frame | fps if the cores were free | peak RSS MB | engine "
              "| max mask diff |")
    rows = [header, "|" + "---|" * (header.count("|") - 1)]
    with tempfile.TemporaryDirectory(prefix="skinmask-bench-") as tmp:
        tmpd = Path(tmp)
        for name, path in videos:
            w, h, n = video_info(path)
            dec = decode_only(path)
            naive = naive_eager(path, args.naive_frames, tmpd, args.weights)
            runs = [run_predict(path, tmpd / "out", extra) for _ in range(max(1, args.repeat))]
            best = min(runs, key=lambda r: r["wall"])
            frames = best["record"]["frames"]
            fps = frames / best["wall"]
            pipe = frames / best["record"]["seconds"]
            agree = agreement(path, args.weights)
            cpu_ms = 1000 * best["cpu"] / frames  # start-up included
            rows.append(f"| {name} ({w}x{h}) | {frames} | {dec:.0f} | {naive:.1f} | {fps:.1f} | {pipe:.1f} | "
                        f"{fps / naive:.1f}x | {fps / dec:.2f} | {cpu_ms:.0f} | {1000 * cores / cpu_ms:.0f} | "
                        f"{best['rss_mb']:.0f} | {best['record']['engine']} | {agree:.0f}/255 |")
            print(rows[-1], flush=True)

        lw, lh = (int(v) for v in args.long_size.lower().split("x"))
        short = run_predict(make_video(lw, lh, args.frames), tmpd / "short", extra)
        long_ = run_predict(make_video(lw, lh, args.long_frames), tmpd / "long", extra)
        helps = help_time()

    print("\n" + "\n".join(rows))
    print(f"\npeak RSS at {lw}x{lh}: {args.frames} frames {short['rss_mb']:.0f} MB, {args.long_frames} frames "
          f"{long_['rss_mb']:.0f} MB (long/short {long_['rss_mb'] / short['rss_mb']:.2f}); long video "
          f"{long_['record']['frames'] / long_['wall']:.1f} fps (process), "
          f"{long_['record']['frames'] / long_['record']['seconds']:.1f} fps (pipeline)")
    print(f"skinmask --help: median {statistics.median(helps):.2f} s, best {min(helps):.2f} s ({len(helps)} runs)")
    print(f"load average at end: {load()}")


if __name__ == "__main__":
    main()
