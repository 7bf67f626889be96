"""Named architectures of the skin networks, without torch (so the fast engine never needs to import it).

The networks themselves are built from these specs in :mod:`skinmask.model`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

N_FILTERS = 32
# The context branch (architectures with ``ArchSpec.context``): the input average-pooled by CONTEXT_POOL
# (ceil mode), a stride-2 3x3 conv to 1/8 of the working size, 3x3 convs at the dilations CONTEXT_DILATIONS
# there (ReLU after each), a 1x1 conv to the stem's last width, bilinearly upsampled to the working size and
# added to the stem's output: the 32 filters read fine local features plus a view ~125 working pixels wide.
CONTEXT_POOL = 4
CONTEXT_DILATIONS = (1, 2, 4)
# The person prior, when an architecture takes it, is a 4th input channel: uint8 probability p8 (0..255) at
# the working size, normalised like the pixels: x = (p8 / 255 - 0.5) / 0.5.
PRIOR_MEAN, PRIOR_STD = 0.5, 0.5
# The face map, when an architecture takes it, is the 5th channel, after the person prior: 255 inside the convex
# hull of Face Mesh's 468 points of every face BlazeFace finds (skinmask.face.FaceMaps), 0 elsewhere, at the
# working size and normalised like the prior.
PERSON_LEVEL = 128  # the prior level (0..255) from which a pixel counts as person in the frame's person share
# State-dict prefixes of the layers that run once a frame (on frame-level inputs), not per pixel.
FRAME_LEVEL = ("global_context.", "person_share.")


@dataclass(frozen=True)
class ArchSpec:
    """What a named architecture is built from."""

    name: str
    stem_channels: tuple[int, ...]  # output channels of each stem conv (empty: no stem)
    stem_dilations: tuple[int, ...]  # dilation of each stem conv
    description: str
    prior: bool = False  # takes the person probability of the weights' prior network as a 4th input channel
    context: int = 0  # >0: channels of the low-resolution context branch (see CONTEXT_* below); 0: none
    global_context: bool = False  # the context branch's features also read their mean over the whole frame
    person_share: bool = False  # the context branch's features also read the share of the frame the prior calls person
    face: bool = False  # also takes the face map (faces found by the weights' face networks) as a 5th input channel

    @property
    def prior_channels(self) -> int:
        """Input channels after RGB: the person prior, then the face map, where the arch takes them."""
        return int(self.prior) + int(self.face)

    @property
    def in_channels(self) -> int:
        """Input channels of the first convolution: RGB, plus the person prior and face map where the arch takes them."""
        return 3 + self.prior_channels

    @property
    def summary(self) -> str:
        """The description with what follows from the spec: receptive field and multiply-adds per pixel."""
        side = 2 * max(receptive_radius(self.name), context_radius(self.name)) + 1
        macs = round(sum(math.prod(shape) / (CONTEXT_POOL * 2) ** (2 * key.startswith("context."))
                         for key, shape in state_shapes(self.name).items()
                         if key.endswith("weight") and not key.startswith(FRAME_LEVEL)))  # those run once a frame
        field = f"{side}x{side}"
        if self.global_context or self.person_share:
            field = f"the whole frame, {side}x{side} without its frame-level input"
        return f"{self.description} (receptive field {field}; {macs:,} MACs per working pixel)"  # context convs run at 1/8 per side


def _ms_prior(name: str, reads: str = "", inputs: str = "RGB + person prior (4 channels)", **extra: bool) -> ArchSpec:
    """The ``softconv-ms-prior`` layout; ``reads`` says what frame-level input its context branch also reads."""
    return ArchSpec(name, (6, 8, 8), (1, 2, 4),
                    f"{inputs} -> 3x3 (6), dilated 3x3 d=2 (8), d=4 (8) stem + a context branch "
                    f"at 1/8 of the working size (16 channels){reads} -> 3x3 conv -> 32 tanh -> 1x1 projection",
                    prior=True, context=16, **extra)


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
    "softconv-ms": ArchSpec(
        "softconv-ms",
        (6, 8, 8),
        (1, 2, 4),
        "3x3 (6), dilated 3x3 d=2 (8), d=4 (8) stem + a context branch at 1/8 of the working size (16 channels) "
        "-> 3x3 conv -> 32 tanh -> 1x1 projection",
        context=16,
    ),
    "softconv-ms-prior": _ms_prior("softconv-ms-prior"),
    "softconv-gc-prior": _ms_prior(
        "softconv-gc-prior", " whose features also read their mean over the whole frame (a global context: close-up "
        "or scene)", global_context=True),
    "softconv-ps-prior": _ms_prior(
        "softconv-ps-prior", " that also reads the share of the whole frame the prior calls person (is there a "
        "person in this photo, or is it a close-up?)", person_share=True),
    "softconv-face-prior": _ms_prior(
        "softconv-face-prior", inputs="RGB + person prior + face map (5 channels: the faces Face Mesh finds)", face=True),
}


def receptive_radius(arch: str) -> int:
    """Context radius in pixels of the full-resolution path: 1 for conv1, plus the dilation of each stem conv
    (the context branch, if any, is computed on the whole frame first: see :func:`context_radius`)."""
    return 1 + sum(ARCHITECTURES[arch].stem_dilations)


def context_radius(arch: str) -> int:
    """Radius in working pixels that one output pixel depends on through the context branch (0 without one):
    the pooling window, the stride-2 conv and the dilated convs at 1/8, the bilinear upsampling, and conv1."""
    if not ARCHITECTURES[arch].context:
        return 0
    stride = 2 * CONTEXT_POOL
    return CONTEXT_POOL + CONTEXT_POOL + stride * (sum(CONTEXT_DILATIONS) + 1) + 1


def context_layers(arch: str) -> list[tuple[str, int, int]]:
    """(state_dict prefix, dilation, stride) of each 3x3 conv of the context branch, in order, then its 1x1."""
    if not ARCHITECTURES[arch].context:
        return []
    layers = [("context.0", 1, 2)] + [(f"context.{2 * (i + 1)}", d, 1) for i, d in enumerate(CONTEXT_DILATIONS)]
    return layers + [(f"context.{2 * (len(CONTEXT_DILATIONS) + 1)}", 1, 1)]


def state_shapes(arch: str) -> dict[str, tuple[int, ...]]:
    """Name and shape of every tensor in the state_dict of ``SkinNet(arch)``."""
    spec = ARCHITECTURES[arch]
    shapes: dict[str, tuple[int, ...]] = {}
    in_ch = spec.in_channels
    for i, out_ch in enumerate(spec.stem_channels):  # stem = [conv, relu] * n
        shapes[f"stem.{2 * i}.weight"], shapes[f"stem.{2 * i}.bias"] = (out_ch, in_ch, 3, 3), (out_ch,)
        in_ch = out_ch
    if spec.context:
        c_in, layers = spec.in_channels, context_layers(arch)
        for prefix, _, _ in layers[:-1]:
            shapes[f"{prefix}.weight"], shapes[f"{prefix}.bias"] = (spec.context, c_in, 3, 3), (spec.context,)
            c_in = spec.context
        shapes[f"{layers[-1][0]}.weight"], shapes[f"{layers[-1][0]}.bias"] = (in_ch, c_in, 1, 1), (in_ch,)
        if spec.global_context:
            shapes["global_context.weight"], shapes["global_context.bias"] = (c_in, c_in, 1, 1), (c_in,)
        if spec.person_share:
            shapes["person_share.weight"], shapes["person_share.bias"] = (c_in, 1, 1, 1), (c_in,)
    shapes["conv1.weight"], shapes["conv1.bias"] = (N_FILTERS, in_ch, 3, 3), (N_FILTERS,)
    shapes["softconv.weight"], shapes["softconv.bias"] = (1, N_FILTERS, 1, 1), (1,)
    return shapes
