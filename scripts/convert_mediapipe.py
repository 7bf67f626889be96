#!/usr/bin/env python3
"""Convert the three MediaPipe networks that ship in the ``mediapipe==0.10.14`` wheel to ONNX (``models/*.onnx``).

The networks (Google MediaPipe, Apache-2.0) are taken from the wheel on PyPI, checked against their known
SHA-256, converted with ``tf2onnx`` (``tf2onnx.convert.from_tflite``, the library call behind
``python -m tf2onnx.convert --tflite X --output Y --opset 17``), given a dynamic batch axis, checked against
the original network on real and random inputs, and written to ``models/<name>.onnx``:

- ``selfie_segmentation``: ``mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite``. Its one
  MediaPipe custom op, ``Convolution2DTransposeBias`` (a stride-2 2x2 transposed convolution plus bias, padding
  SAME: read from the op's custom options), is replaced by an ONNX ``ConvTranspose`` whose weights are the op's
  constant inputs (O,H,W,I -> I,O,H,W). TensorFlow's interpreter cannot run that op, so the reference is
  MediaPipe's own ``SelfieSegmentation`` graph, which runs the original .tflite with MediaPipe's kernel for it:
  on 256x256 RGB inputs its graph does no resampling, so its mask is the network's raw output.
- ``face_detection_short_range`` (BlazeFace) and ``face_landmark`` (Face Mesh): converted as they are and checked
  against ``tf.lite.Interpreter`` running the original .tflite.

The project's runtime never imports mediapipe or tensorflow: they live only in a throwaway tool venv.

How to run (the exact setup used for the shipped files; Python 3.11, the wheel is cp311)::

    python3 -m venv /tmp/mptool
    /tmp/mptool/bin/pip install tensorflow-cpu==2.15.1 "numpy<2" "protobuf>=4.25.3,<5" \
        onnx==1.16.2 onnxruntime==1.32.0 tf2onnx==1.17.0
    /tmp/mptool/bin/pip install --no-deps mediapipe==0.10.14   # only the reference for the selfie net
    /tmp/mptool/bin/pip install absl-py attrs "flatbuffers>=2.0" "opencv-contrib-python<4.11" matplotlib
    /tmp/mptool/bin/python scripts/convert_mediapipe.py [--wheel mediapipe-0.10.14-cp311-...whl] [--out models]

Without ``--wheel`` the wheel is fetched with ``pip download --no-deps mediapipe==0.10.14``. The script prints
each file's SHA-256 and the largest differences from the reference; it exits non-zero (writing nothing for
that network) when a checksum or a check fails.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
WHEEL_NAME = "mediapipe-0.10.14-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
WHEEL_SHA256 = "a807328339e7356fda0bb14df12fedbf1d33bdf81649c5f8666b0026b1cc30b4"
LICENSE_IN_WHEEL = "mediapipe-0.10.14.dist-info/LICENSE"
OPSET = 17
TOLERANCE = 1e-3  # largest absolute difference from the reference accepted


@dataclass(frozen=True)
class Source:
    name: str
    member: str  # path inside the wheel
    sha256: str  # of the .tflite
    input_range: tuple[float, float]  # what the network's float input spans (MediaPipe's ImageToTensor range)


SOURCES = (
    Source("selfie_segmentation", "mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite",
           "9ee168ec7c8f2a16c56fe8e1cfbc514974cbbb7e434051b455635f1bd1462f5c", (0.0, 1.0)),
    Source("face_detection_short_range", "mediapipe/modules/face_detection/face_detection_short_range.tflite",
           "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8", (-1.0, 1.0)),
    Source("face_landmark", "mediapipe/modules/face_landmark/face_landmark.tflite",
           "1055cb9d4a9ca8b8c688902a3a5194311138ba256bcc94e336d8373a5f30c814", (0.0, 1.0)),
)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fetch_wheel(dest: Path) -> Path:
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                    "--python-version", "3.11", "--platform", "manylinux2014_x86_64",
                    "mediapipe==0.10.14", "-d", str(dest)], check=True)
    return dest / WHEEL_NAME


# ------------------------------------------------------------------------------------------ patching


def transpose_conv_bias_options(tflite: bytes) -> list[tuple[int, int, int]]:
    """(padding, stride_w, stride_h) of every Convolution2DTransposeBias op (MediaPipe's TfLiteTransposeConvParams)."""
    from tf2onnx.tflite.Model import Model

    model = Model.GetRootAsModel(tflite, 0)
    graph = model.Subgraphs(0)
    found = []
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        if model.OperatorCodes(op.OpcodeIndex()).CustomCode() == b"Convolution2DTransposeBias":
            raw = op.CustomOptionsAsNumpy().tobytes()
            found.append(tuple(int(v) for v in np.frombuffer(raw[:12], "<i4")))
    return found


def replace_transpose_conv_bias(model, options: list[tuple[int, int, int]]) -> int:
    """Swap tf2onnx's unconverted TFL_Convolution2DTransposeBias nodes for ConvTranspose; returns how many."""
    from onnx import helper, numpy_helper

    g = model.graph
    inits = {t.name: t for t in g.initializer}
    nodes = [n for n in g.node if n.op_type == "TFL_Convolution2DTransposeBias"]
    if len(nodes) != len(options):
        raise SystemExit(f"found {len(nodes)} custom nodes in the ONNX graph but {len(options)} in the .tflite")
    for k, (node, (padding, stride_w, stride_h)) in enumerate(zip(nodes, options)):
        weight = numpy_helper.to_array(inits[node.input[1]])  # (O, kH, kW, I)
        bias = numpy_helper.to_array(inits[node.input[2]])  # (O,)
        kh, kw = weight.shape[1:3]
        # SAME padding (1) with kernel == stride pads nothing: out = in * stride exactly
        if padding != 1 or (kh, kw) != (stride_h, stride_w):
            raise SystemExit(f"unexpected Convolution2DTransposeBias options {padding, stride_w, stride_h}, kernel {kh}x{kw}")
        # tf2onnx feeds the op NHWC through a Transpose of the NCHW tensor: use that tensor directly
        (feeder,) = [n for n in g.node if node.input[0] in n.output]
        if feeder.op_type != "Transpose" or list(feeder.attribute[0].ints) != [0, 2, 3, 1]:
            raise SystemExit("the custom op's input is not an NCHW->NHWC transpose as expected")
        w_name, b_name, nchw = f"{node.output[0]}_W", f"{node.output[0]}_B", f"{node.output[0]}_nchw"
        g.initializer.extend([numpy_helper.from_array(np.ascontiguousarray(weight.transpose(3, 0, 1, 2)), w_name),
                              numpy_helper.from_array(bias.astype(np.float32), b_name)])
        at = list(g.node).index(node)
        g.node.remove(node)
        g.node.insert(at, helper.make_node("Transpose", [nchw], [node.output[0]], perm=[0, 2, 3, 1]))
        g.node.insert(at, helper.make_node("ConvTranspose", [feeder.input[0], w_name, b_name], [nchw],
                                           name=f"{node.output[0]}_convtranspose", kernel_shape=[kh, kw],
                                           strides=[stride_h, stride_w]))
    prune(model)
    return len(nodes)


def prune(model) -> None:
    """Drop nodes whose outputs nobody reads, and initializers no node reads."""
    g = model.graph
    while True:
        used = {x for n in g.node for x in n.input} | {o.name for o in g.output}
        dead = [n for n in g.node if not any(o in used for o in n.output)]
        if not dead:
            break
        for n in dead:
            g.node.remove(n)
    used = {x for n in g.node for x in n.input}
    for t in [t for t in g.initializer if t.name not in used]:
        g.initializer.remove(t)


def drop_identity_reshapes(model) -> int:
    """Remove Reshapes whose output has the input's shape (tf2onnx leaves some, depending on its visit order)."""
    import onnx
    from onnx import numpy_helper

    g = model.graph
    inferred = onnx.shape_inference.infer_shapes(model).graph
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
              for v in list(inferred.value_info) + list(inferred.input) + list(inferred.output)}
    inits = {t.name: t for t in g.initializer}
    outputs = {o.name for o in g.output}
    dropped = 0
    for n in list(g.node):
        if n.op_type != "Reshape" or n.input[1] not in inits or n.output[0] in outputs:
            continue
        src = shapes.get(n.input[0])
        target = numpy_helper.to_array(inits[n.input[1]]).tolist()
        if not src or 0 in src or len(src) != len(target):
            continue
        if all(t == s or (t == 0 and i < len(src)) for i, (t, s) in enumerate(zip(target, src))):
            for m in g.node:
                m.input[:] = [n.input[0] if x == n.output[0] else x for x in m.input]
            g.node.remove(n)
            dropped += 1
    prune(model)
    return dropped


