"""Corpus runs that lose a worker or their own process: outputs must still equal a plain run's, with no stray files.

    python benchmarks/corpus_faults.py                 # 120 CCP street photos + 3 videos
    python benchmarks/corpus_faults.py --photos 40     # fewer photos

Builds an input folder (links to the first photos of ../shared/data/ccp/images, the two videos of
../shared/data/videos, one generated 640x480 test-pattern clip), then runs, on the same inputs:

1. plain: `skinmask predict IN -o plain --json` (the reference);
2. `--cluster local:2`;
3. a separate `dask scheduler` and two `dask worker --nthreads 1 --no-nanny` processes, `--cluster env`;
   the worker that first holds a mask video's temporary file open is SIGKILLed (it stays dead);
4. a plain run SIGKILLed while it writes a video, then the same command with `--skip-existing`.

Each run must exit 0 and leave the plain run's files: PNG bytes equal, video frames equal, the
`--json` records equal (but `seconds` and `output`), nothing hidden, temporary or partial left.
Wall times are printed with the load average; on a shared machine they say little about speed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_corpus import check_same  # noqa: E402
from bench_predict import load, make_video  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data"
BIN = Path(sys.executable).parent


def build_inputs(root: Path, n_photos: int) -> Path:
    src = root / "in"
    (src / "photos").mkdir(parents=True)
    (src / "videos").mkdir()
    for p in sorted((DATA / "ccp" / "images").iterdir())[:n_photos]:
        os.symlink(p.resolve(), src / "photos" / p.name)
    for p in sorted((DATA / "videos").glob("*.mp4")):
        os.symlink(p.resolve(), src / "videos" / p.name)
    shutil.copy(make_video(640, 480, 300), src / "videos" / "testsrc2_640x480.mp4")
    return src


def predict(src: Path, out: Path, *extra: str, env: dict | None = None) -> tuple[int, float, str, str]:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "skinmask", "predict", str(src), "-o", str(out), "--json", *extra],
                          cwd=REPO, capture_output=True, text=True, env=env)
    return proc.returncode, time.perf_counter() - start, proc.stdout, proc.stderr


def records(jsonl: str) -> list[dict]:
    return [{k: v for k, v in json.loads(ln).items() if k not in ("seconds", "output")} for ln in jsonl.splitlines()]


def stray(folder: Path) -> list[str]:
    return [str(p) for p in folder.rglob("*") if p.name.startswith(".") or ".tmp" in p.name or ".partial" in p.name]


def holder(pids: list[int], folder: Path) -> tuple[int, str] | None:
    """A process among ``pids`` with a temporary file under ``folder`` open."""
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith(str(folder)) and Path(target).name.startswith("."):
                    return pid, target
        except OSError:
            continue
    return None


def scheduler_run(src: Path, out: Path) -> tuple[int, float, str, str]:
    """Scenario 3: scheduler + two workers, one SIGKILLed while it writes a mask video."""
    env = dict(os.environ, SKINMASK_THREADS="1")
    with socket.socket() as probe:  # a free port
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    address = f"tcp://127.0.0.1:{port}"
    sched = subprocess.Popen([str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", port,
                              "--no-dashboard"], stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    workers = [subprocess.Popen([str(BIN / "dask"), "worker", address, "--nthreads", "1", "--no-nanny",
                                 "--no-dashboard"], env=env, stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
               for _ in range(2)]
    try:
        time.sleep(8)  # both workers registered
        client = subprocess.Popen([sys.executable, "-m", "skinmask", "predict", str(src), "-o", str(out), "--json",
                                   "--cluster", "env"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True, env=dict(os.environ, DASK_SCHEDULER_ADDRESS=address))
        start = time.perf_counter()
        killed = None
        while client.poll() is None and killed is None:
            killed = holder([w.pid for w in workers], out / "videos")
            time.sleep(0.005)
        if killed is not None:
            os.kill(killed[0], signal.SIGKILL)
            print(f"  killed worker {killed[0]} while it wrote {killed[1]}")
        stdout, stderr = client.communicate()
        if killed is None:
            sys.exit("the run ended before a worker could be killed")
        return client.returncode, time.perf_counter() - start, stdout, stderr
    finally:
        for p in [*workers, sched]:
            p.kill()
            p.wait()


def killed_then_resumed(src: Path, out: Path) -> tuple[int, float, str, str]:
    """Scenario 4: a plain run SIGKILLed while it writes a video, rerun with --skip-existing."""
    proc = subprocess.Popen([sys.executable, "-m", "skinmask", "predict", str(src), "-o", str(out), "-q"], cwd=REPO)
    while holder([proc.pid], out / "videos") is None:
        if proc.poll() is not None:
            sys.exit("the plain run ended before it could be killed")
        time.sleep(0.005)
    proc.kill()
    proc.wait()
    done = [p for p in out.rglob("*") if p.is_file() and not p.name.startswith(".")]
    print(f"  killed the plain run with {len(done)} outputs done and {len(stray(out))} temporary file(s) left")
    return predict(src, out, "--skip-existing")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=int, default=120, help="street photos from ../shared/data/ccp/images")
    args = ap.parse_args()
    if not (DATA / "ccp" / "images").is_dir():
        sys.exit(f"needs the shared datasets at {DATA}")
    failed = False
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        src = build_inputs(tmp, args.photos)
        n = sum(1 for p in src.rglob("*") if p.is_file() or p.is_symlink())
        print(f"{n} inputs; load {load()}")
        code, wall, ref_json, err = predict(src, tmp / "plain")
        if code != 0:
            sys.exit(f"the plain run failed: {err}")
        print(f"plain: exit 0, {wall:.1f} s")
        runs = [("--cluster local:2", lambda out: predict(src, out, "--cluster", "local:2")),
                ("scheduler + 2 workers, one SIGKILLed", lambda out: scheduler_run(src, out)),
                ("plain SIGKILLed, then --skip-existing", lambda out: killed_then_resumed(src, out))]
        for k, (name, run) in enumerate(runs):
            out = tmp / f"run{k}"
            code, wall, jsonl, err = run(out)
            check_same(tmp / "plain", out)  # exits on any difference
            same_json = records(jsonl) == records(ref_json) if "skip" not in name else True
            left = stray(out)
            ok = code == 0 and same_json and not left
            failed |= not ok
            summary = [ln for ln in err.splitlines() if ln.startswith("done:")]
            print(f"{name}: exit {code}, outputs identical, json {'identical' if same_json else 'DIFFERENT'}, "
                  f"stray {left or 'none'}, {wall:.1f} s; {summary[-1] if summary else ''}")
        print(f"load after: {load()}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
