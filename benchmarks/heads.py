"""Heads at webcam size: street photos' heads, with their real hair, hats and collars, as a close-up frame.

    python benchmarks/heads.py                                  # the shipped default
    python benchmarks/heads.py --weights softconv-ctx --weights default

The failure users see on webcams is hair (blonde, red) called skin around a face that fills the frame. The
labelled sets with such faces have dark hair (FASSEG) or plain studio heads (SFA); CCP's street photos have
every hair colour, labelled non-skin, but their faces are 40-80 pixels. This cuts each held-out CCP photo's
head window at full resolution (:func:`skinmask.training.head_window`: four face widths around the topmost
skin region), enlarges it to 640x640 (a webcam frame's size, face ~160 pixels wide), and prints per-image skin
F1, precision, recall and the share of the window's non-skin (hair, hat, collar, background) called skin.
``train --head-zoom`` trains on the training split's windows, so a model trained with it is measured on
heads of the same kind of photo, never the same ones.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data"
SIDE = 640


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", action="append", help="weights (name or path); repeat to compare; default: default")
    ap.add_argument("--data", type=Path, default=DATA / "ccp", help="a labelled set of upright people")
    ap.add_argument("--split", default="heldout", help="the split to cut heads from")
    args = ap.parse_args()
    if not (args.data / "images").is_dir():
        print(f"{args.data}: no images/ folder (a labelled set); nothing to measure", file=sys.stderr)
        return 2
    import cv2

    from skinmask.datasets import load_sample, open_dataset
    from skinmask.inference import load_model
    from skinmask.training import head_window

    heads = []
    for smp in open_dataset(args.data).select(args.split):
        img, mask = load_sample(smp)
        win = head_window(mask.astype(np.float32))
        if win is None:
            continue
        y0, x0, side = win
        pic = cv2.resize(img[y0:y0 + side, x0:x0 + side], (SIDE, SIDE), interpolation=cv2.INTER_CUBIC)
        lab = cv2.resize(mask[y0:y0 + side, x0:x0 + side].astype(np.uint8), (SIDE, SIDE),
                         interpolation=cv2.INTER_NEAREST) > 0
        heads.append((pic, lab))
    print(f"{args.data.name} [{args.split}]: {len(heads)} head windows, each enlarged to {SIDE}x{SIDE}")
    print(f"{'weights':<28} {'F1':>6} {'precision':>10} {'recall':>7} {'non-skin called skin':>21}")
    for name in args.weights or ["default"]:
        model = load_model(name)
        f1, prec, rec, false = [], [], [], []
        for pic, lab in heads:
            pred = model.probability_image(pic) >= model.threshold
            tp, fp, fn = int((pred & lab).sum()), int((pred & ~lab).sum()), int((~pred & lab).sum())
            f1.append(2 * tp / max(1, 2 * tp + fp + fn))
            prec.append(tp / max(1, tp + fp))
            rec.append(tp / max(1, tp + fn))
            false.append(fp / max(1, int((~lab).sum())))
        print(f"{str(name)[-28:]:<28} {np.mean(f1):6.3f} {np.mean(prec):10.3f} {np.mean(rec):7.3f} {np.mean(false):21.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
