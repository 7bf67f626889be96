"""Inference engines: the PyTorch network as defined, or the same network as an ONNX graph in onnxruntime.

PyTorch stays the model's definition and training framework. For inference the network is rebuilt,
weight for weight, as a small ONNX graph (with :mod:`onnx.helper`, straight from the state_dict: no
exporter, no onnxscript, nothing traced) and run by onnxruntime, which on CPU needs about 4x less CPU
time per pixel than eager PyTorch for this net (the tanh fused into the convolution, frames cut into
strips that keep the 32 activation maps in cache). The graph takes the
decoded frames as they are (uint8, NHWC, BGR) and does the conversion, channel order and
normalisation itself, so Python does no per-pixel work before the model.

``auto`` picks onnxruntime when it is importable (and, for CUDA, when its CUDA provider is), else
torch. The onnxruntime path never imports torch (3 s of a loaded two-core machine's start-up): the
weights are read as numpy arrays, and torch loads only if something asks for ``model.net``.

Both engines expose the same two calls on uint8 BGR frames (B, H, W, 3) at the working size:

- ``probabilities(frames, prior=None) -> (B, H, W) float32``
- ``probabilities_and_activations(frames, prior=None) -> ((B, H, W), (B, 32, H, W)) float32``

``prior`` is the person probability (B, H, W) uint8 (0..255) at the same size, for architectures
that take it (``ArchSpec.prior``; :mod:`skinmask.prior` computes it); the others ignore it.

Building the graph takes a few milliseconds, but importing :mod:`onnx` to build it can take more than a second,
so the serialised graph is cached on disk (:func:`onnx_bytes`); nothing is written beside the weights, and an
unwritable cache only costs the rebuild.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from .archs import (ARCHITECTURES, CONTEXT_POOL, N_FILTERS, PERSON_LEVEL, PRIOR_MEAN, PRIOR_STD, context_layers,
                    receptive_radius)
from .devices import cuda_present, select_device
from .errors import DeviceError, UsageError
from .weights import InputSpec

if TYPE_CHECKING:
    import torch

    from .model import SkinNet

ENGINES = ("auto", "onnxruntime", "torch")
OPSET = 17
INPUT_NAME, PRIOR_NAME, PROB_NAME, ACTS_NAME = "frames", "prior", "prob", "activations"
CONTEXT_NAME = "context"  # the upsampled context map (archs with a context branch; see build_onnx's part)


class Engine(Protocol):
    name: str

    def probabilities(self, frames: np.ndarray, prior: np.ndarray | None = None) -> np.ndarray: ...

    def probabilities_and_activations(self, frames: np.ndarray,
                                      prior: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]: ...


def prior_shape(arch: str, frames_shape: tuple[int, ...]) -> tuple[int, ...]:
    """The shape of the prior maps an arch takes beside frames (B, H, W, 3): (B, H, W) for the person prior
    alone, (B, H, W, K) for K maps (person, face)."""
    k = ARCHITECTURES[arch].prior_channels
    return tuple(frames_shape[:3]) + ((k,) if k > 1 else ())


def _check_prior(arch: str, frames: np.ndarray, prior: np.ndarray | None) -> np.ndarray | None:
    """The prior as the arch needs it: uint8 of :func:`prior_shape` matching the frames, or None for archs
    without one."""
    if not ARCHITECTURES[arch].prior:
        return None
    need = prior_shape(arch, frames.shape)
    if prior is None:
        raise ValueError(f"architecture {arch!r} needs the prior maps {need} uint8 beside the frames")
    if prior.shape != need or prior.dtype != np.uint8:
        raise ValueError(f"prior {prior.shape} {prior.dtype} does not fit frames {frames.shape}: need {need} uint8")
    return np.ascontiguousarray(prior)


# --------------------------------------------------------------------------------------------- torch


def to_input(frames: np.ndarray, spec: InputSpec, device: torch.device, prior: np.ndarray | None = None) -> torch.Tensor:
    """uint8 BGR frames (B, H, W, 3) -> normalised network input (B, 3, H, W) float32; with a uint8 person
    prior (B, H, W) it is the 4th channel, (B, 4, H, W); prior maps (B, H, W, K) are channels 4.. (B, 3 + K, H, W)."""
    import torch

    t = torch.from_numpy(np.ascontiguousarray(frames)).to(device)  # (B, H, W, 3) uint8
    if spec.channel_order == "rgb":
        t = t.flip(-1)
    x = t.permute(0, 3, 1, 2).float()  # (B, 3, H, W)
    std = torch.tensor(spec.std, device=device).view(1, 3, 1, 1)
    mean = torch.tensor(spec.mean, device=device).view(1, 3, 1, 1)
    x = (x / 255.0 - mean) / std
    if prior is None:
        return x
    p = torch.from_numpy(np.ascontiguousarray(prior)).to(device).float()
    p = p[:, None] if p.ndim == 3 else p.permute(0, 3, 1, 2)  # (B, K, H, W)
    return torch.cat([x, (p / 255.0 - PRIOR_MEAN) / PRIOR_STD], dim=1)  # (B, 3 + K, H, W)


class TorchEngine:
    """The network as defined, in eager PyTorch (the reference, and the fallback)."""

    name = "torch"

    def __init__(self, net: SkinNet, spec: InputSpec, device: torch.device) -> None:
        self.net, self.spec, self.device = net, spec, device

    def probabilities(self, frames: np.ndarray, prior: np.ndarray | None = None) -> np.ndarray:
        import torch

        prior = _check_prior(self.net.arch, frames, prior)
        with torch.inference_mode():
            prob = self.net(to_input(frames, self.spec, self.device, prior))  # (B, 1, H, W)
            return prob[:, 0].float().cpu().numpy()

    def probabilities_and_activations(self, frames: np.ndarray,
                                      prior: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        import torch

        prior = _check_prior(self.net.arch, frames, prior)
        with torch.inference_mode():
            prob, acts = self.net(to_input(frames, self.spec, self.device, prior), return_activations=True)
            return prob[:, 0].float().cpu().numpy(), acts.float().cpu().numpy()


# --------------------------------------------------------------------------------------- onnxruntime


def onnxruntime_available() -> bool:
    """True when onnxruntime imports and onnx is installed (it builds the graphs; it is imported only to build one
    that is not cached yet: see :func:`onnx_bytes`)."""
    import importlib.util

    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    try:
        return importlib.util.find_spec("onnx") is not None
    except (ImportError, ValueError):
        return False


def onnx_cache_dir() -> Path:
    """Where built graphs are kept: SKINMASK_ONNX_CACHE, else $XDG_CACHE_HOME/skinmask/onnx (~/.cache/...)."""
    env = os.environ.get("SKINMASK_ONNX_CACHE")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "skinmask" / "onnx"


def _graph_key(state: Mapping[str, np.ndarray], arch: str, spec: InputSpec, activations: bool, part: str) -> str:
    """What a built graph depends on: the tensors, the arch, the input convention, the outputs, and this module's
    code (a changed builder never reuses an old graph)."""
    h = hashlib.sha256(Path(__file__).read_bytes())
    h.update(json.dumps([arch, asdict(spec), activations, part]).encode())
    for name in sorted(state):
        v = np.ascontiguousarray(state[name], np.float32)
        h.update(f"{name}{v.shape}".encode())
        h.update(v.tobytes())
    return h.hexdigest()[:32]


def onnx_bytes(state: Mapping[str, np.ndarray], arch: str, spec: InputSpec, activations: bool = False,
               part: str = "full", refresh: bool = False) -> bytes:
    """:func:`build_onnx`'s graph, serialised, from the cache when it holds it (importing onnx costs more than a
    second on some machines, most of a single image's run); built and cached (written then renamed) otherwise, or
    with ``refresh``. A cache that cannot be read or written is skipped."""
    from .atomic import atomic_path

    key = _graph_key(state, arch, spec, activations, part)
    path = onnx_cache_dir() / f"{arch}-{'acts' if activations else 'prob'}-{part}-{key}.onnx"
    if not refresh:
        try:
            return path.read_bytes()
        except OSError:
            pass
    data = build_onnx(state, arch, spec, activations=activations, part=part).SerializeToString()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            tmp.write_bytes(data)
    except OSError:
        pass
    return data


def net_state(net: SkinNet) -> dict[str, np.ndarray]:
    """A torch network's state_dict as float32 numpy arrays (what :func:`build_onnx` takes)."""
    return {k: v.detach().cpu().float().numpy() for k, v in net.state_dict().items()}