def canonical_names(model) -> None:
    """Rename tensors, nodes and constants by position, so that the same network always gives the same bytes.

    tf2onnx numbers names from a process-wide counter and lists constants in set order.
    """
    g = model.graph
    keep = {v.name for v in list(g.input) + list(g.output)}
    inits = {t.name: t for t in g.initializer}
    names: dict[str, str] = {}
    order: list[str] = []
    for i, n in enumerate(g.node):
        for x in n.input:
            if x in inits and x not in names:
                names[x] = f"const{len(order)}"
                order.append(x)
        for x in n.output:
            if x not in keep:
                names[x] = f"t{i}" if len(n.output) == 1 else f"t{i}_{list(n.output).index(x)}"
        n.name = f"{n.op_type}_{i}"
    for n in g.node:
        n.input[:] = [names.get(x, x) for x in n.input]
        n.output[:] = [names.get(x, x) for x in n.output]
    ordered = [inits[x] for x in order]
    del g.initializer[:]
    for t in ordered:
        t.name = names[t.name]
        g.initializer.append(t)


def dynamic_batch(model) -> None:
    """Batch axis 'N' on inputs and outputs; Reshape targets that hard-code batch 1 copy the input's batch (0)."""
    from onnx import numpy_helper

    g = model.graph
    for v in list(g.input) + list(g.output):
        dim = v.type.tensor_type.shape.dim[0]
        dim.Clear()
        dim.dim_param = "N"
    del g.value_info[:]  # shapes inferred for batch 1
    inits = {t.name: t for t in g.initializer}
    for n in g.node:
        if n.op_type == "Reshape" and n.input[1] in inits:
            shape = numpy_helper.to_array(inits[n.input[1]]).copy()
            if shape.size and shape[0] == 1:
                shape[0] = 0
                inits[n.input[1]].CopyFrom(numpy_helper.from_array(shape.astype(np.int64), n.input[1]))


