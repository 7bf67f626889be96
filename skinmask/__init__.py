"""skinmask: skin masks from images and videos with a 1x1-projection ("softconv") network.

    import skinmask
    model = skinmask.load_model()                 # the shipped default weights
    mask = skinmask.predict(model, bgr_uint8)     # (H, W) uint8, probability x 255

Heavy modules (torch, OpenCV) load on first use, so importing skinmask is instant.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "load_model": "inference",
    "predict": "inference",
    "to_mask": "maps",
    "SkinModel": "inference",
    "read_image": "media",
    "VideoReader": "media",
    "TimedFrame": "media",
    "iter_frames": "pipeline",
    "run_frames": "pipeline",
    "SkinmaskError": "errors",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module = importlib.import_module(f".{_LAZY[name]}", __name__)
        return getattr(module, name)
    raise AttributeError(f"module 'skinmask' has no attribute {name!r}")
