"""The skin networks: 32 tanh filters pooled by a 1x1 projection ("softconv").

Every architecture ends the same way::

    features (B, C, H, W) -> conv1: Conv2d(C, 32, 3, padding=1) -> tanh  = activations (B, 32, H, W)
                          -> softconv: Conv2d(32, 1, 1) -> sigmoid         = skin probability (B, 1, H, W)

The 1x1 convolution is a learned weighted sum across the 32 activation maps (Network-in-Network,
Lin et al. 2014; the attention mask of DeepPhys, Chen & McDuff 2018), so each of its 32 weights says
how much the projection listens to one filter.

- ``softconv``: the seed net, conv1 sees RGB directly (C = 3): 3x3 receptive field.
- ``softconv-ctx``: a slim stem of 3x3 and dilated 3x3 convolutions (6, 8, 8 channels; dilations
  1, 2, 4) before conv1, so the 32 filters see context beyond 3x3 pixels (receptive field 17x17 at
  the working scale). The shipped default runs it at scale 0.4, where it costs less per frame than
  the seed net at full resolution while seeing about 42x42 input pixels.
- ``softconv-ctx16``: the same stem with 16 channels per layer (about 2.8x the cost).
- ``softconv-ctx4`` / ``softconv-ctx8``: 4 channels per stem layer / a fourth stem conv at dilation 8
  (receptive field 33x33); measured in the model card, not shipped.
- ``softconv-prior`` / ``softconv-prior8``: the ``softconv-ctx`` / ``-ctx8`` stems with a 4th input
  channel, the person probability of a whole-frame person segmenter (the weights' prior network,
  :mod:`skinmask.prior`): context from the whole frame, which the network learns when to trust.
- ``softconv-ms`` / ``softconv-ms-prior``: the ``softconv-ctx`` / ``-prior`` stem plus a context branch
  (multi-scale encoder): the input average-pooled 4x, a stride-2 3x3 conv to 1/8 of the working size, three
  dilated 3x3 convs there (d = 1, 2, 4; 16 channels) and a 1x1 conv, bilinearly upsampled and added to the
  stem's output, so the 32 filters see ~147x147 working pixels (a face, a curtain, a belly) for ~5 % more
  multiply-adds per pixel.
- ``softconv-gc-prior``: ``softconv-ms-prior`` whose context features at 1/8 also read their own mean over
  the whole frame (a global-context branch, as in ParseNet): one 16-vector per frame that can tell a
  close-up of skin from a scene with a person in it.
- ``softconv-ps-prior``: ``softconv-ms-prior`` whose context features at 1/8 also read one number of the
  whole frame: the share of it the prior calls person (probability >= 0.5). A frame with a person in it
  can trust the prior outside the person; a close-up of a belly, where the segmenter sees no one, cannot.
  Training gives each crop the share of the photo it was cut from (:func:`person_share` of a crop is not it).
- ``softconv-face-prior``: ``softconv-ms-prior`` with a 5th input channel after the prior, the face map (255
  inside the hulls of the faces the shipped face networks find): where the faces are.

Pure torch: tensors in, tensors out; no files, no OpenCV, no printing.
"""

from __future__ import annotations

import torch
from torch import nn

from .archs import (ARCHITECTURES, CONTEXT_DILATIONS, CONTEXT_POOL, N_FILTERS, PERSON_LEVEL,  # noqa: F401
                    PRIOR_MEAN, PRIOR_STD, ArchSpec, receptive_radius)


def person_share(x: torch.Tensor) -> torch.Tensor:
    """(B, 1, 1, 1): the share of each frame whose person prior (x's 4th channel, normalised) is >= PERSON_LEVEL."""
    level = ((PERSON_LEVEL - 0.5) / 255.0 - PRIOR_MEAN) / PRIOR_STD  # halfway between two uint8 levels: no ties
    return (x[:, 3:4] > level).to(x.dtype).mean(dim=(2, 3), keepdim=True)


