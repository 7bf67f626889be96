"""Markdown tables for models/README.md from `skinmask evaluate --baselines --json` outputs.

    python scripts/model_card_table.py softconv-ctx=/tmp/eval_softconv-ctx.json softconv=/tmp/eval_softconv.json
"""

from __future__ import annotations

import json
import sys


def main(args: list[str]) -> None:
    models: dict[str, dict] = {}
    for a in args:
        name, path = a.split("=", 1)
        models[name] = json.load(open(path))
    first = next(iter(models.values()))
    cols = list(models) + ["ycrcb", "kovac", "bayes"]
    print("Per-image mean F1 (± std) on each held-out split; pooled F1 in brackets. Backgrounds: share of pixels called skin.\n")
    print("| dataset | split | n | " + " | ".join(cols) + " |")
    print("|---|---|---|" + "---|" * len(cols))
    for i, rep in enumerate(first["datasets"]):
        cells = []
        for c in cols:
            src = models[c] if c in models else first
            r = src["datasets"][i]["results"]["model" if c in models else c]
            if rep["negatives"]:
                cells.append(f"{r['fpr']['pooled']:.3f}")
            else:
                cells.append(f"{r['f1']['mean']:.3f} ± {r['f1']['std']:.2f} ({r['f1']['pooled']:.3f})")
        best = None
        print(f"| {rep['dataset']} | {rep['split']} | {rep['images']} | " + " | ".join(cells) + " |")
    print("\nPrecision / recall (per-image means):\n")
    print("| dataset | " + " | ".join(cols) + " |")
    print("|---|" + "---|" * len(cols))
    for i, rep in enumerate(first["datasets"]):
        if rep["negatives"]:
            continue
        cells = []
        for c in cols:
            src = models[c] if c in models else first
            r = src["datasets"][i]["results"]["model" if c in models else c]
            cells.append(f"{r['precision']['mean']:.3f} / {r['recall']['mean']:.3f}")
        print(f"| {rep['dataset']} | " + " | ".join(cells) + " |")
    print("\nFailure modes: share of labelled hair called skin; recall on small skin regions (components of 16 to "
          "400 pixels: share of their pixels called skin / share of regions found, i.e. at least half called skin); "
          "share of no-people pixels called skin:\n")
    print("| dataset | measure | " + " | ".join(cols) + " |")
    print("|---|---|" + "---|" * len(cols))
    for i, rep in enumerate(first["datasets"]):
        f0 = first["datasets"][i]["results"]["model"]["failure"]
        rows = []
        if rep["negatives"]:
            rows.append(("called skin", lambda f: f"{f['called_skin']:.3f}"))
        if f0["hair_pixels"]:
            rows.append(("hair called skin", lambda f: f"{f['hair_called_skin']:.3f}"))
        if f0["small_regions"]:
            rows.append((f"small regions ({f0['small_regions']})",
                         lambda f: f"{f['small_region_recall']:.3f} / {f['small_regions_found']:.3f}"))
        for label, fmt in rows:
            cells = []
            for c in cols:
                src = models[c] if c in models else first
                cells.append(fmt(src["datasets"][i]["results"]["model" if c in models else c]["failure"]))
            print(f"| {rep['dataset']} | {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(sys.argv[1:])