def build_onnx(state: Mapping[str, np.ndarray], arch: str, spec: InputSpec, activations: bool = False,
               part: str = "full") -> Any:
    """The network as an ONNX ModelProto taking uint8 BGR frames (N, H, W, 3), giving ``prob`` (N, H, W).

    ``state`` is the state_dict of ``SkinNet(arch)`` as numpy arrays. Preprocessing is folded in
    exactly: the graph subtracts 255 * mean (so zero padding means what it means in PyTorch, where the
    normalised input is padded with zeros), and the 1 / (255 * std) scale and the BGR -> RGB swap go
    into the first convolutions' weights. Architectures with a person prior take a second input,
    ``prior`` (N, H, W) uint8, centred the same way and concatenated as the 4th channel. With
    ``activations`` the 32 tanh maps (N, 32, H, W) are a second output.

    For architectures with a context branch, ``part`` splits the graph so the full-resolution path can run
    in strips: ``"context"`` gives only the context branch's low-resolution map ``context`` (N, C, h, w) of whole
    frames, ``"main"`` takes that map upsampled to the input's size (bilinear, half-pixel centres, as
    ``torch.nn.functional.interpolate``), channels last (N, H, W, C), instead of computing it; ``"full"``
    (default) is the whole network.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}")
    arch_spec = ARCHITECTURES[arch]
    if part not in ("full", "context", "main") or (part != "full" and not arch_spec.context):
        raise ValueError(f"part {part!r} of architecture {arch!r}")
    w64 = {k: np.asarray(v, np.float64) for k, v in state.items()}
    # (state_dict prefix, dilation, activation) of every convolution, in order
    layers = [(f"stem.{2 * i}", d, "Relu") for i, d in enumerate(arch_spec.stem_dilations)]
    layers += [("conv1", 1, "Tanh"), ("softconv", 1, "Sigmoid")]
    order = [2, 1, 0] if spec.channel_order == "rgb" else [0, 1, 2]  # network channel k reads BGR channel order[k]
    mean_bgr, std_bgr = np.empty(3), np.empty(3)
    for k, c in enumerate(order):
        mean_bgr[c], std_bgr[c] = spec.mean[k], spec.std[k]

    inits: list[Any] = []
    nodes: list[Any] = []

    def const(name: str, arr: np.ndarray, dtype: Any = np.float32) -> str:
        inits.append(numpy_helper.from_array(np.asarray(arr, dtype), name))
        return name

    def fold_input(w: np.ndarray) -> np.ndarray:
        """A conv reading the network input: its channel c reads BGR channel c scaled by 1 / (255 std)."""
        w_bgr = np.empty_like(w)
        for k, c in enumerate(order):
            w_bgr[:, c] = w[:, k] / (255.0 * std_bgr[c])
        if arch_spec.prior:  # channels 4..: the centred prior maps, scaled by 1 / (255 std)
            w_bgr[:, 3:] = w[:, 3:] / (255.0 * PRIOR_STD)
        return w_bgr

    def conv(x: str, prefix: str, dil: int, stride: int, first: bool) -> str:
        w, b = w64[f"{prefix}.weight"], w64[f"{prefix}.bias"]
        k = int(w.shape[-1])
        pad = dil * (k // 2)  # "same" padding, as in SkinNet
        nodes.append(helper.make_node(
            "Conv", [x, const(f"{prefix}.weight", fold_input(w) if first else w), const(f"{prefix}.bias", b)],
            [f"{prefix}_conv"], kernel_shape=[k, k], dilations=[dil, dil], pads=[pad] * 4, strides=[stride, stride],
        ))
        return f"{prefix}_conv"

    nodes.append(helper.make_node("Transpose", [INPUT_NAME], ["nchw_u8"], perm=[0, 3, 1, 2]))
    nodes.append(helper.make_node("Cast", ["nchw_u8"], ["nchw"], to=TensorProto.FLOAT))
    nodes.append(helper.make_node("Sub", ["nchw", const("mean255", (255.0 * mean_bgr).reshape(1, 3, 1, 1))], ["centred"]))
    x = "centred"
    inputs = [helper.make_tensor_value_info(INPUT_NAME, TensorProto.UINT8, ["N", "H", "W", 3])]
    if arch_spec.prior:
        k = arch_spec.prior_channels
        inputs.append(helper.make_tensor_value_info(PRIOR_NAME, TensorProto.UINT8, ["N", "H", "W"] + ([k] if k > 1 else [])))
        if k > 1:  # (N, H, W, K) -> (N, K, H, W)
            nodes.append(helper.make_node("Transpose", [PRIOR_NAME], ["prior_u8"], perm=[0, 3, 1, 2]))
        else:
            nodes.append(helper.make_node("Unsqueeze", [PRIOR_NAME, const("prior_axes", [1], np.int64)], ["prior_u8"]))
        nodes.append(helper.make_node("Cast", ["prior_u8"], ["prior_f"], to=TensorProto.FLOAT))
        nodes.append(helper.make_node("Sub", ["prior_f", const("prior_mean255", [255.0 * PRIOR_MEAN])], ["prior_c"]))
        nodes.append(helper.make_node("Concat", ["centred", "prior_c"], ["centred4"], axis=1))
        x = "centred4"
    context = None
    if part == "main":  # the upsampled context map comes in channels-last, as OpenCV resizes it
        inputs.append(helper.make_tensor_value_info(CONTEXT_NAME, TensorProto.FLOAT, ["N", "H", "W", "C"]))
        nodes.append(helper.make_node("Transpose", [CONTEXT_NAME], ["ctx_nchw"], perm=[0, 3, 1, 2]))
        context = "ctx_nchw"
    elif arch_spec.context:  # SkinNet.context_map: pool, encode at 1/8, upsample to the input's size
        nodes.append(helper.make_node("AveragePool", [x], ["ctx_pooled"], kernel_shape=[CONTEXT_POOL] * 2,
                                      strides=[CONTEXT_POOL] * 2, ceil_mode=1, count_include_pad=0))
        c, ctx_layers = "ctx_pooled", context_layers(arch)
        for i, (prefix, dil, stride) in enumerate(ctx_layers):
            c = conv(c, prefix, dil, stride, first=i == 0)
            if i < len(ctx_layers) - 1:  # ReLU after each 3x3; the last, the 1x1 projection, has none
                nodes.append(helper.make_node("Relu", [c], [f"{prefix}_relu"]))
                c = f"{prefix}_relu"
            if i == len(ctx_layers) - 2 and arch_spec.global_context:  # + 1x1 conv of the frame's mean, ReLU
                nodes.append(helper.make_node("GlobalAveragePool", [c], ["ctx_mean"]))
                g = conv("ctx_mean", "global_context", 1, 1, first=False)
                nodes.append(helper.make_node("Add", [c, g], ["ctx_global"]))
                nodes.append(helper.make_node("Relu", ["ctx_global"], ["ctx_global_relu"]))
                c = "ctx_global_relu"
            if i == len(ctx_layers) - 2 and arch_spec.person_share:  # + 1x1 conv of the frame's person share, ReLU
                level = const("person_level", [PERSON_LEVEL - 0.5 - 255.0 * PRIOR_MEAN])  # prior_c is prior - 127.5
                nodes.append(helper.make_node("Greater", ["prior_c", level], ["person_px"]))
                nodes.append(helper.make_node("Cast", ["person_px"], ["person_pxf"], to=TensorProto.FLOAT))
                nodes.append(helper.make_node("ReduceMean", ["person_pxf"], ["share"], axes=[2, 3], keepdims=1))
                g = conv("share", "person_share", 1, 1, first=False)
                nodes.append(helper.make_node("Add", [c, g], ["ctx_share"]))
                nodes.append(helper.make_node("Relu", ["ctx_share"], ["ctx_share_relu"]))
                c = "ctx_share_relu"
        if part == "context":  # low resolution: the engine upsamples it (OpenCV: ~4x less CPU than Resize here)
            nodes.append(helper.make_node("Identity", [c], [CONTEXT_NAME]))
        else:
            nodes.append(helper.make_node("Shape", [c], ["ctx_shape"]))
            nodes.append(helper.make_node("Shape", [x], ["in_shape"]))
            nodes.append(helper.make_node("Slice", ["ctx_shape", const("s0", [0], np.int64), const("s2", [2], np.int64)],
                                          ["nc"]))
            nodes.append(helper.make_node("Slice", ["in_shape", "s2", const("s4", [4], np.int64)], ["hw"]))
            nodes.append(helper.make_node("Concat", ["nc", "hw"], ["ctx_sizes"], axis=0))
            context = "ctx_up"
            nodes.append(helper.make_node("Resize", [c, "", "", "ctx_sizes"], [context], mode="linear",
                                          coordinate_transformation_mode="half_pixel"))
    if part == "context":
        outputs = [helper.make_tensor_value_info(CONTEXT_NAME, TensorProto.FLOAT, ["N", "C", "h", "w"])]
    else:
        for i, (prefix, dil, act) in enumerate(layers):
            y = conv(x, prefix, dil, 1, first=i == 0)
            x = {"Tanh": ACTS_NAME, "Sigmoid": "prob4"}.get(act, f"{prefix}_{act.lower()}")
            nodes.append(helper.make_node(act, [y], [x]))
            if context is not None and i == len(arch_spec.stem_dilations) - 1:  # conv1 reads stem + context
                nodes.append(helper.make_node("Add", [x, context], ["features"]))
                x = "features"
        nodes.append(helper.make_node("Squeeze", ["prob4", const("squeeze_axes", [1], np.int64)], [PROB_NAME]))
        outputs = [helper.make_tensor_value_info(PROB_NAME, TensorProto.FLOAT, ["N", "H", "W"])]
        if activations:
            outputs.append(helper.make_tensor_value_info(ACTS_NAME, TensorProto.FLOAT, ["N", N_FILTERS, "H", "W"]))
    graph = helper.make_graph(nodes, f"skinmask_{arch}_{part}", inputs, outputs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="skinmask")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


# Pixels per onnxruntime call on CPU: the 32 float activation maps of a strip this size (8 MB) stay in
# cache, instead of 265 MB per 1080p frame going through memory. Measured 2-4x faster at 1080p.
STRIP_PIXELS = 64 * 1024
# Working pixels whose upsampled context maps (archs with a context branch) are held at once: 8 MB at C = 8.
CONTEXT_PIXELS = 256 * 1024


def _session_options(threads: int, arch: str) -> Any:
    # ALL adds onnxruntime's blocked NCHWc layouts: measured 7-10% less CPU per frame for the stem nets (their
    # 4-8 channel convs gain most), slower for the seed net's single conv. SKINMASK_ORT_LEVEL overrides (benchmarks).
    return session_options(threads, "ALL" if ARCHITECTURES[arch].stem_channels else "EXTENDED")


def session_options(threads: int, level: str = "ALL") -> Any:
    """onnxruntime options for one CPU-friendly session: ``threads`` intra-op threads, no spinning, quiet logs."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    level = os.environ.get("SKINMASK_ORT_LEVEL", level).upper()
    so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, f"ORT_ENABLE_{level}",
                                          ort.GraphOptimizationLevel.ORT_ENABLE_ALL)
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    # Strips are small and the cores may be shared: threads that spin waiting for work steal them.
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.log_severity_level = 3
    return so


