"""Named architectures of the skin networks, without torch (so the fast engine never needs to import it).

The networks themselves are built from these specs in :mod:`skinmask.model`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

N_FILTERS = 32
# The person prior, when an architecture takes it, is a 4th input channel: uint8 probability p8 (0..255) at
# the working size, normalised like the pixels: x = (p8 / 255 - 0.5) / 0.5.
PRIOR_MEAN, PRIOR_STD = 0.5, 0.5


@dataclass(frozen=True)
class ArchSpec:
    """What a named architecture is built from."""

    name: str
    stem_channels: tuple[int, ...]  # output channels of each stem conv (empty: no stem)
    stem_dilations: tuple[int, ...]  # dilation of each stem conv
    description: str
    prior: bool = False  # takes the person probability of the weights' prior network as a 4th input channel

    @property
    def in_channels(self) -> int:
        """Input channels of the first convolution: RGB, plus the person prior where the arch takes one."""
        return 3 + int(self.prior)

    @property
    def summary(self) -> str:
        """The description with what follows from the spec: receptive field and multiply-adds per pixel."""
        side = 2 * receptive_radius(self.name) + 1
        macs = sum(math.prod(shape) for key, shape in state_shapes(self.name).items() if key.endswith("weight"))
        return f"{self.description} (receptive field {side}x{side}; {macs:,} MACs per working pixel)"


ARCHITECTURES: dict[str, ArchSpec] = {
    "softconv": ArchSpec("softconv", (), (), "the seed net: 3x3 conv -> 32 tanh -> 1x1 projection"),
    "softconv-ctx": ArchSpec(
        "softconv-ctx",
        (6, 8, 8),
        (1, 2, 4),
        "3x3 (6), dilated 3x3 d=2 (8), d=4 (8) stem -> 3x3 conv -> 32 tanh -> 1x1 projection",
    ),
    "softconv-ctx8": ArchSpec(
        "softconv-ctx8",
        (6, 8, 8, 8),
        (1, 2, 4, 8),
        "3x3 (6), dilated 3x3 d=2 (8), d=4 (8), d=8 (8) stem -> 3x3 conv -> 32 tanh -> 1x1 projection",
    ),
    "softconv-ctx4": ArchSpec(
        "softconv-ctx4",
        (4, 4, 4),
        (1, 2, 4),
        "3x3, dilated 3x3 (d=2, d=4) stem, 4 channels -> 3x3 conv -> 32 tanh -> 1x1 projection, "
        "measured 1.7x faster than softconv-ctx",
    ),
    "softconv-ctx16": ArchSpec(
        "softconv-ctx16",
        (16, 16, 16),
        (1, 2, 4),
        "3x3, dilated 3x3 (d=2, d=4) stem, 16 channels -> 3x3 conv -> 32 tanh -> 1x1 projection",
    ),
    "softconv-prior": ArchSpec(
        "softconv-prior",
        (6, 8, 8),
        (1, 2, 4),
        "RGB + person prior (4 channels) -> 3x3 (6), dilated 3x3 d=2 (8), d=4 (8) stem -> 3x3 conv -> 32 tanh "
        "-> 1x1 projection",
        prior=True,
    ),
    "softconv-prior8": ArchSpec(
        "softconv-prior8",
        (6, 8, 8, 8),
        (1, 2, 4, 8),
        "RGB + person prior (4 channels) -> 3x3 (6), dilated 3x3 d=2 (8), d=4 (8), d=8 (8) stem -> 3x3 conv "
        "-> 32 tanh -> 1x1 projection",
        prior=True,
    ),
}


def receptive_radius(arch: str) -> int:
    """Context radius in pixels: 1 for conv1, plus the dilation of each stem conv."""
    return 1 + sum(ARCHITECTURES[arch].stem_dilations)


def state_shapes(arch: str) -> dict[str, tuple[int, ...]]:
    """Name and shape of every tensor in the state_dict of ``SkinNet(arch)``."""
    spec = ARCHITECTURES[arch]
    shapes: dict[str, tuple[int, ...]] = {}
    in_ch = spec.in_channels
    for i, out_ch in enumerate(spec.stem_channels):  # stem = [conv, relu] * n
        shapes[f"stem.{2 * i}.weight"], shapes[f"stem.{2 * i}.bias"] = (out_ch, in_ch, 3, 3), (out_ch,)
        in_ch = out_ch
    shapes["conv1.weight"], shapes["conv1.bias"] = (N_FILTERS, in_ch, 3, 3), (N_FILTERS,)
    shapes["softconv.weight"], shapes["softconv.bias"] = (1, N_FILTERS, 1, 1), (1,)
    return shapes
