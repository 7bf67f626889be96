"""Many inputs on one machine: same bytes as one at a time, input order, --skip-existing, leftover sweeps."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import pytest

from skinmask import atomic
from skinmask.atomic import final_name, sweep_stale, temp_beside
from skinmask.inference import load_model
from skinmask.inputs import expand_inputs
from skinmask.runner import PredictOptions, predict_items

from .conftest import REPO, make_frame, read_mask_video, write_video


def make_corpus(folder: Path, images: int = 6, videos: tuple[int, ...] = (20, 12)) -> Path:
    """Small images of two sizes (so batches and threads interleave) and tiny videos, in a sub-folder tree."""
    (folder / "sub").mkdir(parents=True)
    for i in range(images):
        h, w = (72, 96) if i % 2 else (90, 60)
        cv2.imwrite(str(folder / ("sub" if i % 3 == 0 else ".") / f"im{i}.png"), make_frame(h, w, i))
    for k, n in enumerate(videos):
        write_video(folder / f"clip{k}.mkv", n=n, size=(64 + 16 * k, 48))
    return folder


def stray(folder: Path) -> list[str]:
    """Temporaries or partial outputs anywhere under ``folder``."""
    return sorted(str(p) for p in folder.rglob("*") if p.name.startswith(".") or ".tmp" in p.name or ".partial" in p.name)


def same_outputs(a: Path, b: Path) -> None:
    """Same files; PNGs byte for byte, mask videos frame for frame."""
    names = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert names == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert names, "nothing written"
    for rel in names:
        if rel.suffix == ".mkv":
            fa, fb = read_mask_video(a / rel)[0], read_mask_video(b / rel)[0]
            assert len(fa) == len(fb) and all((x == y).all() for x, y in zip(fa, fb)), rel
        else:
            assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel


def _records(out: str) -> list[dict]:
    return [{k: v for k, v in json.loads(line).items() if k not in ("seconds", "output")} for line in out.splitlines()]


def test_threads_give_the_same_outputs_in_input_order(run_cli, tmp_path: Path, weights_file: Path) -> None:
    src = make_corpus(tmp_path / "in")
    model = load_model(weights_file)
    items, _ = expand_inputs([str(src)])
    one = [o.record.to_dict() for o in predict_items(model, items, PredictOptions(tmp_path / "one"), jobs=1)]
    res = run_cli("predict", src, "-o", tmp_path / "many", "-w", weights_file, "--json")
    assert res.code == 0, res
    same_outputs(tmp_path / "one", tmp_path / "many")
    assert _records(res.out) == [{k: v for k, v in r.items() if k not in ("seconds", "output")} for r in one]
    assert [r["input"] for r in _records(res.out)] == [str(i.path) for i in items]  # input order


def test_skip_existing_resumes_without_redoing(run_cli, tmp_path: Path, weights_file: Path) -> None:
    src = make_corpus(tmp_path / "in")
    ref, out = tmp_path / "ref", tmp_path / "out"
    assert run_cli("predict", src, "-o", ref, "-w", weights_file, "-q").code == 0
    assert run_cli("predict", src, "-o", out, "-w", weights_file, "-q").code == 0
    (out / "im1.png").unlink()
    (out / "clip1.mkv").unlink()
    kept = {p: p.stat().st_ino for p in out.rglob("*") if p.is_file()}
    res = run_cli("predict", src, "-o", out, "-w", weights_file, "--skip-existing", "--json")
    assert res.code == 0, res
    assert "6 skipped" in res.err and "2 written" in res.err
    assert [r["input"] for r in _records(res.out)] == [str(src / "clip1.mkv"), str(src / "im1.png")]
    assert all(p.stat().st_ino == ino for p, ino in kept.items())  # finished outputs untouched
    same_outputs(ref, out)
    res = run_cli("predict", src, "-o", out, "-w", weights_file)  # without the flag, existing outputs are errors
    assert res.code == 1 and "already exists" in res.err


def test_skip_existing_redoes_an_input_with_a_missing_extra_output(run_cli, tmp_path: Path, weights_file: Path) -> None:
    src = tmp_path / "a.png"
    cv2.imwrite(str(src), make_frame(40, 50))
    out = tmp_path / "out"
    assert run_cli("predict", src, "-o", out, "-w", weights_file, "--overlay", "-q").code == 0
    (out / "a.overlay.png").unlink()  # as if killed between the mask and the overlay
    res = run_cli("predict", src, "-o", out, "-w", weights_file, "--overlay", "--skip-existing")
    assert res.code == 0 and "1 written" in res.err, res
    assert sorted(p.name for p in out.iterdir()) == ["a.overlay.png", "a.png"]


def test_resume_usage_errors(run_cli, tmp_path: Path, weights_file: Path) -> None:
    src = tmp_path / "a.png"
    cv2.imwrite(str(src), make_frame(16, 16))
    res = run_cli("predict", src, "-o", tmp_path / "o", "--overwrite", "--skip-existing")
    assert res.code == 2 and "--skip-existing" in res.err
    res = run_cli("predict", "-", "-o", "-", "--skip-existing")
    assert res.code == 2 and "--skip-existing" in res.err
    res = run_cli("predict", src, "-o", tmp_path, "--skip-existing")  # the "output" is the input: not a skip
    assert res.code == 1 and "overwrite the input" in res.err


def test_sweep_removes_only_abandoned_temporaries(tmp_path: Path) -> None:
    final = tmp_path / "a.png"
    live = temp_beside(final)  # held by this process: a writer at work
    assert final_name(live.name) == "a.png"
    script = ("import os, sys; from pathlib import Path; from skinmask.atomic import temp_beside; "
              "print(temp_beside(Path(sys.argv[1])), flush=True); os.kill(os.getpid(), 9)")
    proc = subprocess.run([sys.executable, "-c", script, str(final)], capture_output=True, text=True, cwd=REPO)
    dead = Path(proc.stdout.strip())
    assert proc.returncode == -signal.SIGKILL and dead.exists()
    other = temp_beside(tmp_path / "b.png")
    atomic._release(other)  # its writer let go without renaming or removing it
    assert sweep_stale(tmp_path, {"a.png"}) == [dead]  # b.png is not in scope; the live one is locked
    assert live.exists() and other.exists()
    assert sweep_stale(tmp_path) == [other]


def test_killed_run_then_skip_existing(tmp_path: Path, weights_file: Path) -> None:
    src = make_corpus(tmp_path / "in", images=8, videos=(600,))
    ref, out = tmp_path / "ref", tmp_path / "out"
    cmd = [sys.executable, "-m", "skinmask", "predict", str(src), "-o", "OUT", "-w", str(weights_file), "-q",
           "--batch-size", "1"]
    assert subprocess.run([c.replace("OUT", str(ref)) for c in cmd], cwd=REPO).returncode == 0
    proc = subprocess.Popen([c.replace("OUT", str(out)) for c in cmd], cwd=REPO)
    deadline = time.monotonic() + 60
    while not any(p.name.startswith(".clip0.") for p in out.glob(".*")):  # mid-video
        assert proc.poll() is None and time.monotonic() < deadline, "the run ended before it could be killed"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "clip0.mkv").exists() and stray(out)  # killed mid-write: a leftover, no final file
    done = {p: p.stat().st_ino for p in out.rglob("*.png") if not p.name.startswith(".")}
    res = subprocess.run([c.replace("OUT", str(out)) for c in cmd[:-3]] + ["--skip-existing"], cwd=REPO,
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert f"{len(done)} skipped" in res.stderr
    assert all(p.stat().st_ino == ino for p, ino in done.items())
    same_outputs(ref, out)
    assert stray(out) == []


def test_trace_many_inputs_into_files(run_cli, tmp_path: Path, weights_file: Path) -> None:
    src = make_corpus(tmp_path / "in", images=1, videos=(15, 9))
    res = run_cli("trace", src, "-o", tmp_path / "tr", "-w", weights_file, "--region", "skin")
    assert res.code == 0, res
    assert sorted(p.name for p in (tmp_path / "tr").rglob("*.csv")) == ["clip0.csv", "clip1.csv", "im0.csv"]
    for name in ("clip0", "clip1"):
        one = run_cli("trace", src / f"{name}.mkv", "-w", weights_file, "--region", "skin")
        assert one.code == 0 and (tmp_path / "tr" / f"{name}.csv").read_text() == one.out
    skin = ("-w", weights_file, "--region", "skin")
    res = run_cli("trace", src / "clip0.mkv", "-o", tmp_path / "tj", *skin, "--json")
    assert res.code == 0 and len((tmp_path / "tj" / "clip0.jsonl").read_text().splitlines()) == 15
    res = run_cli("trace", src / "clip0.mkv", "-o", tmp_path / "tj", *skin, "--json", "--skip-existing")
    assert res.code == 0 and "1 skipped" in res.err
    res = run_cli("trace", src / "clip0.mkv", src / "clip1.mkv", *skin)
    assert res.code == 2 and "-o FOLDER" in res.err


def test_cluster_without_dask_is_a_usage_error(run_cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "a.png"
    cv2.imwrite(str(src), make_frame(16, 16))
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    res = run_cli("predict", src, "-o", tmp_path / "o", "--cluster", "local")
    assert res.code == 2 and res.err.strip().splitlines() == [
        "error: --cluster needs Dask distributed: pip install 'skinmask[cluster]'"]


def test_cli_start_up_imports_no_dask() -> None:
    code = "import sys, skinmask.cli.app; print(sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO).stdout
    assert out.strip() == "[]"
