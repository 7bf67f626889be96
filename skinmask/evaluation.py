"""Compare a model (and classical baselines) with ground-truth masks, per dataset."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from .baselines import BASELINES, HistogramBayes, baseline_mask
from .datasets import Dataset, load_sample, read_hair
from .metrics import MetricAccumulator, choose_threshold, confusion, scores, sweep_counts


def fit_bayes(datasets: list[Dataset], negatives: list[Dataset] = (), bins: int = 32,
              max_images: int = 400) -> HistogramBayes:
    """Jones & Rehg histograms from the train splits (up to max_images per set, evenly spaced)."""
    hb = HistogramBayes(bins)
    for d in [*datasets, *negatives]:
        samples = d.select("train")
        if len(samples) > max_images:
            pick = np.linspace(0, len(samples) - 1, max_images).astype(int)
            samples = [samples[i] for i in pick]
        for s in samples:
            img, m = load_sample(s)
            if d.negatives:
                # a negatives set counts as much as a labelled one, not more: thin it out
                img, m = img[::2, ::2], m[::2, ::2]
            hb.add(img, m)
    hb.finish()
    return hb


def calibrate_threshold(model, datasets: list[Dataset], log: Callable[[str], None] | None = None,
                        reference=None, tolerance: float = 0.01, tie: float = 0.0) -> tuple[float, dict]:
    """Threshold maximising the mean over datasets of per-image F1 on their held-out splits (with ``tie`` > 0
    the highest within ``tie`` of that best: see :func:`skinmask.metrics.choose_threshold`).

    With a ``reference`` model (a regression guard: the default being replaced) only thresholds at which
    no dataset scores more than ``tolerance`` below the reference, at its own stored threshold, qualify;
    the details then carry the reference's scores as ``reference_f1``."""
    sweeps: dict[str, list[np.ndarray]] = {}
    ref: dict[str, list[float]] = {}
    for d in datasets:
        sweeps[d.name], ref[d.name] = [], []
        for s in d.select("heldout"):
            img, m = load_sample(s)
            sweeps[d.name].append(sweep_counts(model.probability_image(img), m))
            if reference is not None:
                ref[d.name].append(scores(confusion(reference.probability_image(img) >= reference.threshold, m))["f1"])
    if reference is None:
        return choose_threshold(sweeps, tie=tie)
    ref_f1 = {name: float(np.mean(v)) for name, v in ref.items() if v}
    thr, details = choose_threshold(sweeps, floors={name: f - tolerance for name, f in ref_f1.items()}, tie=tie)
    details["reference_f1"] = ref_f1
    return thr, details


def evaluate_dataset(
    dataset: Dataset,
    split: str,
    model=None,
    threshold: float | None = None,
    baselines: tuple[str, ...] = (),
    bayes: HistogramBayes | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Metrics summaries for the model and each baseline on one split of one dataset."""
    samples = dataset.select(split)
    accs: dict[str, MetricAccumulator] = {}
    if model is not None:
        accs["model"] = MetricAccumulator()
    for b in baselines:
        accs[b] = MetricAccumulator()
    thr = model.threshold if (model is not None and threshold is None) else threshold
    seconds = 0.0
    for i, s in enumerate(samples):
        img, m = load_sample(s)
        hair = read_hair(s, m.shape)
        if model is not None:
            t = time.perf_counter()
            prob = model.probability_image(img)
            seconds += time.perf_counter() - t
            accs["model"].add(prob >= thr, m, hair)
        for b in baselines:
            accs[b].add(baseline_mask(b, img, bayes), m, hair)
        if progress:
            progress(i + 1, len(samples))
    split_name = dataset.heldout_name() if split == "heldout" else split
    out = {
        "dataset": dataset.name,
        "path": str(dataset.root),
        "split": split_name,
        "negatives": dataset.negatives,
        "images": len(samples),
        "results": {k: a.summary() for k, a in accs.items()},
    }
    if model is not None:
        out["threshold"] = float(thr)
        out["model_seconds_per_image"] = seconds / max(1, len(samples))
    return out


__all__ = ["BASELINES", "fit_bayes", "calibrate_threshold", "evaluate_dataset"]