# ------------------------------------------------------------------------------------------ checking


def sample_inputs(src: Source, size: tuple[int, int], rng: np.random.Generator) -> list[np.ndarray]:
    """Float NHWC inputs in the network's range: the astronaut sample (whole, and its face crop) and noise."""
    import cv2

    h, w = size
    img = cv2.imread(str(REPO / "samples" / "astronaut.jpg"))
    if img is None:
        raise SystemExit("samples/astronaut.jpg is missing")
    face = img[20:230, 130:340]  # the astronaut's head, roughly
    lo, hi = src.input_range
    pictures = [cv2.resize(p, (w, h), interpolation=cv2.INTER_AREA) for p in (img, face)]
    pictures += [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(2)]
    return [(cv2.cvtColor(p, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0 * (hi - lo) + lo)[None] for p in pictures]


def tflite_reference(path: Path, inputs: list[np.ndarray]) -> list[list[np.ndarray]]:
    import tensorflow as tf

    interp = tf.lite.Interpreter(model_path=str(path))
    interp.allocate_tensors()
    (inp,) = interp.get_input_details()
    outs = interp.get_output_details()
    results = []
    for x in inputs:
        interp.set_tensor(inp["index"], x)
        interp.invoke()
        results.append([interp.get_tensor(o["index"]).copy() for o in outs])
    return results


def selfie_reference(inputs: list[np.ndarray]) -> list[list[np.ndarray]]:
    """MediaPipe's SelfieSegmentation graph (original .tflite, MediaPipe's custom op) on 256x256 RGB pictures."""
    import mediapipe as mp

    with mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0) as seg:
        results = []
        for x in inputs:
            rgb = np.round(x[0] * 255.0).astype(np.uint8)  # exact: the inputs are k / 255
            results.append([seg.process(rgb).segmentation_mask[None, :, :, None].astype(np.float32)])
    return results


