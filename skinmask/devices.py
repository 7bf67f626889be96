"""Which device runs the network: CUDA when asked for and present, else CPU; never a silent fallback."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import DeviceError

if TYPE_CHECKING:
    import torch


def select_device(device: str = "auto") -> torch.device:
    """'auto' picks CUDA when present; asking for CUDA where there is none is an error, never a fallback."""
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu":
        return torch.device("cpu")
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceError(f"--device {device} asked for, but no CUDA device is available "
                              f"(torch {torch.__version__}, built {'with' if torch.version.cuda else 'without'} CUDA)")
        return torch.device(device)
    raise DeviceError(f"unknown device {device!r}; use auto, cpu or cuda")


def torch_cuda_build() -> bool:
    """Whether the installed torch is a CUDA (or ROCm) build, read from torch/version.py without importing torch."""
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        return False
    try:
        text = (Path(next(iter(spec.submodule_search_locations))) / "version.py").read_text()
    except OSError:
        return True  # cannot tell: let torch answer
    builds = re.findall(r"^(?:cuda|hip)\b[^=\n]*=\s*(.+)$", text, re.M)
    return not builds or any(b.strip() not in ("None", "'None'", '"None"') for b in builds)


def cuda_present() -> bool:
    """A CUDA device is usable (imports torch only when torch is a CUDA build)."""
    if not torch_cuda_build():
        return False
    import torch

    return bool(torch.cuda.is_available())
