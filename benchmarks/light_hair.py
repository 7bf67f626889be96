"""Light hair called skin: FASSEG's held-out heads with their labelled hair recoloured, per shade.

    python benchmarks/light_hair.py                            # the shipped default
    python benchmarks/light_hair.py --weights softconv-ctx --weights default

FASSEG's hair is dark, so ``skinmask evaluate``'s "hair called skin" says nothing about blonde or red hair,
the case users see fail (a blonde webcam subject's hair masked more strongly than her face). This takes the
held-out split of ``../shared/data/fasseg_multipose01``, turns the labelled hair of each image into one
:data:`skinmask.training.HAIR_COLOURS` shade (the training augmentation ``--hair-recolour``, seeded per image,
so every model sees the same pictures), and prints, per shade, the share of hair pixels called skin and
the per-image skin F1. A proxy, not real light hair: read it next to the masks of real photos.
"""

from __future__ import annotations

import argparse
import sys
import zlib
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", action="append", help="weights (name or path); repeat to compare; default: default")
    ap.add_argument("--data", type=Path, default=DATA / "fasseg_multipose01", help="a set with labels_multiclass/")
    args = ap.parse_args()
    if not (args.data / "labels_multiclass").is_dir():
        print(f"{args.data}: no labels_multiclass/ folder (FASSEG's hair class); nothing to measure", file=sys.stderr)
        return 2

    from skinmask.datasets import load_sample, open_dataset, read_hair
    from skinmask.inference import load_model
    from skinmask.metrics import MetricAccumulator
    from skinmask.training import HAIR_COLOURS, recolour_hair

    shades = ["dark (as labelled)", *HAIR_COLOURS]
    pictures: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {s: [] for s in shades}
    for smp in (s for s in open_dataset(args.data).select() if s.labels is not None):  # read and recoloured once
        img, mask = load_sample(smp)
        hair = read_hair(smp, mask.shape)
        for shade in shades:
            pic = img
            if shade in HAIR_COLOURS:
                rng = np.random.default_rng(zlib.crc32(f"{smp.stem}/{shade}".encode()))
                pic = recolour_hair(img, hair.astype(np.uint8) * 255, rng, {shade: HAIR_COLOURS[shade]})
            pictures[shade].append((pic, mask, hair))
    print(f"{args.data.name}: {len(pictures[shades[0]])} held-out images with a hair label")
    print(f"{'weights':<22} " + " ".join(f"{s[:18]:>20}" for s in shades) + "   (hair called skin / skin F1)")
    for name in args.weights or ["default"]:
        model = load_model(name)
        cells = []
        for shade in shades:
            acc = MetricAccumulator()
            for pic, mask, hair in pictures[shade]:
                acc.add(model.probability_image(pic) >= model.threshold, mask, hair)
            res = acc.summary()
            cells.append(f"{res['failure']['hair_called_skin']:.3f} / {res['f1']['mean']:.3f}")
        print(f"{name[-22:]:<22} " + " ".join(f"{c:>20}" for c in cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
