"""Decode speed of the two video backends in skinmask.media: OpenCV's FFmpeg and PyAV's, per codec and size.

    python benchmarks/bench_decode.py              # 300 frames of H.264, VP9 and AV1 at 480p, 720p, 1080p
    python benchmarks/bench_decode.py --quick      # 60 frames at 480p and 720p (a smoke run)

Clips are ffmpeg's testsrc2 pattern encoded by imageio-ffmpeg's ffmpeg (H.264 veryfast crf 23, VP9 crf 32,
AV1 SVT preset 10), cached under $XDG_CACHE_HOME/skinmask/bench. Each number is frames/s of
`VideoReader(path, backend=...)` yielding BGR frames (timestamps and all), best of --repeat runs.
Numbers depend on what else the machine runs: the load average is printed before and after.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

CODECS = {  # name: (suffix, ffmpeg encoder arguments)
    "h264": (".mp4", ["-c:v", "libx264", "-preset", "veryfast", "-crf", "23"]),
    "vp9": (".webm", ["-c:v", "libvpx-vp9", "-crf", "32", "-b:v", "0", "-deadline", "realtime", "-cpu-used", "8"]),
    "av1": (".mkv", ["-c:v", "libsvtav1", "-preset", "10", "-crf", "35"]),
}
SIZES = [(640, 480), (1280, 720), (1920, 1080)]


def ffmpeg_exe() -> str:
    exe = shutil.which("ffmpeg")
    if exe:
        return exe
    import imageio_ffmpeg  # the test extra

    return imageio_ffmpeg.get_ffmpeg_exe()


def make_clip(codec: str, w: int, h: int, frames: int) -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "skinmask" / "bench"
    base.mkdir(parents=True, exist_ok=True)
    suffix, args = CODECS[codec]
    path = base / f"testsrc2_{codec}_{w}x{h}_{frames}{suffix}"
    if not path.exists():
        tmp = path.with_name(path.stem + ".tmp" + suffix)
        subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
                        "-i", f"testsrc2=size={w}x{h}:rate=30", "-frames:v", str(frames), *args,
                        "-pix_fmt", "yuv420p", str(tmp)], check=True)
        tmp.rename(path)
    return path


def decode_fps(path: Path, backend: str, repeat: int) -> float | None:
    """Best frames/s over ``repeat`` full decodes; None where this backend cannot decode the clip."""
    from skinmask.errors import InputError
    from skinmask.media import VideoReader

    best = 0.0
    for _ in range(repeat):
        t = time.perf_counter()
        try:
            n = sum(1 for _ in VideoReader(path, backend=backend).timed())
        except InputError:
            return None
        best = max(best, n / (time.perf_counter() - t))
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    sizes = SIZES
    if args.quick:
        args.frames, args.repeat, sizes = 60, 1, SIZES[:2]
    import av
    import cv2

    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}, "
          f"OpenCV {cv2.__version__}, PyAV {av.__version__} (FFmpeg {av.ffmpeg_version_info})")
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    print(f"\n| clip | OpenCV fps | PyAV fps |\n|---|---|---|")
    for w, h in sizes:
        for codec in CODECS:
            path = make_clip(codec, w, h, args.frames)
            cv_fps, av_fps = (decode_fps(path, b, args.repeat) for b in ("opencv", "pyav"))
            show = lambda v: "cannot decode" if v is None else f"{v:.0f}"  # noqa: E731
            print(f"| {codec} {w}x{h} | {show(cv_fps)} | {show(av_fps)} |", flush=True)
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
