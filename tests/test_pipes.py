"""skinmask in shell pipelines: real subprocesses with real pipes (stdin/stdout, raw frames, ffmpeg, head).

Every run is `python -m skinmask` in a child process. The reference masks come from one plain
`skinmask predict frames/ -o ref/ --json` run over the same frames saved as PNGs.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from .conftest import make_frame

SKINMASK = [sys.executable, "-m", "skinmask"]
W, H, N = 64, 48, 6  # tiny frames keep every run a start-up cost only
FRAME_BYTES = W * H * 3
RECORD_FIELDS = {"input", "output", "kind", "frames", "width", "height", "skin_fraction", "mean_probability",
                 "seconds", "engine", "complete", "error", "extra_outputs"}


def run(args: list[str], stdin: bytes | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*SKINMASK, *args], input=stdin, capture_output=True, timeout=180, cwd=cwd)


def no_traceback(stderr: bytes) -> None:
    text = stderr.decode(errors="replace")
    assert "Traceback" not in text and "Exception ignored" not in text, text


def ffmpeg() -> str:
    import imageio_ffmpeg  # a test dependency (the `test` extra): this test must run, never skip, in CI

    return imageio_ffmpeg.get_ffmpeg_exe()


@pytest.fixture(scope="module")
def ref(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Frames as PNGs (one name with spaces), their masks and JSON lines from a plain `predict` run."""
    root = tmp_path_factory.mktemp("pipes")
    frames = [make_frame(H, W, seed=3 * i) for i in range(N)]
    (root / "frames").mkdir()
    names = [f"f {i:02d}.png" for i in range(N)]
    for name, f in zip(names, frames):
        cv2.imwrite(str(root / "frames" / name), f)
    res = run(["predict", "frames", "-o", "ref", "--json"], cwd=root)
    assert res.returncode == 0, res.stderr.decode()
    masks = [cv2.imread(str(root / "ref" / n), cv2.IMREAD_UNCHANGED) for n in names]
    return {"root": root, "frames": frames, "names": names, "masks": masks, "json": res.stdout.decode(),
            **_video_reference(frames)}


def _video_reference(frames: list[np.ndarray]) -> dict:
    """The same frames as one video, frame by frame through one FrameStream (temporal smoothing)."""
    from skinmask.inference import load_model
    from skinmask.maps import mask_from_working, upsample_map
    from skinmask.temporal import FrameStream

    model, stream = load_model(device="cpu"), FrameStream()
    small = [model.working_probabilities(f[None], stream)[0] for f in frames]
    return {"video_masks": [mask_from_working(p, f.shape[:2]) for p, f in zip(small, frames)],
            "video_probs": [upsample_map(p, f.shape[:2]) for p, f in zip(small, frames)]}


def test_json_lines_one_object_per_output_and_nothing_else(ref: dict) -> None:
    lines = ref["json"].splitlines()
    assert len(lines) == N
    for line, name, mask in zip(lines, ref["names"], ref["masks"]):
        rec = json.loads(line)
        assert set(rec) == RECORD_FIELDS
        assert rec["input"] == os.path.join("frames", name) and rec["output"] == os.path.join("ref", name)
        assert (rec["kind"], rec["frames"], rec["width"], rec["height"], rec["complete"]) == ("image", 1, W, H, True)
        assert rec["mean_probability"] == pytest.approx(mask.mean() / 255, abs=1 / 255)
        assert 0 <= rec["skin_fraction"] <= 1 and rec["seconds"] >= 0


