"""Inference engines: onnxruntime and torch agree on every architecture; selection and fallbacks."""

from __future__ import annotations

import builtins
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from skinmask import engines
from skinmask.archs import state_shapes
from skinmask.engines import ENGINES, OnnxEngine, TorchEngine, net_state, onnxruntime_available, pick
from skinmask.errors import DeviceError, UsageError
from skinmask.inference import SkinModel, load_model
from skinmask.maps import to_mask
from skinmask.model import ARCHITECTURES, SkinNet
from skinmask.pipeline import run_frames
from skinmask.weights import InputSpec, WeightsMeta, save_weights

needs_ort = pytest.mark.skipif(not onnxruntime_available(), reason="onnxruntime not installed")
CPU = torch.device("cpu")
SPECS = [InputSpec(), InputSpec("bgr", (0.45, 0.5, 0.55), (0.2, 0.25, 0.3))]


def _net(arch: str, seed: int = 0) -> SkinNet:
    torch.manual_seed(seed)
    net = SkinNet(arch).eval()
    with torch.no_grad():  # livelier weights than the default init, so the outputs spread over 0..1
        for p in net.parameters():
            p.mul_(3.0)
    return net


def _frames(b: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (b, h, w, 3), dtype=np.uint8)


@needs_ort
@pytest.mark.parametrize("arch", list(ARCHITECTURES))
@pytest.mark.parametrize("spec", SPECS, ids=["rgb", "bgr"])
def test_engines_agree(arch: str, spec: InputSpec, monkeypatch: pytest.MonkeyPatch) -> None:
    net = _net(arch)
    frames = _frames(2, 71, 97)
    # the person prior (archs that take one): a smooth blob, so the 4th channel matters
    yy, xx = np.mgrid[:71, :97]
    blob = np.exp(-((yy - 35) ** 2 + (xx - 50) ** 2) / 600.0)
    prior = np.stack([np.rint(255 * blob), np.rint(255 * blob[::-1])]).astype(np.uint8) if ARCHITECTURES[arch].prior else None
    if ARCHITECTURES[arch].face:  # the face map (5th channel): 255 inside an ellipse, 0 outside
        face = ((yy - 30) ** 2 / 300.0 + (xx - 45) ** 2 / 150.0 <= 1).astype(np.uint8) * 255
        prior = np.stack([prior, np.stack([face, face[:, ::-1]])], -1)
    ref_p, ref_a = TorchEngine(net, spec, CPU).probabilities_and_activations(frames, prior)
    ort = OnnxEngine(net_state(net), arch, spec, "cpu", threads=2)
    p, a = ort.probabilities_and_activations(frames, prior)
    assert p.shape == ref_p.shape == (2, 71, 97) and a.shape == ref_a.shape == (2, 32, 71, 97)
    assert np.abs(p - ref_p).max() < 1e-5 and np.abs(a - ref_a).max() < 1e-5
    if prior is not None:  # the prior is an input that changes the answer, in both engines alike
        flat = np.zeros_like(prior)
        assert np.abs(ort.probabilities(frames, flat) - p).max() > 1e-2
        assert np.abs(ort.probabilities(frames, flat) - TorchEngine(net, spec, CPU).probabilities(frames, flat)).max() < 1e-5
        with pytest.raises(ValueError, match="needs the prior maps"):
            ort.probabilities(frames)
    if ARCHITECTURES[arch].face:  # the face map alone changes the answer too, in both engines alike
        no_face = prior.copy()
        no_face[..., 1] = 0
        assert np.abs(ort.probabilities(frames, no_face) - p).max() > 1e-2
        assert np.abs(ort.probabilities(frames, no_face)
                      - TorchEngine(net, spec, CPU).probabilities(frames, no_face)).max() < 1e-5
        with pytest.raises(ValueError, match="does not fit"):  # the person prior alone is not enough
            ort.probabilities(frames, prior[..., 0])
    # the strip path (overlapping bands of rows, run on a thread pool) gives the same map
    monkeypatch.setattr(engines, "STRIP_PIXELS", 97 * 4)
    strips = ort.probabilities(frames, prior)
    assert np.abs(strips - ref_p).max() < 1e-5
    assert np.abs(to_mask(strips).astype(int) - to_mask(ref_p).astype(int)).max() <= 1


