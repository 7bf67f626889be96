"""Labelled skin datasets on disk: discovery, splits, and loading image/mask pairs.

A dataset is a folder with ``images/<stem>.<ext>`` and ``masks/<stem>.png`` (8-bit, 255 = skin), and
optionally an ``index.csv`` with ``stem`` and ``split`` columns (the layout of ``../shared/data/*``).

Splits: ``split`` values starting with ``train``, ``val``/``valid`` or ``test`` (``train_pose+15`` is
train) are used as published. A folder without an index, or whose split column holds something else
(HGR1's gesture letters), gets a fixed held-out split: every stem whose CRC32 is divisible by 5
(about 20 %) is ``val``, the rest ``train`` -- the same on every machine.

A folder may also hold ``labels_multiclass/<stem>.png``, a class-index map (FASSEG's convention: 0
background, 1 hair, 2 skin, 3 eyes, 4 nose, 5 mouth); its hair class (:data:`HAIR_CLASS`) is read as
an explicit negative: training can weigh it and evaluation reports how much of it is called skin.

A *negatives* folder holds photos with no skin at all (``../shared/data/backgrounds``): images at the
top level or in ``images/``, no masks; every pixel is a true negative. It gets the same CRC32 split.
"""

from __future__ import annotations

import csv
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import InputError, UsageError

SPLITS = ("train", "val", "test")
HELDOUT = "heldout"  # the split to report on: val if present, else test
SPLIT_CHOICES = ("heldout", "train", "val", "test", "all")
HOLDOUT_MODULUS = 5
LABELS_DIR = "labels_multiclass"
HAIR_CLASS = 1  # index of hair in labels_multiclass/ maps (FASSEG)


@dataclass(frozen=True)
class Sample:
    """One image, its mask (None for negatives) and its split."""

    stem: str
    image: Path
    mask: Path | None
    split: str
    labels: Path | None = None  # labels_multiclass/<stem>.png when the set has one (hair = HAIR_CLASS)


@dataclass
class Dataset:
    """A folder of labelled (or all-negative) images."""

    name: str
    root: Path
    samples: list[Sample] = field(default_factory=list)
    negatives: bool = False
    split_source: str = "index.csv"  # or "crc32 holdout"

    def split_counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for s in self.samples:
            out[s.split] = out.get(s.split, 0) + 1
        return out

    def has_heldout(self) -> bool:
        """Whether any image is held out (val or test); a set without one can only be trained on."""
        counts = self.split_counts()
        return bool(counts.get("val") or counts.get("test"))

    def heldout_name(self) -> str:
        counts = self.split_counts()
        for name in ("val", "test"):
            if counts.get(name):
                return name
        raise UsageError(f"dataset {self.name} ({self.root}) has no val or test images to hold out")

    def select(self, split: str = HELDOUT) -> list[Sample]:
        """Samples of one split: train, val, test, heldout (val, else test) or all."""
        if split == "all":
            return list(self.samples)
        if split == HELDOUT:
            split = self.heldout_name()
        if split not in SPLITS:
            raise UsageError(f"unknown split {split!r}; use one of {', '.join(SPLIT_CHOICES)}")
        chosen = [s for s in self.samples if s.split == split]
        if not chosen:
            have = ", ".join(f"{k} ({v})" for k, v in sorted(self.split_counts().items()))
            raise UsageError(f"dataset {self.name} ({self.root}) has no {split!r} split; it has: {have}")
        return chosen


def normalise_split(value: str) -> str | None:
    """'train', 'train_pose+15' -> 'train'; 'val'/'valid'/'validation' -> 'val'; 'test*' -> 'test'."""
    v = value.strip().lower()
    if v.startswith("train"):
        return "train"
    if v.startswith("val"):
        return "val"
    if v.startswith("test"):
        return "test"
    return None


def holdout_split(stem: str) -> str:
    """The fixed held-out rule for folders without usable splits (about 1 in 5 is val)."""
    return "val" if zlib.crc32(stem.encode("utf-8")) % HOLDOUT_MODULUS == 0 else "train"


def _image_files(folder: Path) -> dict[str, Path]:
    from .media import is_image

    files: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if p.is_file() and is_image(p) and not p.name.startswith("."):
            files.setdefault(p.stem, p)
    return files


