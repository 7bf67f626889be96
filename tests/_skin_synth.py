"""A tiny synthetic skin dataset written to disk (images/, masks/, index.csv) for fast tests."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def make_dataset(root: Path, n: int = 8, size: int = 48, seed: int = 0, with_index: bool = True,
                 splits: tuple[str, ...] = ("train", "train", "train", "val")) -> Path:
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    rows = ["stem,image,mask,split"]
    for i in range(n):
        img = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        img = cv2.GaussianBlur(img, (0, 0), 2)
        yy, xx = np.mgrid[0:size, 0:size]
        cy, cx, r = rng.integers(12, size - 12, 2).tolist() + [int(rng.integers(6, 12))]
        mask = ((yy - cy) ** 2 + (xx - cx) ** 2) < r * r
        img[mask] = (120, 150, 210)
        stem = f"s{i:02d}"
        cv2.imwrite(str(root / "images" / f"{stem}.png"), img)
        cv2.imwrite(str(root / "masks" / f"{stem}.png"), mask.astype(np.uint8) * 255)
        rows.append(f"{stem},{stem}.png,{stem}.png,{splits[i % len(splits)]}")
    if with_index:
        (root / "index.csv").write_text("\n".join(rows) + "\n")
    return root