class OnnxEngine:
    """The network as an ONNX graph in onnxruntime (CPU, or CUDA through its CUDA provider).

    The probability-only session is built at load time; the one that also returns the 32 activation
    maps (grids, visualize) is built on first use.
    """

    name = "onnxruntime"

    def __init__(self, state: Mapping[str, np.ndarray], arch: str, spec: InputSpec, device: str = "cpu",
                 threads: int | None = None) -> None:
        import onnxruntime as ort

        self.state, self.arch, self.spec, self.device = state, arch, spec, str(device)
        if self.device.startswith("cuda"):
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise DeviceError(f"--device {device} with --engine onnxruntime needs onnxruntime-gpu (this "
                                  f"onnxruntime {ort.__version__} has only {', '.join(ort.get_available_providers())});"
                                  " use --engine torch or install onnxruntime-gpu")
            idx = int(self.device.partition(":")[2] or 0)
            self.providers: list[Any] = [("CUDAExecutionProvider", {"device_id": idx}), "CPUExecutionProvider"]
        else:
            self.providers = ["CPUExecutionProvider"]
        self.threads = threads or default_threads()
        self.radius = receptive_radius(arch)
        self.strips = self.device == "cpu"
        self._lock = threading.Lock()
        # On CPU, strips run in parallel on a pool (one thread per core, single-threaded session runs).
        self._pool: ThreadPoolExecutor | None = None
        if self.strips and self.threads > 1:
            self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="skinmask-ort")
        session_threads = 1 if self.strips else self.threads
        # A context branch sees far beyond a strip: it runs first on whole frames (at 1/8 of the pixels, cheap),
        # and the strips of the full-resolution path read their rows of its upsampled map.
        split = self.strips and bool(ARCHITECTURES[arch].context)
        self._context_session: Any = self._session(False, self.threads, part="context") if split else None
        self._prob_session = self._session(activations=False, threads=session_threads, part="main" if split else "full")
        self._acts_session: Any = None

    def _session(self, activations: bool, threads: int, part: str = "full") -> Any:
        import onnxruntime as ort

        args, options = (self.state, self.arch, self.spec, activations, part), _session_options(threads, self.arch)
        try:
            return ort.InferenceSession(onnx_bytes(*args), options, providers=self.providers)
        except Exception:  # noqa: BLE001 - a damaged cached graph: build it again (a real error recurs below)
            return ort.InferenceSession(onnx_bytes(*args, refresh=True), options, providers=self.providers)

    def _feeds(self, frames: np.ndarray, prior: np.ndarray | None,
               context: np.ndarray | None = None) -> dict[str, np.ndarray]:
        feeds = {INPUT_NAME: frames}
        if prior is not None:
            feeds[PRIOR_NAME] = prior
        if context is not None:
            feeds[CONTEXT_NAME] = context
        return feeds

    def _context(self, frames: np.ndarray, prior: np.ndarray | None) -> np.ndarray | None:
        """The upsampled context map (B, H, W, C) of whole frames, for the split graph; None without one."""
        if self._context_session is None:
            return None
        import cv2

        (low,) = self._context_session.run([CONTEXT_NAME], self._feeds(frames, prior))  # (B, C, h, w)
        b, c = low.shape[:2]
        h, w = frames.shape[1:3]
        out = np.empty((b, h, w, c), np.float32)
        for i in range(b):  # bilinear, half-pixel centres: torch's interpolate and ONNX Resize to within 1e-6
            out[i] = cv2.resize(np.ascontiguousarray(low[i].transpose(1, 2, 0)), (w, h),
                                interpolation=cv2.INTER_LINEAR).reshape(h, w, c)
        return out

    def probabilities(self, frames: np.ndarray, prior: np.ndarray | None = None) -> np.ndarray:
        frames = np.ascontiguousarray(frames)
        prior = _check_prior(self.arch, frames, prior)
        b, h, w = frames.shape[:3]
        rows = max(STRIP_PIXELS // max(1, w), 8 * self.radius)  # halo rows cost at most 1/4 more
        if not self.strips or (rows >= h and b * h * w <= STRIP_PIXELS):
            (prob,) = self._prob_session.run([PROB_NAME], self._feeds(frames, prior, self._context(frames, prior)))
            return prob
        # Overlapping strips of rows of one frame: each carries `radius` rows of context on both sides,
        # so every kept row sees exactly what it sees in the whole frame (same result, bounded memory).
        out = np.empty((b, h, w), np.float32)
        r = self.radius

        def strip(i: int, y0: int, context: np.ndarray | None) -> None:
            y1 = min(y0 + rows, h)
            ya, yb = max(y0 - r, 0), min(y1 + r, h)
            part = None if prior is None else prior[i : i + 1, ya:yb]
            rows_ctx = None if context is None else context[:, ya:yb]  # channels last: a view, no copy
            (p,) = self._prob_session.run([PROB_NAME], self._feeds(frames[i : i + 1, ya:yb], part, rows_ctx))
            out[i, y0:y1] = p[0, y0 - ya : y1 - ya]

        if self._context_session is None:
            self._run_all(strip, [(i, y0, None) for i in range(b) for y0 in range(0, h, rows)])
        else:  # the context maps of a few frames at a time (C floats a pixel: a whole batch's would be large)
            n = max(1, CONTEXT_PIXELS // (h * w))
            for g in range(0, b, n):
                context = self._context(frames[g : g + n], None if prior is None else prior[g : g + n])
                self._run_all(strip, [(i, y0, context[i - g : i - g + 1]) for i in range(g, min(g + n, b))
                                      for y0 in range(0, h, rows)])
        return out

    def _run_all(self, fn: Any, tasks: list[tuple]) -> None:
        """fn(*task) for every task, on the strip pool when there is one."""
        if self._pool is None:
            for task in tasks:
                fn(*task)
        else:
            for f in [self._pool.submit(fn, *task) for task in tasks]:
                f.result()

    def probabilities_and_activations(self, frames: np.ndarray,
                                      prior: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        with self._lock:
            if self._acts_session is None:
                self._acts_session = self._session(activations=True, threads=self.threads)
        frames = np.ascontiguousarray(frames)
        prob, acts = self._acts_session.run([PROB_NAME, ACTS_NAME], self._feeds(frames, _check_prior(self.arch, frames, prior)))
        return prob, acts


def default_threads() -> int:
    """Threads for one inference: the cores this process may use (SKINMASK_THREADS overrides)."""
    env = os.environ.get("SKINMASK_THREADS")
    if env and env.isdigit() and int(env) > 0:
        return int(env)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


# ---------------------------------------------------------------------------------------- selection


def pick(engine: str, device: str) -> tuple[str, str]:
    """(engine, device) that will run for the user's --engine and --device: e.g. ("onnxruntime", "cpu").

    ``auto`` engine: onnxruntime when installed and able to run on the device, else torch. ``auto``
    device: CUDA when present. Asking for CUDA where there is none is an error, never a fallback.
    """
    if engine not in ENGINES:
        raise UsageError(f"unknown engine {engine!r}; use {', '.join(ENGINES)}")
    if device == "auto":
        device = "cuda" if cuda_present() else "cpu"
    elif device != "cpu":
        device = str(select_device(device))  # raises DeviceError for unknown or missing devices
    if engine == "torch":
        return "torch", device
    if not onnxruntime_available():
        if engine == "onnxruntime":
            raise UsageError("--engine onnxruntime needs the onnxruntime and onnx packages "
                             "(pip install onnxruntime onnx), or use --engine torch")
        return "torch", device
    if device.startswith("cuda") and engine == "auto":
        import onnxruntime as ort

        if "CUDAExecutionProvider" not in ort.get_available_providers():
            return "torch", device
    return "onnxruntime", device