def _read_index(root: Path) -> dict[str, str] | None:
    """stem -> normalised split from index.csv, or None when there is no usable split column."""
    index = root / "index.csv"
    if not index.is_file():
        return None
    try:
        with open(index, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"cannot read index.csv ({exc})", index) from None
    if not rows or "split" not in rows[0]:
        return None
    key = "stem" if "stem" in rows[0] else None
    out: dict[str, str] = {}
    for row in rows:
        split = normalise_split(row.get("split") or "")
        if split is None:
            return None  # e.g. HGR1's gesture letters: not a split
        stem = row[key] if key else Path(row.get("image") or row.get("file") or "").stem
        out[stem] = split
    return out


def open_dataset(root: str | Path, negatives: bool = False) -> Dataset:
    """Discover a dataset folder; raise InputError with a clear reason when it does not fit."""
    root = Path(root)
    if not root.exists():
        raise InputError("no such dataset folder", root)
    if not root.is_dir():
        raise InputError("not a folder; a dataset is a folder with images/ and masks/", root)
    name = root.resolve().name
    images_dir = root / "images"
    masks_dir = root / "masks"
    if negatives:
        folder = images_dir if images_dir.is_dir() else root
        images = _image_files(folder)
        if not images:
            raise InputError("no images found in this negatives folder", folder)
        samples = [Sample(stem, p, None, holdout_split(stem)) for stem, p in images.items()]
        return Dataset(name, root, samples, negatives=True, split_source="crc32 holdout")
    if not images_dir.is_dir():
        raise InputError("no images/ folder; a dataset is a folder with images/ and masks/ "
                         "(use --negatives for folders of photos without people)", root)
    if not masks_dir.is_dir():
        raise InputError("no masks/ folder next to images/; every image needs masks/<stem>.png "
                         "(255 = skin)", root)
    images = _image_files(images_dir)
    if not images:
        raise InputError("no images found", images_dir)
    masks = _image_files(masks_dir)
    missing = [stem for stem in images if stem not in masks]
    if missing:
        raise InputError(f"{len(missing)} of {len(images)} images have no mask "
                         f"(e.g. masks/{missing[0]}.png is missing); every image needs masks/<stem>.png", root)
    index = _read_index(root)
    labels = _image_files(root / LABELS_DIR) if (root / LABELS_DIR).is_dir() else {}
    samples = []
    for stem, p in images.items():
        split = index.get(stem) if index is not None else None
        samples.append(Sample(stem, p, masks[stem], split or holdout_split(stem), labels.get(stem)))
    source = "index.csv" if index is not None else "crc32 holdout"
    return Dataset(name, root, samples, negatives=False, split_source=source)


def read_mask(path: Path, shape: tuple[int, int] | None = None) -> np.ndarray:
    """A mask file as bool (H, W): True where the value is above 127."""
    import cv2

    data = np.fromfile(str(path), np.uint8) if path.is_file() else None
    if data is None or data.size == 0:
        raise InputError("missing or empty mask file", path)
    mask = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE)
    if mask is None:
        raise InputError("not a readable mask image", path)
    if shape is not None and mask.shape[:2] != tuple(shape):
        raise InputError(f"mask is {mask.shape[1]}x{mask.shape[0]} but its image is {shape[1]}x{shape[0]}", path)
    return mask > 127


def load_sample(sample: Sample) -> tuple[np.ndarray, np.ndarray]:
    """(BGR uint8 (H, W, 3), bool mask (H, W)); negatives get an all-False mask."""
    from .media import read_image

    image = read_image(sample.image)
    if sample.mask is None:
        return image, np.zeros(image.shape[:2], bool)
    return image, read_mask(sample.mask, image.shape[:2])


def read_hair(sample: Sample, shape: tuple[int, int]) -> np.ndarray | None:
    """Bool (H, W) hair mask from the sample's class map, or None when the set has no class maps."""
    import cv2

    if sample.labels is None:
        return None
    data = np.fromfile(str(sample.labels), np.uint8)
    labels = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if labels is None or labels.ndim != 2:
        raise InputError("not a readable single-channel class map", sample.labels)
    if labels.shape != tuple(shape):
        raise InputError(f"class map is {labels.shape[1]}x{labels.shape[0]} but its image is {shape[1]}x{shape[0]}",
                         sample.labels)
    return labels == HAIR_CLASS


def file_digest(paths: list[Path]) -> str:
    """SHA-256 over the sorted file names and contents: identifies the exact data used."""
    import hashlib

    h = hashlib.sha256()
    for p in sorted(paths, key=lambda q: q.name):
        h.update(p.name.encode())
        h.update(b"\0")
        h.update(p.read_bytes())
    return h.hexdigest()