@needs_ort
@pytest.mark.parametrize("scale", [1.0, 0.5, 0.3])
def test_models_agree_at_any_scale(scale: float, tmp_path: Path) -> None:
    path = save_weights(tmp_path / "w.safetensors", _net("softconv-ctx", 1), WeightsMeta(arch="softconv-ctx", scale=scale))
    frames = _frames(3, 90, 121, seed=2)
    fast, ref = load_model(path, "cpu", "onnxruntime"), load_model(path, "cpu", "torch")
    assert (fast.engine, ref.engine) == ("onnxruntime", "torch")
    a, b = fast.probabilities(frames), ref.probabilities(frames)
    assert a.shape == b.shape == (3, 90, 121)
    assert np.abs(to_mask(a).astype(int) - to_mask(b).astype(int)).max() <= 1
    pa, aa = fast.probabilities_and_activations(frames)
    pb, ab = ref.probabilities_and_activations(frames)
    assert np.abs(pa - pb).max() < 1e-5 and np.abs(aa - ab).max() < 1e-5
    img = _frames(1, 50, 40, seed=3)[0]
    assert np.abs(fast.probability_image(img) - ref.probability_image(img)).max() < 1e-5


@needs_ort
def test_pipeline_same_results_with_either_engine(tmp_path: Path) -> None:
    path = save_weights(tmp_path / "w.safetensors", _net("softconv"), WeightsMeta())
    frames = [_frames(1, 40, 56, seed=i)[0] for i in range(7)]
    out = {}
    for name in ("onnxruntime", "torch"):
        model = load_model(path, "cpu", name)
        res = list(run_frames(model, iter(frames), batch_size=3, want_activations=lambda i: i == 4))
        assert [r.index for r in res] == list(range(7))
        assert [r.activations is not None for r in res] == [i == 4 for i in range(7)]
        out[name] = np.stack([r.prob for r in res])
    assert np.abs(out["onnxruntime"] - out["torch"]).max() < 1e-5


def test_auto_picks_onnxruntime_when_installed() -> None:
    assert pick("auto", "cpu") == ("onnxruntime" if onnxruntime_available() else "torch", "cpu")
    assert pick("torch", "cpu") == ("torch", "cpu")
    with pytest.raises(UsageError, match="unknown engine"):
        pick("tensorrt", "cpu")
    with pytest.raises(DeviceError):
        pick("auto", "tpu")
    assert ENGINES == ("auto", "onnxruntime", "torch")


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_state_shapes_match_the_torch_network(arch: str) -> None:
    assert state_shapes(arch) == {k: tuple(v.shape) for k, v in SkinNet(arch).state_dict().items()}


