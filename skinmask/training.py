"""Train a skin network on labelled datasets (and skin-free negatives), reproducibly.

What a training run does:

1. Loads every training image and mask once, resized by the model's working ``scale`` (the same
   INTER_AREA resize inference applies), into RAM.
2. Builds each batch from random crops, drawing the source *dataset* uniformly (balanced sampling;
   negatives get ``neg_weight`` shares), then an image; a share of crops is centred on skin. Crops
   get scale jitter, flips, blur, noise and JPEG re-encoding; illumination / white-balance /
   contrast / gamma jitter is available (``color_aug``) but off by default: on every held-out set it
   cost F1 (colour is this network's main cue, and jittering it blurs the skin/non-skin boundary). A share of negative crops get skin cut out of a labelled crop pasted
   onto them (``paste``) so skin is seen on cluttered backgrounds.
3. Optimises BCE (optionally plus the mean of the hardest pixels, ``hard_mining``) with Adam and a
   cosine schedule; logs loss and validation F1.
4. Chooses the threshold that maximises the mean over datasets of per-image F1 on their held-out
   splits, and saves weights + metadata (architecture, input convention, scale, threshold, data with
   checksums, command, seed, config, metrics).

Same data, config and seed give the same weights on the same machine (one producer thread builds the
batches from a seeded generator; torch is seeded).
"""

from __future__ import annotations

import math
import platform
import queue
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .datasets import Dataset, load_sample, file_digest
from .errors import UsageError


@dataclass
class TrainConfig:
    arch: str = "softconv-ctx"
    scale: float = 0.4  # the shipped default's recipe (scripts/train_default.sh)
    steps: int = 4000
    batch: int = 24
    crop: int = 96
    lr: float = 3e-3
    weight_decay: float = 0.0
    seed: int = 0
    neg_weight: float = 1.0  # sampling share of the negatives folders, relative to one dataset
    dataset_weights: dict[str, float] = field(default_factory=dict)  # sampling share per dataset name (default 1)
    paste: float = 0.5  # probability a negative crop gets skin pasted onto it
    skin_crop: float = 0.5  # probability a labelled crop is centred on a skin pixel
    zoom: tuple[float, float] = (0.7, 1.4)  # range of the random magnification of each crop (log-uniform)
    hard_mining: float = 0.0  # >0: add the mean loss of this fraction of hardest pixels
    dice: float = 1.0  # >0: add this weight x per-crop soft-Dice loss (the per-image F1 the card reports)
    pos_weight: float = 1.0  # BCE weight of skin pixels
    augment: bool = True
    light_aug: float = 0.0  # >0: brightness gain exp(U(-a, a)) on every crop, colour ratios kept
    color_aug: float = 0.0  # strength of illumination / white-balance / contrast / gamma jitter (1 = strong)
    val_every: int = 250
    val_images: int = 16  # per dataset, for the progress F1
    threads: int = 2
    init: str | None = None  # weights to start from (fine-tuning)


@dataclass
class _Source:
    name: str
    images: list[np.ndarray]
    masks: list[np.ndarray]  # float32 0..1, same size as the image
    skin_points: list[np.ndarray]  # (N, 2) y, x of some skin pixels per image
    weight: float
    negatives: bool = False


@dataclass
class TrainResult:
    model: object
    meta: object
    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0


# ----------------------------------------------------------------------------- data in RAM


def _resize(image: np.ndarray, scale: float, interp: int) -> np.ndarray:
    """The image at the working size inference uses for this scale (:func:`skinmask.maps.working_size`)."""
    import cv2

    from .maps import working_size

    h, w = working_size(*image.shape[:2], scale)
    return image if (h, w) == image.shape[:2] else cv2.resize(image, (w, h), interpolation=interp)


def load_source(ds: Dataset, split: str, scale: float, weight: float, log: Callable[[str], None] | None = None) -> _Source:
    import cv2

    images, masks, points = [], [], []
    for s in ds.select(split):
        img, m = load_sample(s)
        img = _resize(img, scale, cv2.INTER_AREA)
        mf = _resize(m.astype(np.float32), scale, cv2.INTER_AREA)
        images.append(img)
        masks.append(mf)
        ys, xs = np.nonzero(mf > 0.5)
        if ys.size > 2000:
            sel = np.linspace(0, ys.size - 1, 2000).astype(np.int64)
            ys, xs = ys[sel], xs[sel]
        points.append(np.stack([ys, xs], 1).astype(np.int32))
    if log:
        log(f"loaded {ds.name} [{split}]: {len(images)} images")
    return _Source(ds.name, images, masks, points, weight, ds.negatives)


