"""The default's network saved twice, without and with a rule after it, loaded for the engines the rule tests compare."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from skinmask.weights import WeightsMeta, load_weights, save_weights


def rule_models(tmp_path: Path, plain: WeightsMeta, ruled: WeightsMeta, net: Any = None) -> tuple[Any, Any, Any, Path]:
    """(plain on onnxruntime, ruled on onnxruntime, ruled on torch, the ruled file's path): ``net`` (default: the
    shipped default's) saved with each metadata."""
    from skinmask.inference import load_model

    net = load_weights("default")[0] if net is None else net
    plain_path = save_weights(tmp_path / "plain.safetensors", net, plain)
    ruled_path = save_weights(tmp_path / "ruled.safetensors", net, ruled)
    return (load_model(plain_path, "cpu", "onnxruntime"), load_model(ruled_path, "cpu", "onnxruntime"),
            load_model(ruled_path, "cpu", "torch"), ruled_path)
