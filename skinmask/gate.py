"""The person gate: in a scene, skin outside every person the prior finds is dropped; a close-up keeps its skin.

A hard gate (the mask times ``person >= 0.5``) removes the walls, ground and curtains a street or group photo
calls skin, but it also removes a belly close-up the segmenter does not see as a person. What tells the two
apart is how much of the frame the network itself calls skin: a few per cent in a scene, most of it in a
close-up. So each frame's gate weight ramps from 1 (skin share at or below ``lo``) to 0 (at or above ``hi``),
and a pixel's probability outside the person is scaled by ``1 - weight``. Inside the person nothing changes, and a
frame where the segmenter finds (almost) no person is not gated (:data:`MIN_PERSON_SHARE`).

With a third value, ``faces`` (a person share), a frame is also gated fully wherever the weights' face networks
find a face and the person prior covers at least that share of it: a portrait or group photo whose backdrop
the net calls skin so widely that its skin share looks like a close-up's. The face map is then the prior
maps' second channel.

The share is that of the network's own probabilities at even odds (:data:`GATE_LEVEL`), not at the mask
threshold, so the threshold can be calibrated with the gate in place. The weights' metadata holds ``lo`` and
``hi`` (:attr:`skinmask.weights.WeightsMeta.person_gate`); every command applies it through
:class:`skinmask.inference.SkinModel`.
"""

from __future__ import annotations

import numpy as np

from .archs import PERSON_LEVEL

GATE_LEVEL = 0.5  # a pixel counts towards the frame's skin share from this probability
# The gate keeps the skin of the people the segmenter finds; where it finds (almost) nobody it has nothing to keep,
# and the skin the net calls may be people it missed (small, distant ones). So a frame's gate weight is scaled by
# the person prior's share of the frame over this, at most 1: no person found, no gate.
MIN_PERSON_SHARE = 0.01


def gate_weights(probs: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """(B,) float32: each frame's gate weight from its skin share (probs (B, h, w) >= GATE_LEVEL)."""
    share = (probs >= GATE_LEVEL).mean(axis=(1, 2), dtype=np.float64)
    return np.clip((hi - share) / (hi - lo), 0.0, 1.0).astype(np.float32)


def apply_person_gate(probs: np.ndarray, prior: np.ndarray, lo: float, hi: float,
                      faces: float | None = None) -> np.ndarray:
    """Probabilities (B, h, w) with skin outside the person scaled by 1 - the frame's gate weight. ``prior``:
    uint8 prior maps, (B, h, w) or (B, h, w, K) with the person map first (and the face map second, which
    ``faces`` needs: see the module's docstring)."""
    person = prior[..., 0] if prior.ndim == 4 else prior
    people = (person >= PERSON_LEVEL).mean(axis=(1, 2))
    weights = gate_weights(probs, lo, hi) * np.clip(people / MIN_PERSON_SHARE, 0.0, 1.0).astype(np.float32)
    if faces is not None:
        if prior.ndim != 4 or prior.shape[-1] < 2:
            raise ValueError("a face-confirmed gate needs the face map as the prior maps' second channel")
        found = prior[..., 1].reshape(len(prior), -1).max(axis=1) > 0
        scene = people >= faces
        weights = np.where(found & scene, np.float32(1.0), weights)
    if not weights.any():
        return probs
    keep = np.where(person >= PERSON_LEVEL, np.float32(1.0), (1.0 - weights)[:, None, None])
    return (probs * keep).astype(np.float32, copy=False)