class SkinNet(nn.Module):
    """Optional conv stem, then ``conv1`` (32 filters, tanh) and the 1x1 ``softconv`` projection."""

    def __init__(self, arch: str = "softconv") -> None:
        super().__init__()
        if arch not in ARCHITECTURES:
            raise ValueError(f"unknown architecture {arch!r}; known: {', '.join(ARCHITECTURES)}")
        spec = ARCHITECTURES[arch]
        self.arch = arch
        layers: list[nn.Module] = []
        in_ch = spec.in_channels
        for out_ch, dil in zip(spec.stem_channels, spec.stem_dilations):
            layers += [nn.Conv2d(in_ch, out_ch, 3, padding=dil, dilation=dil), nn.ReLU(inplace=True)]
            in_ch = out_ch
        self.stem = nn.Sequential(*layers)
        self.context = nn.Sequential()
        if spec.context:
            c_in, ctx_layers = spec.in_channels, []
            for i, dil in enumerate((1, *CONTEXT_DILATIONS)):
                ctx_layers += [nn.Conv2d(c_in, spec.context, 3, stride=2 if i == 0 else 1, padding=dil, dilation=dil),
                               nn.ReLU(inplace=True)]
                c_in = spec.context
            self.context = nn.Sequential(*ctx_layers, nn.Conv2d(c_in, in_ch, 1))
        # the global context: the frame's mean of the context features, through a 1x1 conv, added back to them
        self.global_context = nn.Conv2d(spec.context, spec.context, 1) if spec.global_context else None
        # the frame's person share, through a 1x1 conv, added to the context features
        self.person_share = nn.Conv2d(1, spec.context, 1) if spec.person_share else None
        self.conv1 = nn.Conv2d(in_ch, N_FILTERS, 3, stride=1, padding=1)
        self.softconv = nn.Conv2d(N_FILTERS, 1, 1)

    @property
    def receptive_radius(self) -> int:
        """Pixels of context on each side that one output pixel depends on."""
        return receptive_radius(self.arch)

    def forward(
        self, x: torch.Tensor, return_activations: bool = False, share: torch.Tensor | None = None
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Skin probability (B, 1, H, W) for normalised input x (B, C, H, W) (C = 3, or 4 with the person
        prior as the last channel); optionally the 32 maps. ``share`` (B, 1, 1, 1): the frame's person share
        where x is a crop of it (``softconv-ps-prior``; default: :func:`person_share` of x, a whole frame)."""
        acts = torch.tanh(self.conv1(self.features(x, share)))  # (B, 32, H, W)
        prob = torch.sigmoid(self.softconv(acts))  # (B, 1, H, W)
        return (prob, acts) if return_activations else prob

    def features(self, x: torch.Tensor, share: torch.Tensor | None = None) -> torch.Tensor:
        """What conv1 reads: the stem's output, plus the upsampled context branch where the arch has one."""
        feats = self.stem(x)  # (B, C, H, W)
        if len(self.context):
            feats = feats + self.context_map(x, share)
        return feats

    def context_map(self, x: torch.Tensor, share: torch.Tensor | None = None) -> torch.Tensor:
        """The context branch at the working size (B, C, H, W): pooled, encoded at 1/8, upsampled."""
        pooled = nn.functional.avg_pool2d(x, CONTEXT_POOL, ceil_mode=True)
        if self.global_context is None and self.person_share is None:
            low = self.context(pooled)
        else:
            h = self.context[:-1](pooled)  # (B, 16, H/8, W/8), after the last ReLU
            if self.global_context is not None:
                h = torch.relu(h + self.global_context(h.mean(dim=(2, 3), keepdim=True)))
            if self.person_share is not None:
                h = torch.relu(h + self.person_share(person_share(x) if share is None else share))
            low = self.context[-1](h)
        return nn.functional.interpolate(low, size=x.shape[-2:], mode="bilinear", align_corners=False)

    def logits(self, x: torch.Tensor, share: torch.Tensor | None = None) -> torch.Tensor:
        """The projection before the sigmoid (B, 1, H, W): what training's losses take."""
        return self.softconv(torch.tanh(self.conv1(self.features(x, share))))


def build_model(arch: str = "softconv") -> SkinNet:
    """A freshly initialised network of the named architecture."""
    return SkinNet(arch)