# ----------------------------------------------------------------------------- augmentation


def _crop(img: np.ndarray, mask: np.ndarray, pts: np.ndarray, size: int, rng: np.random.Generator,
          cfg: TrainConfig, centre_on_skin: bool) -> tuple[np.ndarray, np.ndarray]:
    import cv2

    f = math.exp(rng.uniform(math.log(cfg.zoom[0]), math.log(cfg.zoom[1]))) if cfg.augment else 1.0
    s = max(8, int(round(size / f)))
    h, w = img.shape[:2]
    if h < s or w < s:
        py, px = max(0, s - h), max(0, s - w)
        img = cv2.copyMakeBorder(img, py // 2, py - py // 2, px // 2, px - px // 2, cv2.BORDER_REFLECT_101)
        mask = cv2.copyMakeBorder(mask, py // 2, py - py // 2, px // 2, px - px // 2, cv2.BORDER_REFLECT_101)
        pts = pts + np.array([py // 2, px // 2], np.int32) if pts.size else pts
        h, w = img.shape[:2]
    if centre_on_skin and pts.size:
        cy, cx = pts[rng.integers(len(pts))]
        y0 = int(np.clip(cy - s // 2 + rng.integers(-s // 4, s // 4 + 1), 0, h - s))
        x0 = int(np.clip(cx - s // 2 + rng.integers(-s // 4, s // 4 + 1), 0, w - s))
    else:
        y0 = int(rng.integers(0, h - s + 1))
        x0 = int(rng.integers(0, w - s + 1))
    ci = img[y0:y0 + s, x0:x0 + s]
    cm = mask[y0:y0 + s, x0:x0 + s]
    if s != size:
        interp = cv2.INTER_AREA if s > size else cv2.INTER_LINEAR
        ci = cv2.resize(ci, (size, size), interpolation=interp)
        cm = cv2.resize(cm, (size, size), interpolation=cv2.INTER_LINEAR)
    if cfg.augment and rng.random() < 0.5:
        ci, cm = ci[:, ::-1], cm[:, ::-1]
    if cfg.augment and rng.random() < 0.1:
        ci, cm = ci[::-1], cm[::-1]
    return np.ascontiguousarray(ci), np.ascontiguousarray(cm)


def photometric(img: np.ndarray, rng: np.random.Generator, strength: float = 1.0) -> np.ndarray:
    """Illumination, white balance, contrast, gamma (scaled by strength), blur, noise and JPEG on a BGR crop."""
    import cv2

    a = strength
    x = img.astype(np.float32) / 255.0
    gain = math.exp(rng.uniform(-0.6 * a, 0.35 * a))  # illumination
    wb = np.exp(rng.normal(0.0, 0.08 * a, 3)).astype(np.float32)  # white balance, per channel
    x = x * (gain * wb)
    c = rng.uniform(1 - 0.3 * a, 1 + 0.3 * a)  # contrast
    m = x.mean()
    x = (x - m) * c + m
    x = np.clip(x, 0.0, 1.0) ** math.exp(rng.uniform(-0.3 * a, 0.3 * a))  # gamma
    out = np.clip(x * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if rng.random() < 0.2:
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.4, 1.3))
    if rng.random() < 0.3:
        noise = rng.normal(0.0, rng.uniform(1.0, 8.0), out.shape).astype(np.float32)
        out = np.clip(out.astype(np.float32) + noise, 0, 255).astype(np.uint8)
    if rng.random() < 0.3:
        ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(30, 91))])
        if ok:
            out = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    return out


class BatchMaker:
    """Builds training batches from in-RAM sources with a seeded generator (deterministic)."""

    def __init__(self, sources: list[_Source], cfg: TrainConfig, seed: int) -> None:
        self.sources = sources
        self.cfg = cfg
        self.rng = np.random.default_rng(seed)
        w = np.array([s.weight for s in sources], np.float64)
        if not w.sum() > 0:
            raise UsageError("every dataset has sampling weight 0: nothing to train on")
        self.p = w / w.sum()
        self.labelled = [i for i, s in enumerate(sources) if not s.negatives]

    def _sample(self, src: _Source) -> tuple[np.ndarray, np.ndarray]:
        rng, cfg = self.rng, self.cfg
        k = int(rng.integers(len(src.images)))
        on_skin = (not src.negatives) and rng.random() < cfg.skin_crop
        img, m = _crop(src.images[k], src.masks[k], src.skin_points[k], cfg.crop, rng, cfg, on_skin)
        if src.negatives and self.labelled and rng.random() < cfg.paste:
            donor = self.sources[self.labelled[int(rng.integers(len(self.labelled)))]]
            j = int(rng.integers(len(donor.images)))
            fg, fm = _crop(donor.images[j], donor.masks[j], donor.skin_points[j], cfg.crop, rng, cfg, True)
            a = fm[..., None]
            img = np.clip(img.astype(np.float32) * (1 - a) + fg.astype(np.float32) * a + 0.5, 0, 255).astype(np.uint8)
            m = fm
        if cfg.augment:
            img = photometric(img, rng, cfg.color_aug)
            if cfg.light_aug > 0:
                gain = math.exp(rng.uniform(-cfg.light_aug, cfg.light_aug))
                img = np.clip(img.astype(np.float32) * gain + 0.5, 0, 255).astype(np.uint8)
        return img, m

    def batch(self) -> tuple[np.ndarray, np.ndarray]:
        idx = self.rng.choice(len(self.sources), size=self.cfg.batch, p=self.p)
        pairs = [self._sample(self.sources[i]) for i in idx]
        return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])


# ----------------------------------------------------------------------------- training


def _logits(net, x):
    import torch

    return net.softconv(torch.tanh(net.conv1(net.stem(x))))


def _quick_f1(net, meta, val: dict[str, _Source], threshold: float = 0.5) -> dict[str, float]:
    """Per-image mean F1 at working scale on the small progress subsets."""
    import torch

    from .engines import to_input
    from .metrics import confusion, scores

    out = {}
    with torch.inference_mode():
        for name, src in val.items():
            f1s = []
            for img, m in zip(src.images, src.masks):
                p = net(to_input(img[None], meta.input, torch.device("cpu")))[0, 0].numpy()
                f1s.append(scores(confusion(p >= threshold, m > 0.5))["f1"])
            out[name] = float(np.mean(f1s)) if f1s else float("nan")
    return out


def train(
    datasets: list[Dataset],
    negatives: list[Dataset],
    cfg: TrainConfig,
    command: str | None = None,
    log: Callable[[str], None] | None = None,
    progress: Callable[[int, int, dict], None] | None = None,
    calibrate: bool = True,
) -> TrainResult:
    """Train, calibrate the threshold, and return the model with its metadata (not yet saved)."""
    import cv2
    import torch

    from .model import ARCHITECTURES, build_model
    from .weights import InputSpec, WeightsMeta, load_weights

    log = log or (lambda s: None)
    if not datasets:
        raise UsageError("training needs at least one labelled dataset (a folder with images/ and masks/)")
    torch.set_num_threads(max(1, cfg.threads))
    torch.manual_seed(cfg.seed)
    cv2.setNumThreads(1)
    t0 = time.time()

    if cfg.init:
        net, init_meta = load_weights(cfg.init)
        cfg.arch = init_meta.arch
        cfg.scale = init_meta.scale
        spec = init_meta.input
        net.train()
        log(f"fine-tuning from {cfg.init} (arch {cfg.arch}, scale {cfg.scale})")
    else:
        if cfg.arch not in ARCHITECTURES:
            raise UsageError(f"unknown architecture {cfg.arch!r}; known: {', '.join(ARCHITECTURES)}")
        net = build_model(cfg.arch)
        spec = InputSpec()
    if not 0.05 <= cfg.scale <= 1.0:
        raise UsageError(f"--scale {cfg.scale} is outside 0.05..1")
    meta = WeightsMeta(arch=cfg.arch, input=spec, threshold=0.5, scale=cfg.scale)

    # --- data
    sources = [load_source(d, "train", cfg.scale, cfg.dataset_weights.get(d.name, 1.0), log) for d in datasets]
    sources += [load_source(d, "train", cfg.scale, cfg.neg_weight / max(1, len(negatives)), log) for d in negatives]
    val_sets: dict[str, _Source] = {}
    for d in datasets:
        src = load_source(d, "heldout", cfg.scale, 1.0)
        n = min(cfg.val_images, len(src.images))
        pick = np.linspace(0, len(src.images) - 1, n).astype(int) if n else []
        val_sets[d.name] = _Source(d.name, [src.images[i] for i in pick], [src.masks[i] for i in pick], [], 1.0)
    log(f"data loaded in {time.time() - t0:.0f} s")

    maker = BatchMaker(sources, cfg, cfg.seed)
    q: queue.Queue = queue.Queue(maxsize=8)
    stop = threading.Event()

    def produce() -> None:
        try:
            for _ in range(cfg.steps):
                if stop.is_set():
                    return
                q.put(maker.batch())
        except BaseException as exc:  # surface errors in the training loop
            q.put(exc)

    worker = threading.Thread(target=produce, daemon=True)
    worker.start()

    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / 100) * 0.5 * (1 + math.cos(math.pi * min(s, cfg.steps) / cfg.steps)))
    pos_w = torch.tensor(cfg.pos_weight)
    history: list[dict] = []
    running = None
    try:
        net.train()
        for step in range(1, cfg.steps + 1):
            item = q.get()
            if isinstance(item, BaseException):
                raise item
            imgs, masks = item
            from .engines import to_input

            x = to_input(imgs, spec, torch.device("cpu"))
            y = torch.from_numpy(masks)[:, None]
            logit = _logits(net, x)
            per_px = torch.nn.functional.binary_cross_entropy_with_logits(logit, y, reduction="none")
            if cfg.pos_weight != 1.0:
                per_px = per_px * (1 + (pos_w - 1) * y)
            loss = per_px.mean()
            if cfg.dice > 0:  # per crop, so a crop with a little skin counts as much as one full of it
                p = torch.sigmoid(logit)
                inter = (p * y).sum(dim=(1, 2, 3))
                dice = 1.0 - (2.0 * inter + 1.0) / (p.sum(dim=(1, 2, 3)) + y.sum(dim=(1, 2, 3)) + 1.0)
                loss = loss + cfg.dice * dice.mean()
            if cfg.hard_mining > 0:
                flat = per_px.flatten()
                k = max(1, int(flat.numel() * cfg.hard_mining))
                loss = loss + flat.topk(k).values.mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            lv = float(loss.detach())
            running = lv if running is None else 0.98 * running + 0.02 * lv
            rec = {"step": step, "loss": running}
            if step % cfg.val_every == 0 or step == cfg.steps:
                net.eval()
                f1 = _quick_f1(net, meta, val_sets)
                net.train()
                rec["val_f1"] = f1
                rec["val_f1_mean"] = float(np.mean(list(f1.values())))
                history.append(dict(rec))
                log(f"step {step}/{cfg.steps} loss {running:.4f} val F1@0.5 {rec['val_f1_mean']:.3f} "
                    + " ".join(f"{k}={v:.3f}" for k, v in f1.items()) + f" ({time.time() - t0:.0f} s)")
            if progress:
                progress(step, cfg.steps, rec)
    finally:
        stop.set()
        while worker.is_alive():
            try:
                q.get_nowait()
            except queue.Empty:
                time.sleep(0.01)
    net.eval()
    train_seconds = time.time() - t0

    info: dict = {
        "architecture": ARCHITECTURES[cfg.arch].summary,
        "input_convention": f"uint8 {spec.channel_order.upper()} / 255, minus mean {list(spec.mean)}, "
                            f"divided by std {list(spec.std)}; frames resized by scale {cfg.scale} (INTER_AREA)",
        "command": command or " ".join(sys.argv),
        "seed": cfg.seed,
        "config": asdict(cfg),
        "data": [_describe(d) for d in datasets] + [_describe(d) for d in negatives],
        "train_seconds": round(train_seconds, 1),
        "history": history[-3:],
        "torch": torch.__version__,
        "machine": platform.machine(),
    }
    meta.info = info
    if calibrate:
        from .evaluation import calibrate_threshold
        from .inference import SkinModel

        model = SkinModel(net=net, meta=meta, device=torch.device("cpu"))
        thr, details = calibrate_threshold(model, datasets, log=log)
        meta.threshold = thr
        info["threshold_choice"] = ("maximises the mean over datasets of per-image F1 on their held-out splits: "
                                    + ", ".join(f"{d.name} ({d.heldout_name()})" for d in datasets))
        info["metrics"] = {"heldout_f1_at_threshold": details["per_dataset"], "objective": details["objective"]}
        log(f"threshold {thr:.2f}: mean held-out F1 {details['objective']:.3f} "
            + " ".join(f"{k}={v:.3f}" for k, v in details["per_dataset"].items()))
    info["total_seconds"] = round(time.time() - t0, 1)
    return TrainResult(model=net, meta=meta, history=history, seconds=time.time() - t0)


def _describe(d: Dataset) -> dict:
    train = d.select("train")
    files = [s.image for s in train] + [s.mask for s in train if s.mask is not None]
    return {
        "name": d.name,
        "path": str(d.root),
        "negatives": d.negatives,
        "split_source": d.split_source,
        "train_images": len(train),
        "splits": d.split_counts(),
        "sha256_train_files": file_digest(files),
    }
