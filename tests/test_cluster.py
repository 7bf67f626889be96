"""--cluster through Dask: a LocalCluster of 2 worker processes gives the plain run's bytes, survives a
SIGKILLed worker, and a SIGKILLed client's run completes with --skip-existing."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import pytest

from skinmask.inputs import expand_inputs
from skinmask.runner import PredictOptions, predict_corpus

from .conftest import REPO
from .test_corpus import make_corpus, same_outputs, stray
from .test_pulse import write_gt, write_pulse_video

distributed = pytest.importorskip("distributed")
psutil = pytest.importorskip("psutil")  # a dependency of distributed


@pytest.fixture(scope="module")
def scheduler():
    """A LocalCluster of 2 single-threaded worker processes, reached by its address like a remote one."""
    with warnings.catch_warnings():  # "port 8787 in use" (another cluster): harmless here
        warnings.simplefilter("ignore", UserWarning)
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                           env={"SKINMASK_THREADS": "1"}, silence_logs=50)
    with cluster:
        yield cluster


def _records(out: str) -> list[dict]:
    return [{k: v for k, v in json.loads(line).items() if k not in ("seconds", "output")} for line in out.splitlines()]


def test_local_cluster_writes_the_plain_runs_outputs(run_cli, tmp_path: Path, weights_file: Path) -> None:
    src = make_corpus(tmp_path / "in", images=20)
    plain = run_cli("predict", src, "-o", tmp_path / "plain", "-w", weights_file, "--json")
    res = run_cli("predict", src, "-o", tmp_path / "dask", "-w", weights_file, "--json", "--cluster", "local:2")
    assert plain.code == 0 and res.code == 0, res
    same_outputs(tmp_path / "plain", tmp_path / "dask")
    assert _records(res.out) == _records(plain.out)  # same records, in input order
    assert stray(tmp_path / "dask") == []


def test_failed_inputs_are_one_line_each(run_cli, tmp_path: Path, weights_file: Path) -> None:
    src = make_corpus(tmp_path / "in", images=3, videos=(5,))
    (src / "bad.png").write_text("not an image")
    (src / "broken.mkv").write_bytes(b"\x1a\x45\xdf\xa3 junk")
    res = run_cli("predict", src, "-o", tmp_path / "out", "-w", weights_file, "--cluster", "local:2")
    assert res.code == 1
    errors = [ln for ln in res.err.splitlines() if ln.startswith("error:")]
    assert len(errors) == 2 and any("bad.png" in e for e in errors) and any("broken.mkv" in e for e in errors)
    assert "Traceback" not in res.err and "4 written" in res.err and "2 failed" in res.err


def test_a_killed_worker_leaves_every_output_complete_once(scheduler, tmp_path: Path, weights_file: Path) -> None:
    from skinmask.cluster import Cluster
    from skinmask.inference import load_model

    src = make_corpus(tmp_path / "in", images=10, videos=(400, 8))
    items, _ = expand_inputs([str(src)])
    model = load_model(weights_file)
    ref, out = tmp_path / "ref", tmp_path / "out"
    assert all(o.error is None for o in predict_corpus(items, PredictOptions(ref, batch_size=1), model))
    killed: list[Path] = []
    finished = threading.Event()

    with Cluster(scheduler.scheduler_address) as cluster:
        workers = [psutil.Process(pid) for pid in cluster.client.run(os.getpid).values()]

        def kill_the_video_writer() -> None:  # the worker that holds the video's temporary file open
            while not finished.is_set():
                for worker in workers:
                    with contextlib.suppress(psutil.Error):
                        temps = [Path(f.path) for f in worker.open_files() if Path(f.path).name.startswith(".clip0.")]
                        if temps:
                            worker.send_signal(signal.SIGKILL)
                            killed.extend(temps)
                            return
                time.sleep(0.002)

        killer = threading.Thread(target=kill_the_video_writer)
        killer.start()
        try:
            outcomes = list(predict_corpus(items, PredictOptions(out, batch_size=1), model, cluster))
        finally:
            finished.set()
            killer.join()
    assert killed, "no worker was killed mid-video"
    assert [o.error for o in outcomes] == [None] * len(items)
    same_outputs(ref, out)  # every output once, complete, the plain run's bytes
    assert stray(out) == [] and not any(p.exists() for p in killed)


def test_killed_client_then_skip_existing(tmp_path: Path, weights_file: Path) -> None:
    src = make_corpus(tmp_path / "in", images=12, videos=(600, 6))
    ref, out = tmp_path / "ref", tmp_path / "out"
    cmd = [sys.executable, "-m", "skinmask", "predict", str(src), "-o", "OUT", "-w", str(weights_file), "-q",
           "--cluster", "local:2"]
    assert subprocess.run([c.replace("OUT", str(ref)) for c in cmd[:-2]], cwd=REPO).returncode == 0
    proc = subprocess.Popen([c.replace("OUT", str(out)) for c in cmd], cwd=REPO)
    deadline = time.monotonic() + 90
    while not any(p.name.startswith(".clip0.") for p in out.glob(".*")):  # mid-video
        assert proc.poll() is None and time.monotonic() < deadline, "the run ended before it could be killed"
        time.sleep(0.01)
    family = psutil.Process(proc.pid).children(recursive=True)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    gone, alive = psutil.wait_procs(family, timeout=20)  # the workers die with their client
    assert alive == []
    assert not (out / "clip0.mkv").exists()
    done = {p: p.stat().st_ino for p in out.rglob("*") if p.is_file() and not p.name.startswith(".")}
    res = subprocess.run([c.replace("OUT", str(out)) for c in cmd[:-3]] + ["--cluster", "local:2", "--skip-existing"],
                         cwd=REPO, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert f"{len(done)} skipped" in res.stderr
    assert all(p.stat().st_ino == ino for p, ino in done.items())  # finished inputs not redone
    same_outputs(ref, out)
    assert stray(out) == []


def test_trace_on_the_cluster(run_cli, tmp_path: Path, weights_file: Path) -> None:
    src = make_corpus(tmp_path / "in", images=2, videos=(15, 9))
    assert run_cli("trace", src, "-o", tmp_path / "plain", "-w", weights_file, "--region", "skin").code == 0
    res = run_cli("trace", src, "-o", tmp_path / "dask", "-w", weights_file, "--region", "skin", "--cluster", "local:2")
    assert res.code == 0, res
    same_outputs(tmp_path / "plain", tmp_path / "dask")


def test_pulse_eval_on_the_cluster(run_cli, tmp_path: Path, weights_file: Path) -> None:
    for k, bpm in ((1, 66.0), (2, 96.0)):
        d = tmp_path / "data" / f"subject{k}"
        d.mkdir(parents=True)
        write_pulse_video(d / "vid.mkv", bpm, seconds=10.5, seed=k)
        write_gt(d / "ground_truth.txt", 315, bpm)
    (tmp_path / "data" / "subject3").mkdir()
    (tmp_path / "data" / "subject3" / "vid.mkv").write_text("broken")
    write_gt(tmp_path / "data" / "subject3" / "ground_truth.txt", 315, 70.0)
    args = ("pulse-eval", tmp_path / "data", "-w", weights_file, "--mask", "skinmask", "--mask", "ycrcb", "--json")
    plain = run_cli(*args)
    res = run_cli(*args, "--cluster", "local:2")
    assert plain.code == 1 and res.code == 1  # subject3 is broken: one error line, the others scored
    assert res.out == plain.out and len(res.out.splitlines()) == 6
    assert [ln for ln in res.err.splitlines() if ln.startswith("error:")] == \
        [ln for ln in plain.err.splitlines() if ln.startswith("error:")]
    assert sum(ln.startswith("error:") for ln in res.err.splitlines()) == 1


def test_bad_cluster_addresses(run_cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "a.png"
    src.write_bytes(b"")
    res = run_cli("predict", src, "-o", tmp_path / "o", "--cluster", "local:0")
    assert res.code == 2 and "local:" in res.err
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    res = run_cli("predict", src, "-o", tmp_path / "o", "--cluster", "env")
    assert res.code == 2 and "DASK_SCHEDULER_ADDRESS" in res.err


def test_a_running_scheduler_from_the_environment(run_cli, scheduler, tmp_path: Path, weights_file: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    src = make_corpus(tmp_path / "in", images=4, videos=(6,))
    assert run_cli("predict", src, "-o", tmp_path / "plain", "-w", weights_file).code == 0
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", scheduler.scheduler_address)
    res = run_cli("predict", src, "-o", tmp_path / "dask", "-w", weights_file, "--cluster", "env")
    assert res.code == 0, res
    same_outputs(tmp_path / "plain", tmp_path / "dask")
