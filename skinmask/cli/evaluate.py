"""`skinmask evaluate`: a model (and classical baselines) against ground-truth masks, per dataset."""

from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from . import common
from .common import DebugOpt, DeviceOpt, QuietOpt, WeightsOpt


class Split(str, Enum):
    heldout = "heldout"
    train = "train"
    val = "val"
    test = "test"
    all = "all"


def evaluate(
    datasets: Annotated[list[Path], typer.Argument(help="Dataset folders (images/ + masks/ [+ index.csv]).",
                                                   show_default=False)],
    split: Annotated[Split, typer.Option("--split", help="Which images: heldout (val, else test), train, val, "
                                         "test or all.")] = Split.heldout,
    negatives: Annotated[Optional[list[Path]], typer.Option(
        "--negatives", "-n", help="Folders of photos without people: reports how much is called skin.",
        show_default=False)] = None,
    baselines: Annotated[bool, typer.Option("--baselines", help="Also score YCrCb (Chai & Ngan), the Kovac RGB rule "
                                            "and an RGB histogram Bayes classifier (Jones & Rehg).")] = False,
    bayes_train: Annotated[Optional[list[Path]], typer.Option(
        "--bayes-train", help="Dataset folders whose train splits fit the Bayes histograms [default: the train "
        "splits of the evaluated datasets and negatives].", show_default=False)] = None,
    threshold: Annotated[Optional[str], typer.Option(
        "--threshold", "-t", help="'auto' (the threshold stored with the weights) or a number in 0..1.")] = "auto",
    no_model: Annotated[bool, typer.Option("--no-model", help="Only the baselines.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Results as one JSON document on stdout.")] = False,
    weights: WeightsOpt = None,
    device: DeviceOpt = "auto",
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Precision, recall, F1 and IoU per dataset (per-image mean +- std, and pooled over all pixels), and
    the failure modes: the share of hair called skin (sets with labels_multiclass/), the recall on small
    skin regions (components of 16 to 400 pixels: pixel recall / share of regions found) and, on
    --negatives folders, the share of no-people pixels called skin (FP rate).

    Examples:

      skinmask evaluate ../shared/data/abdomen --split val

      skinmask evaluate mydata/ --weights mine.safetensors --baselines --json
    """
    common.setup(debug, quiet)
    from ..datasets import open_dataset
    from ..errors import UsageError
    from ..evaluation import BASELINES, evaluate_dataset, fit_bayes
    from .predict import parse_threshold

    if no_model and not baselines:
        raise UsageError("--no-model needs --baselines (nothing to evaluate otherwise)")
    labelled = [open_dataset(d) for d in datasets]
    negs = [open_dataset(d, negatives=True) for d in (negatives or [])]
    for d in [*labelled, *negs]:
        d.select(split.value)  # fail early, with the dataset's splits in the message

    model = None
    thr = None
    if not no_model:
        from ..inference import load_model

        model = load_model(weights, device)
        thr = parse_threshold(threshold, model.threshold)
        if thr is None:
            raise UsageError("--threshold must be 'auto' or a number in 0..1")
    bayes = None
    names: tuple[str, ...] = ()
    if baselines:
        names = BASELINES
        fit_sets = [open_dataset(d) for d in bayes_train] if bayes_train else labelled
        fit_negs = [] if bayes_train else negs
        common.info_line("fitting the Jones & Rehg histograms on the train split of "
                         + ", ".join(d.name for d in [*fit_sets, *fit_negs]))
        bayes = fit_bayes(fit_sets, fit_negs)

    reports = []
    with common.make_progress() as progress:
        for d in [*labelled, *negs]:
            task = progress.add_task(d.name, total=len(d.select(split.value)), rate="")
            reports.append(evaluate_dataset(
                d, split.value, model=model, threshold=thr, baselines=names, bayes=bayes,
                progress=lambda i, n, task=task: progress.update(task, completed=i)))
            progress.remove_task(task)

    doc = {
        "weights": None if model is None else str(model.weights_path),
        "threshold": thr,
        "bayes_threshold": None if bayes is None else bayes.threshold,
        "datasets": reports,
    }
    if json_out:
        sys.stdout.write(json.dumps(doc, indent=1) + "\n")
    if not quiet:
        _print_table(reports)


def _print_table(reports: list[dict]) -> None:
    from rich import box
    from rich.table import Table

    table = Table(title="skin segmentation: per-image mean ± std, and pooled over all pixels", title_style="bold",
                  box=box.SIMPLE_HEAD)
    for col in ("dataset", "split", "n", "method", "precision", "recall", "F1", "IoU", "F1 pool", "IoU pool", "FP rate",
                "hair→skin", "small recall", "small found"):
        table.add_column(col, justify="left" if col in ("dataset", "split", "method") else "right", no_wrap=True)
    for rep in reports:
        first = True
        for method, s in rep["results"].items():
            def ms(k: str) -> str:
                return f"{s[k]['mean']:.3f}±{s[k]['std']:.2f}"

            neg = rep["negatives"]
            table.add_row(
                rep["dataset"] if first else "", rep["split"] if first else "", str(rep["images"]) if first else "",
                method, "–" if neg else ms("precision"), "–" if neg else ms("recall"), "–" if neg else ms("f1"),
                "–" if neg else ms("iou"), "–" if neg else f"{s['f1']['pooled']:.3f}",
                "–" if neg else f"{s['iou']['pooled']:.3f}", f"{s['fpr']['pooled']:.3f}",
                *(_share(s["failure"][k]) for k in ("hair_called_skin", "small_region_recall", "small_regions_found")),
            )
            first = False
        table.add_section()
    from rich.console import Console

    # a wide table: never squeeze it into 80 columns when stderr is a file or a narrow terminal
    Console(stderr=True, highlight=False, width=max(common.console.width, 150)).print(table)


def _share(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def register(app: typer.Typer) -> None:
    app.command(no_args_is_help=True)(evaluate)