@needs_ort
def test_onnxruntime_path_does_not_import_torch(tmp_path: Path) -> None:
    code = ("import sys, numpy as np\n"
            "from skinmask.inference import load_model\n"
            f"m = load_model({str(tmp_path / 'w.safetensors')!r}, 'cpu', 'auto')\n"
            "p = m.probabilities(np.zeros((1, 16, 24, 3), np.uint8))\n"
            "assert m.engine == 'onnxruntime' and p.shape == (1, 16, 24), (m.engine, p.shape)\n"
            "assert 'torch' not in sys.modules\n"
            "assert type(m.net).__name__ == 'SkinNet'  # built on demand\n")
    save_weights(tmp_path / "w.safetensors", _net("softconv-ctx"), WeightsMeta(arch="softconv-ctx"))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_missing_onnxruntime_falls_back_or_errors(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    real_import = builtins.__import__

    def no_ort(name: str, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        if name.split(".")[0] in ("onnxruntime", "onnx"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ort)
    assert not onnxruntime_available()
    assert pick("auto", "cpu") == ("torch", "cpu")
    with pytest.raises(UsageError, match="needs the onnxruntime"):
        pick("onnxruntime", "cpu")
    path = save_weights(tmp_path / "w.safetensors", _net("softconv"), WeightsMeta())
    model = load_model(path, "cpu", "auto")
    assert model.engine == "torch" and model.probabilities(_frames(1, 8, 8)).shape == (1, 8, 8)


@needs_ort
def test_cuda_without_cuda_provider_fails_loudly() -> None:
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has CUDA")
    if not torch.cuda.is_available():
        for engine in ENGINES:
            with pytest.raises(DeviceError, match="no CUDA device"):
                pick(engine, "cuda")
    with pytest.raises(DeviceError, match="onnxruntime-gpu"):
        OnnxEngine(net_state(_net("softconv")), "softconv", InputSpec(), "cuda")


def test_skinmodel_without_engine_object_runs_torch() -> None:
    model = SkinModel(net=_net("softconv"), meta=WeightsMeta(), device=CPU)
    assert model.probabilities(_frames(1, 9, 11)).shape == (1, 9, 11)
    assert model.engine == "torch"


def test_engine_option_and_json_record(tmp_path: Path, weights_file: Path) -> None:
    import cv2

    src = tmp_path / "clip.mkv"
    writer = cv2.VideoWriter(str(src), cv2.VideoWriter_fourcc(*"FFV1"), 10, (48, 32))
    for i in range(5):
        writer.write(_frames(1, 32, 48, seed=i)[0])
    writer.release()
    masks = {}
    for name in ("torch", "onnxruntime") if onnxruntime_available() else ("torch",):
        out = tmp_path / name
        proc = subprocess.run([sys.executable, "-m", "skinmask", "predict", str(src), "-o", str(out), "--engine", name,
                               "-w", str(weights_file), "--json", "-q"], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        record = json.loads(proc.stdout.splitlines()[0])
        assert record["engine"] == name and record["frames"] == 5
        cap = cv2.VideoCapture(str(out / "clip.mkv"))
        frames = []
        while True:
            ok, f = cap.read()
            if not ok:
                break
            frames.append(f[:, :, 0].astype(int))
        masks[name] = np.stack(frames)
    if len(masks) == 2:
        assert np.abs(masks["torch"] - masks["onnxruntime"]).max() <= 1
    proc = subprocess.run([sys.executable, "-m", "skinmask", "predict", str(src), "-o", str(tmp_path / "x"),
                           "--engine", "nope"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "nope" in proc.stderr


@needs_ort
def test_built_graphs_are_cached_and_a_cached_model_runs_without_importing_onnx(tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The first engine builds its graph with onnx and caches the bytes; the next gives the same map from the
    cache, a process that finds it there never imports onnx, other weights get their own graph, and a damaged
    or unusable cache is rebuilt or skipped."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("SKINMASK_ONNX_CACHE", str(cache))
    net = _net("softconv-ctx")
    state = net_state(net)
    frames = _frames(2, 24, 32)
    first = OnnxEngine(state, "softconv-ctx", InputSpec()).probabilities(frames)
    graphs = sorted(cache.glob("*.onnx"))
    assert len(graphs) == 1 and graphs[0].stat().st_size > 1000
    again = OnnxEngine(state, "softconv-ctx", InputSpec()).probabilities(frames)
    assert np.array_equal(first, again) and sorted(cache.glob("*.onnx")) == graphs
    OnnxEngine(net_state(_net("softconv-ctx", seed=1)), "softconv-ctx", InputSpec())
    assert len(list(cache.glob("*.onnx"))) == 2  # other tensors, another graph
    graphs[0].write_bytes(b"not a graph")  # damaged: built again and rewritten
    assert np.array_equal(OnnxEngine(state, "softconv-ctx", InputSpec()).probabilities(frames), first)
    assert graphs[0].stat().st_size > 1000
    path = save_weights(tmp_path / "w.safetensors", net, WeightsMeta(arch="softconv-ctx", scale=1.0))
    code = (f"import sys; from skinmask.inference import load_model; m = load_model({str(path)!r}, 'cpu', 'onnxruntime');"
            "import numpy as np; m.probabilities(np.zeros((1, 24, 32, 3), np.uint8));"
            "print('onnx' in sys.modules, 'ml_dtypes' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"], out  # the graph came from the cache
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    monkeypatch.setenv("SKINMASK_ONNX_CACHE", str(blocked / "sub"))  # cannot be made: the graph is built each time
    assert np.array_equal(OnnxEngine(state, "softconv-ctx", InputSpec()).probabilities(frames), first)
