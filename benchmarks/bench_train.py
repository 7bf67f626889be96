"""Training speed with and without the heap tuning of `skinmask.heap.reuse_freed_memory`.

    python benchmarks/bench_train.py                  # 150 steps of the default's recipe on FASSEG, twice
    python benchmarks/bench_train.py --steps 300 --data ../shared/data/sfa

Each run is a fresh `skinmask train` process (the shipped default's options: softconv-ms-prior, batch 16,
128-pixel crops, one thread) on the same data and seed: once with SKINMASK_MALLOC_TUNING=0 (glibc's
defaults: 32 MiB blocks mapped and unmapped every step), once as shipped. It prints wall, user and system
seconds per run, the speed-up, and whether the two weight files hold bit-identical tensors (they must:
where memory comes from changes no arithmetic). Needs ../shared/data (or --data / --negatives).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data"
RECIPE = ["--arch", "softconv-ms-prior", "--scale", "0.4", "--batch", "16", "--crop", "128", "--dice", "1",
          "--color-aug", "0", "--hair-weight", "3", "--person-paste", "0.2", "--closeups", "0.3",
          "--prior-dropout", "0.3", "--ema", "0.998", "--seed", "0", "--threads", "1"]


def run(data: Path, negatives: Path, steps: int, out: Path, tuning: bool) -> dict[str, float]:
    """One training process; its wall, user and system seconds (children's rusage)."""
    env = dict(os.environ, SKINMASK_MALLOC_TUNING="1" if tuning else "0")
    cmd = [sys.executable, "-m", "skinmask", "train", str(data), "--negatives", str(negatives),
           "--steps", str(steps), *RECIPE, "-o", str(out), "--overwrite"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"wall": wall, "user": after.ru_utime - before.ru_utime, "sys": after.ru_stime - before.ru_stime}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DATA / "fasseg_multipose01")
    ap.add_argument("--negatives", type=Path, default=DATA / "backgrounds")
    ap.add_argument("--steps", type=int, default=150)
    args = ap.parse_args()
    for d, need in ((args.data, args.data / "images"), (args.negatives, args.negatives)):
        if not need.is_dir():
            sys.exit(f"error: {need}: not a folder (this benchmark reads ../shared/data, or pass --data/--negatives)")
    from safetensors.torch import load_file

    print(f"load average at start: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as tmp:
        results, files = {}, {}
        for name, tuning in (("glibc defaults", False), ("as shipped", True)):
            files[name] = Path(tmp) / f"{tuning}.safetensors"
            results[name] = run(args.data, args.negatives, args.steps, files[name], tuning)
        a, b = (load_file(str(f)) for f in files.values())
        identical = a.keys() == b.keys() and all(bool((a[k] == b[k]).all()) for k in a)
    print(f"\n{args.steps} steps on {args.data.name} + {args.negatives.name} (data loading, start-up and threshold calibration included)\n")
    print("| run | wall s | user s | system s |")
    print("|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {r['wall']:.1f} | {r['user']:.1f} | {r['sys']:.1f} |")
    ratio = results["glibc defaults"]["wall"] / results["as shipped"]["wall"]
    print(f"\nspeed-up {ratio:.2f}x; weights bit-identical: {identical}")
    print(f"load average at end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