def check(onnx_bytes: bytes, refs: list[list[np.ndarray]], inputs: list[np.ndarray]) -> list[float]:
    """Largest absolute difference per output, one picture at a time and all in one batch."""
    import onnxruntime as ort

    sess = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    worst = [0.0] * len(refs[0])
    for x, ref in zip(inputs, refs):
        for k, (got, want) in enumerate(zip(sess.run(None, {name: x}), ref)):
            if got.shape != want.shape:
                raise SystemExit(f"output {k}: shape {got.shape}, reference {want.shape}")
            worst[k] = max(worst[k], float(np.abs(got - want).max()))
    batched = sess.run(None, {name: np.concatenate(inputs)})
    for k, got in enumerate(batched):
        want = np.concatenate([r[k] for r in refs])
        worst[k] = max(worst[k], float(np.abs(got - want).max()))
    return worst


# ------------------------------------------------------------------------------------------ main


def convert(src: Source, tflite: bytes, workdir: Path, rng: np.random.Generator) -> bytes:
    import onnx
    import tf2onnx

    path = workdir / Path(src.member).name
    path.write_bytes(tflite)
    model, _ = tf2onnx.convert.from_tflite(str(path), opset=OPSET)
    patched = 0
    options = transpose_conv_bias_options(tflite)
    if options:
        patched = replace_transpose_conv_bias(model, options)
    left = sorted({n.op_type for n in model.graph.node if n.domain not in ("", "ai.onnx")} |
                  {n.op_type for n in model.graph.node if n.op_type.startswith("TFL_")})
    if left:
        raise SystemExit(f"{src.name}: ops left unconverted: {left}")
    drop_identity_reshapes(model)
    dynamic_batch(model)
    canonical_names(model)
    model.doc_string = (f"Google MediaPipe {src.name} (Apache-2.0), converted from {src.member} "
                        f"(sha256 {src.sha256}) in {WHEEL_NAME} by skinmask's scripts/convert_mediapipe.py")
    onnx.checker.check_model(model, full_check=True)
    data = model.SerializeToString()

    shape = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim[1:3]]
    inputs = sample_inputs(src, (shape[0], shape[1]), rng)
    refs = selfie_reference(inputs) if patched else tflite_reference(path, inputs)
    worst = check(data, refs, inputs)
    outs = ", ".join(f"{o.name} {w:.2e}" for o, w in zip(model.graph.output, worst))
    print(f"{src.name}: input {model.graph.input[0].name} (N, {shape[0]}, {shape[1]}, 3) in {src.input_range}; "
          f"patched {patched} custom op(s); max |onnx - reference| over {len(inputs)} inputs (single and batched): "
          f"{outs} (reference: {'MediaPipe graph' if patched else 'tf.lite.Interpreter'})")
    if max(worst) > TOLERANCE:
        raise SystemExit(f"{src.name}: differs from the reference by {max(worst):.3g} > {TOLERANCE}")
    return data


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--wheel", type=Path, help=f"{WHEEL_NAME} (default: pip download it)")
    ap.add_argument("--out", type=Path, default=REPO / "models", help="where the .onnx files go (default: models/)")
    ap.add_argument("--only", choices=[s.name for s in SOURCES], action="append", help="convert only these")
    args = ap.parse_args()
    if os.environ.get("PYTHONHASHSEED") != "0":
        # tf2onnx's graph rewrites visit sets of names: a fixed hash seed makes the output the same bytes each run
        os.environ["PYTHONHASHSEED"] = "0"
        os.execv(sys.executable, [sys.executable, *sys.argv])
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel or fetch_wheel(Path(tmp))
        got = sha256(wheel.read_bytes())
        if got != WHEEL_SHA256:
            raise SystemExit(f"{wheel}: sha256 {got}, expected {WHEEL_SHA256} ({WHEEL_NAME})")
        print(f"wheel {wheel.name} sha256 {got}")
        rng = np.random.default_rng(0)
        args.out.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(wheel) as zf:
            (args.out / "LICENSE.mediapipe").write_bytes(zf.read(LICENSE_IN_WHEEL))
            for src in SOURCES:
                if args.only and src.name not in args.only:
                    continue
                tflite = zf.read(src.member)
                if sha256(tflite) != src.sha256:
                    raise SystemExit(f"{src.member}: sha256 {sha256(tflite)}, expected {src.sha256}")
                data = convert(src, tflite, Path(tmp), rng)
                dest = args.out / f"{src.name}.onnx"
                part = dest.with_name(dest.name + ".tmp")
                part.write_bytes(data)
                part.replace(dest)
                print(f"  wrote {dest} ({len(data)} bytes) sha256 {sha256(data)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