def test_stdin_image_to_stdout_png(ref: dict) -> None:
    ok, png = cv2.imencode(".png", ref["frames"][1])
    explicit = subprocess.Popen([*SKINMASK, "predict", "-", "-o", "-"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    implied = subprocess.Popen([*SKINMASK, "predict", "-o", "-", "-q"], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # '-' implied: stdin is a pipe
    for proc in (explicit, implied):
        out, err = proc.communicate(png.tobytes(), timeout=180)
        assert proc.returncode == 0, err.decode()
        assert out[:8] == b"\x89PNG\r\n\x1a\n"  # stdout is the PNG and nothing else
        mask = cv2.imdecode(np.frombuffer(out, np.uint8), cv2.IMREAD_UNCHANGED)
        np.testing.assert_array_equal(mask, ref["masks"][1])


def test_raw_frames_round_trip_match_predict_frame_by_frame(ref: dict) -> None:
    data = b"".join(f.tobytes() for f in ref["frames"])
    res = run(["predict", "--raw", f"{W}x{H}", "-", "-o", "-"], stdin=data)
    assert res.returncode == 0, res.stderr.decode()
    assert len(res.stdout) == N * W * H  # raw gray frames, same size, nothing else
    out = np.frombuffer(res.stdout, np.uint8).reshape(N, H, W)
    for i in range(N):
        np.testing.assert_array_equal(out[i], ref["video_masks"][i], err_msg=f"frame {i}")


def test_short_last_raw_frame_fails_naming_the_byte_count(ref: dict) -> None:
    data = b"".join(f.tobytes() for f in ref["frames"][:2]) + b"\0" * 1000
    res = run(["predict", "--raw", f"{W}x{H}", "-", "-o", "-"], stdin=data)
    assert res.returncode == 1
    assert f"<stdin>: last raw frame is short: got 1000 of {FRAME_BYTES} bytes" in res.stderr.decode()
    assert len(res.stdout) == 2 * W * H  # the whole frames still came through
    no_traceback(res.stderr)


def test_ffmpeg_rawvideo_pipeline(ref: dict, tmp_path: Path) -> None:
    """ffmpeg -f rawvideo ... - | skinmask predict --raw WxH - -o - | ffmpeg -f rawvideo -pix_fmt gray ..."""
    ff = ffmpeg()
    quiet = [ff, "-hide_banner", "-loglevel", "error", "-y"]
    video = tmp_path / "face.mkv"  # lossless RGB, so the decoded frames are exactly the reference frames
    subprocess.run([*quiet, "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{W}x{H}", "-r", "30", "-i", "-",
                    "-c:v", "ffv1", "-pix_fmt", "bgr0", str(video)],
                   input=b"".join(f.tobytes() for f in ref["frames"]), check=True, timeout=60)
    masks = tmp_path / "mask.mkv"
    decode = subprocess.Popen([*quiet, "-i", str(video), "-f", "rawvideo", "-pix_fmt", "bgr24", "-"],
                              stdout=subprocess.PIPE)
    sm = subprocess.Popen([*SKINMASK, "predict", "--raw", f"{W}x{H}", "-", "-o", "-"], stdin=decode.stdout,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    encode = subprocess.Popen([*quiet, "-f", "rawvideo", "-pix_fmt", "gray", "-s", f"{W}x{H}", "-r", "30", "-i", "-",
                               "-c:v", "ffv1", str(masks)], stdin=sm.stdout)
    decode.stdout.close()
    sm.stdout.close()
    _, err = sm.communicate(timeout=180)
    assert encode.wait(timeout=60) == 0 and decode.wait(timeout=60) == 0
    assert sm.returncode == 0, err.decode()
    back = subprocess.run([*quiet, "-i", str(masks), "-f", "rawvideo", "-pix_fmt", "gray", "-"],
                          capture_output=True, check=True, timeout=60).stdout
    got = np.frombuffer(back, np.uint8).reshape(-1, H, W)
    assert len(got) == N
    for i in range(N):
        np.testing.assert_array_equal(got[i], ref["video_masks"][i], err_msg=f"frame {i}")


def test_from_path_list_with_spaces_missing_files_and_nul(ref: dict, tmp_path: Path) -> None:
    root = ref["root"]
    paths = [str(root / "frames" / n) for n in ref["names"][:3]]
    listing = ("\n".join([paths[0], "", paths[1], str(root / "frames" / "missing one.png"), paths[2]]) + "\n")
    nul = "\0".join(paths[:2]) + "\0"
    lines = subprocess.Popen([*SKINMASK, "predict", "--from", "-", "-o", str(tmp_path / "a"), "--json"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    (tmp_path / "list0").write_bytes(nul.encode())
    zero = subprocess.Popen([*SKINMASK, "predict", "--from", str(tmp_path / "list0"), "-0", "-o", str(tmp_path / "b")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = lines.communicate(listing.encode(), timeout=180)
    assert lines.returncode == 1  # one input failed, the others were still processed
    errors = [e for e in err.decode().splitlines() if e.startswith("error:")]
    assert len(errors) == 1 and "missing one.png: no such file" in errors[0]
    records = [json.loads(x) for x in out.decode().splitlines()]
    assert [Path(r["output"]).name for r in records] == ref["names"][:3]
    for name, mask in zip(ref["names"][:3], ref["masks"]):
        np.testing.assert_array_equal(cv2.imread(str(tmp_path / "a" / name), cv2.IMREAD_UNCHANGED), mask)
    _, err = zero.communicate(timeout=180)
    assert zero.returncode == 0, err.decode()
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == ref["names"][:2]


def _read_line(proc: subprocess.Popen, timeout: float) -> bytes:
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, "no trace row within the timeout: trace does not stream"
    return proc.stdout.readline()


def test_trace_streams_rows_that_match_masks_computed_directly(ref: dict) -> None:
    from skinmask.inference import load_model, predict
    from skinmask.maps import resize_maps
    from skinmask.temporal import FrameStream

    frames = ref["frames"]
    proc = subprocess.Popen([*SKINMASK, "trace", "--region", "skin", "--raw", f"{W}x{H}", "--fps", "10", "-"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)  # unbuffered: select sees all
    try:
        proc.stdin.write(b"".join(f.tobytes() for f in frames[:4]))  # one batch; stdin stays open
        proc.stdin.flush()
        header = _read_line(proc, 120)
        first = _read_line(proc, 60)  # a row arrives before the input is finished
        proc.stdin.write(b"".join(f.tobytes() for f in frames[4:]))
        proc.stdin.close()
        rest, err = proc.stdout.read(), proc.stderr.read()
    finally:
        proc.kill() if proc.poll() is None else None
    assert proc.wait(timeout=60) == 0, err.decode()
    assert header.decode().strip() == "index,time_s,skin_fraction,r,g,b"
    rows = [first.decode().strip(), *rest.decode().splitlines()]
    assert len(rows) == N

    model = load_model(device="cpu")
    # trace averages the unsmoothed maps of one frame stream (the person prior of a prior net refreshed every
    # PRIOR_EVERY frames, reused in between); each image on its own gets its own prior
    video = resize_maps(model.working_probabilities(np.stack(frames), FrameStream(alpha=1.0)), (H, W))
    probs = model.probabilities(np.stack(frames))
    for i, (row, frame, seen, prob) in enumerate(zip(rows, frames, video, probs)):
        index, t, fraction, r, g, b = row.split(",")
        assert int(index) == i and float(t) == pytest.approx(i / 10)
        assert float(fraction) == pytest.approx(np.mean(seen >= model.threshold), abs=1e-6)
        bright = frame.max(axis=2)
        w = np.where((bright >= 250) | (bright < 8), 0.0, seen.astype(np.float64))  # clipped pixels dropped
        want = [(frame[..., c] * w).sum() / w.sum() for c in (2, 1, 0)]  # R, G, B of a BGR frame
        np.testing.assert_allclose([float(r), float(g), float(b)], want, rtol=1e-4)
        # and per image it is the probability map predict writes: exactly predict()'s 8-bit mask, within
        # 1/255 of rounding the full-size float map
        np.testing.assert_array_equal(predict(model, frame), ref["masks"][i])
        assert np.abs(np.rint(prob * 255).astype(int) - ref["masks"][i]).max() <= 1
    if model.prior is not None:  # the prior is reused within the stream: frame 0's map is each image's own
        np.testing.assert_array_equal(video[0], probs[0])
    # while the raw-frame mask video is smoothed over time (the first frame, with no past, is not)
    np.testing.assert_array_equal(ref["video_masks"][0], ref["masks"][0])
    assert any(np.abs(v.astype(int) - m.astype(int)).max() > 1 for v, m in zip(ref["video_masks"], ref["masks"]))


def test_closed_pipe_downstream_ends_quietly(ref: dict, tmp_path: Path) -> None:
    raw = tmp_path / "many.raw"
    raw.write_bytes(b"".join(ref["frames"][i % N].tobytes() for i in range(200)))
    procs = []
    for args, head in ((["trace", "--region", "skin", "--raw", f"{W}x{H}", str(raw)], ["head", "-3"]),
                       (["predict", "--raw", f"{W}x{H}", str(raw), "-o", "-"], ["head", "-c", "100"])):
        sm = subprocess.Popen([*SKINMASK, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        hd = subprocess.Popen(head, stdin=sm.stdout, stdout=subprocess.PIPE)
        sm.stdout.close()  # only head holds the read end now
        procs.append((sm, hd))
    for sm, hd in procs:
        out, _ = hd.communicate(timeout=180)
        err = sm.stderr.read()
        assert sm.wait(timeout=60) == 0, err.decode()
        no_traceback(err)
        assert err.decode().strip() == "", err.decode()  # quiet: no error line either
    assert len(procs[0][1].args) and out  # head got its data


def test_usage_errors_exit_2(run_cli, tmp_path: Path) -> None:
    img = tmp_path / "a.png"
    cv2.imwrite(str(img), make_frame(H, W))
    cases = [
        (["predict", "--raw", "64", "-", "-o", "-"], "WIDTHxHEIGHT"),
        (["predict", str(img), str(img), "-o", "-"], "exactly one input"),
        (["predict", str(img), "-o", "-", "--json"], "both write to stdout"),
        (["predict", str(img), "-0"], "--from"),
        (["trace", "-"], "needs --raw"),
        (["predict", "--raw", "4x4", "--pix-fmt", "yuv420p", "-", "-o", "-"], "yuv420p"),
    ]
    for args, message in cases:
        res = run_cli(*args)
        assert res.code == 2, (args, res)
        assert message in res.err, (args, res.err)


def test_trace_json_lines_from_a_raw_file(run_cli, tmp_path: Path) -> None:
    raw = tmp_path / "clip.raw"
    raw.write_bytes(np.zeros((3, 8, 10, 3), np.uint8).tobytes())  # black frames: no pixel carries weight
    res = run_cli("trace", "--region", "skin", "--raw", "10x8", "--fps", "25", str(raw), "--json")
    assert res.code == 0, res
    rows = [json.loads(line) for line in res.out.splitlines()]  # strict JSON: NaN would not parse in most tools
    assert [r["index"] for r in rows] == [0, 1, 2] and rows[2]["time_s"] == pytest.approx(2 / 25)
    assert all(set(r) == {"index", "time_s", "skin_fraction", "r", "g", "b"} and r["r"] is None for r in rows)
