"""`skinmask train`: labelled dataset folders -> a weights file with its threshold and provenance."""

from __future__ import annotations

import json
import shlex
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..archs import ARCHITECTURES
from . import common
from .common import DebugOpt, QuietOpt


class CloseupPrior(str, Enum):
    scaled = "scaled"
    segmenter = "segmenter"


def train(
    datasets: Annotated[list[Path], typer.Argument(
        help="Dataset folders, each with images/ and masks/ (same stems; mask 255 = skin) and optionally an "
        "index.csv with a split column.", show_default=False)],
    output: Annotated[Path, typer.Option("--output", "-o", help="Weights file to write (.safetensors).")] = Path(
        "skinmask.safetensors"),
    negatives: Annotated[Optional[list[Path]], typer.Option(
        "--negatives", "-n", help="Folder of photos with no people (every pixel non-skin); repeatable.",
        show_default=False)] = None,
    init: Annotated[Optional[str], typer.Option(
        "--init", help="Start from these weights ('default', a shipped name or a file) instead of from scratch; "
        "their architecture and scale are kept.", show_default=False)] = None,
    arch: Annotated[str, typer.Option("--arch", help=f"Architecture: {', '.join(ARCHITECTURES)}.")] = "softconv-ctx",
    scale: Annotated[float, typer.Option("--scale", help="Working scale: the network runs on frames resized by this "
                                         "factor (0.05..1), in training and in inference.")] = 0.4,
    steps: Annotated[int, typer.Option("--steps", min=0, help="Optimiser steps (0, with --init: keep the "
                                       "weights and only store the gate and choose the threshold).")] = 4000,
    epochs: Annotated[Optional[float], typer.Option(
        "--epochs", min=0.01, help="Instead of --steps: passes over the training images (one crop per image per "
        "pass).", show_default=False)] = None,
    batch: Annotated[int, typer.Option("--batch", min=1, help="Crops per step.")] = 24,
    crop: Annotated[int, typer.Option("--crop", min=16, help="Crop size in working pixels.")] = 96,
    lr: Annotated[float, typer.Option("--lr", help="Peak learning rate (Adam, cosine decay).")] = 3e-3,
    seed: Annotated[int, typer.Option("--seed", help="Random seed; same data + seed -> same weights.")] = 0,
    neg_weight: Annotated[float, typer.Option("--neg-weight", help="Sampling share of all negatives folders "
                                              "together, relative to one dataset.")] = 1.0,
    weight: Annotated[Optional[list[str]], typer.Option("--weight", help="NAME=W: sampling share of the dataset "
                                                        "folder NAME relative to the others (default 1); repeatable.",
                                                        show_default=False)] = None,
    paste: Annotated[float, typer.Option("--paste", help="Probability a negative crop gets skin pasted onto it.")] = 0.5,
    hard_mining: Annotated[float, typer.Option("--hard-mining", help="Add the mean loss of this fraction of the "
                                               "hardest pixels (0 = off).")] = 0.0,
    dice: Annotated[float, typer.Option("--dice", min=0.0, help="Add this weight x a per-crop soft-Dice loss to the "
                                        "BCE (0 = BCE only).")] = 1.0,
    zoom: Annotated[tuple[float, float], typer.Option("--zoom", help="MIN MAX: range of the random magnification "
                                                      "of each crop (log-uniform; 1 = the working scale).")] = (0.7, 1.4),
    light_aug: Annotated[float, typer.Option("--light-aug", min=0.0, help="Brightness gain exp(U(-a, a)) on every "
                                             "crop, colour ratios kept (0 = off; measured not to help the default).")] = 0.0,
    color_aug: Annotated[float, typer.Option("--color-aug", help="Strength of the illumination, white-balance, "
                                             "contrast and gamma jitter (0 = none, 1 = strong; measured to hurt, so off by default).")] = 0.0,
    hair_weight: Annotated[float, typer.Option("--hair-weight", min=0.0, help="BCE weight of labelled hair pixels "
                                               "(sets with labels_multiclass/, e.g. FASSEG): hair as an explicit "
                                               "negative (1 = like any other pixel).")] = 1.0,
    hard_negatives: Annotated[float, typer.Option("--hard-negatives", min=0.0, max=1.0, help="Probability a "
                                                  "negatives crop is centred on a skin-coloured pixel (YCrCb rule).")] = 0.0,
    person_paste: Annotated[float, typer.Option("--person-paste", min=0.0, max=1.0, help="Probability a negatives "
                                                "crop gets a labelled crop (a person) shrunk 2-5x and pasted onto it "
                                                "(small people on clutter).")] = 0.0,
    prior_dropout: Annotated[float, typer.Option("--prior-dropout", min=0.0, max=1.0, help="Probability a labelled "
                                                 "crop's person prior is zeroed (prior nets): skin the segmenter "
                                                 "misses, such as close-ups, stays skin.")] = 0.0,
    person_negative_weight: Annotated[float, typer.Option("--person-negative-weight", min=0.0, help="BCE weight "
                                                          "of labelled non-skin where the person prior says person "
                                                          "(hair, clothes), scaled by the prior (prior nets).")] = 1.0,
    closeups: Annotated[float, typer.Option("--closeups", min=0.0, max=1.0, help="Probability a labelled crop is "
                                            "a skin close-up: centred on skin and magnified 2-4x, so skin fills it "
                                            "(belly photos, tight face crops); prior nets see its prior scaled by "
                                            "U(0, 1).")] = 0.0,
    head_zoom: Annotated[Optional[list[str]], typer.Option("--head-zoom", help="NAME=P: probability a crop of the "
                                                           "dataset NAME is cut around its topmost skin region (an "
                                                           "upright person's face) at full resolution and magnified "
                                                           "1-2x: small people's heads at webcam size, hair and "
                                                           "collars labelled non-skin; repeatable.",
                                                           show_default=False)] = None,
    closeup_prior: Annotated[CloseupPrior, typer.Option("--closeup-prior", help="A close-up's person prior (prior nets): the image's scaled "
                                               "by U(0, 1), or the segmenter run on the close-up itself (what it "
                                               "says of such a photo).")] = CloseupPrior.scaled,
    hair_recolour: Annotated[float, typer.Option("--hair-recolour", min=0.0, max=1.0, help="Probability a "
                                                 "crop's labelled hair (labels_multiclass/) is recoloured blonde, "
                                                 "red, light brown or grey: skin-coloured hair as a negative.")] = 0.0,
    no_worse_than: Annotated[Optional[str], typer.Option("--no-worse-than", metavar="WEIGHTS", help="Regression "
                                                         "guard: choose the threshold only among those where no "
                                                         "held-out split scores more than --tolerance below these "
                                                         "weights (e.g. the default being replaced).")] = None,
    tolerance: Annotated[float, typer.Option("--tolerance", min=0.0, help="Per-image mean F1 a held-out split may "
                                             "lose against --no-worse-than.")] = 0.01,
    ema: Annotated[float, typer.Option("--ema", min=0.0, max=0.9999, metavar="DECAY", help="Save the exponential "
                                       "moving average of the weights with this decay (e.g. 0.998: about the last "
                                       "500 steps) instead of the last step's (0 = off).")] = 0.0,
    person_gate: Annotated[Optional[tuple[float, float]], typer.Option("--person-gate", metavar="LO HI", help="Store "
                                                                       "a person gate with the weights (prior nets): in "
                                                                       "a frame whose skin share (probability >= 0.5) "
                                                                       "is at most LO, skin outside the person prior "
                                                                       "is dropped; ramped off up to HI, so close-ups "
                                                                       "keep theirs. The threshold is chosen with it.",
                                                                       show_default=False)] = None,
    gate_faces: Annotated[Optional[float], typer.Option("--gate-faces", metavar="SHARE", help="With --person-gate: "
                                                        "also gate every frame where the shipped face networks "
                                                        "find a face and the person prior covers at least SHARE "
                                                        "of it (portraits whose backdrop is called skin; the face "
                                                        "networks are named in the weights).",
                                                        show_default=False)] = None,
    hair_zone: Annotated[Optional[tuple[float, float, float, float]], typer.Option(
        "--hair-zone", metavar="ABOVE SIDE BELOW FOREHEAD", help="Store a hair zone with the weights (prior nets): "
        "around every face the shipped face networks find, from ABOVE face heights over the face's top to BELOW "
        "under it and SIDE face widths beside it, less the face and FOREHEAD face heights above it, nothing is "
        "skin (light hair). The threshold is chosen with it.", show_default=False)] = None,
    fine_pass: Annotated[Optional[tuple[float, float, float]], typer.Option(
        "--fine-pass", metavar="MAX_HEIGHT MAX_SKIN FACTOR", help="Store a fine pass with the weights (prior nets): "
        "in a frame where the face networks (if named) find no face, people the person prior finds, all shorter "
        "than MAX_HEIGHT of the frame, with under MAX_SKIN of it called skin (or, where it finds no one, small "
        "spots called skin) are worked on again at FACTOR times the working scale (small, distant people). The "
        "threshold is chosen with it.",
        show_default=False)] = None,
    face_colour: Annotated[Optional[tuple[float, float, float]], typer.Option(
        "--face-colour", metavar="NEAR FAR REACH", help="Store a face colour rule with the weights (prior nets): "
        "within REACH face sizes of every face the shipped face networks find, skin probability is kept where the "
        "colour is within NEAR of that face's own skin colour (a*, b* Mahalanobis distance) and faded out to "
        "none at FAR (light hair, collars, hats). The threshold is chosen with it.", show_default=False)] = None,
    threshold_tie: Annotated[float, typer.Option("--threshold-tie", min=0.0, metavar="TOL", help="Choose the "
                                                 "highest threshold whose mean held-out F1 is within TOL of the "
                                                 "best (fewer false alarms where the mean is flat; 0 = the best).")] = 0.0,
    no_augment: Annotated[bool, typer.Option("--no-augment", help="Turn off augmentation.")] = False,
    threads: Annotated[int, typer.Option("--threads", min=1, help="CPU threads for torch.")] = 2,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace the output file if it exists.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the saved metadata as JSON on stdout.")] = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Train a skin network on dataset folders and save weights with a calibrated threshold.

    Batches draw every dataset equally often (balanced sampling). The mask threshold is chosen on the
    datasets' held-out splits (val, else test; HGR1-like folders without a split get a fixed 1-in-5
    holdout) and stored with the weights: `skinmask predict --threshold auto` uses it.

    Examples:

      skinmask train ../shared/data/sfa ../shared/data/hgr1 --negatives ../shared/data/backgrounds -o models/my.safetensors

      skinmask train mydata/ --init default --epochs 5 -o mine.safetensors
    """
    common.setup(debug, quiet)
    from ..datasets import open_dataset
    from ..errors import OutputError, UsageError
    from ..training import TrainConfig
    from ..training import train as run_train
    from ..weights import save_weights

    if output.exists() and not overwrite:
        raise OutputError("already exists (use --overwrite to replace it)", output)
    if output.suffix != ".safetensors":
        raise UsageError(f"--output must end in .safetensors, not {output.name!r}")
    if not output.parent.exists():
        raise OutputError("the output folder does not exist", output.parent)
    if not 0.05 <= scale <= 1.0:
        raise UsageError(f"--scale must be in 0.05..1, not {scale}")
    if not 0 < zoom[0] <= zoom[1]:
        raise UsageError(f"--zoom {zoom[0]:g} {zoom[1]:g}: expected 0 < MIN <= MAX, e.g. --zoom 0.7 1.4")
    if no_worse_than is not None:  # fail now, not after training
        from ..weights import read_weights, resolve_weights

        read_weights(resolve_weights(no_worse_than))
    labelled = [open_dataset(d) for d in datasets]
    negs = [open_dataset(d, negatives=True) for d in (negatives or [])]
    shares = _parse_weights(weight or [], [d.name for d in labelled])
    heads = _parse_weights(head_zoom or [], [d.name for d in labelled], "--head-zoom", "ccp=0.3")
    if person_gate is not None or gate_faces is not None:
        from ..training import check_person_gate

        # with --init the weights name the arch: train() checks it
        check_person_gate("" if init else arch, person_gate, gate_faces)
    if steps == 0 and not init and epochs is None:
        raise UsageError("--steps 0 keeps the weights it starts from: it needs --init WEIGHTS")
    if hair_zone is not None:
        from ..training import check_hair_zone

        check_hair_zone("" if init else arch, hair_zone)
    if fine_pass is not None:
        from ..training import check_fine_pass

        check_fine_pass("" if init else arch, fine_pass)
    if face_colour is not None:
        from ..training import check_face_colour

        check_face_colour("" if init else arch, face_colour)
    if any(p > 1 for p in heads.values()):
        raise UsageError(f"--head-zoom: a probability is at most 1, not {max(heads.values()):g}")
    cfg = TrainConfig(arch=arch, scale=scale, steps=steps, batch=batch, crop=crop, lr=lr, seed=seed,
                      neg_weight=neg_weight, dataset_weights=shares, paste=paste, hard_mining=hard_mining, dice=dice, augment=not no_augment,
                      zoom=(float(zoom[0]), float(zoom[1])), light_aug=light_aug, color_aug=color_aug,
                      threads=threads, init=init, hair_weight=hair_weight, hard_negatives=hard_negatives,
                      person_paste=person_paste, prior_dropout=prior_dropout, closeups=closeups, head_zoom=heads,
                      person_negative_weight=person_negative_weight, hair_recolour=hair_recolour, closeup_prior=closeup_prior.value,
                      no_worse_than=no_worse_than, tolerance=tolerance, ema=ema,
                      threshold_tie=threshold_tie, gate_faces=gate_faces,
                      hair_zone=None if hair_zone is None else tuple(float(v) for v in hair_zone),
                      fine_pass=None if fine_pass is None else tuple(float(v) for v in fine_pass),
                      face_colour=None if face_colour is None else tuple(float(v) for v in face_colour),
                      person_gate=None if person_gate is None else (float(person_gate[0]), float(person_gate[1])))
    if epochs is not None:
        n_images = sum(len(d.select("train")) for d in labelled) + sum(len(d.select("train")) for d in negs)
        cfg.steps = max(1, round(epochs * n_images / batch))
    for d in labelled:
        d.select("train")
    if not any(d.has_heldout() for d in labelled):
        labelled[0].select("heldout")  # fails naming the set: nothing to choose the threshold on
    command = "skinmask " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    common.info_line(f"training {cfg.arch if not init else 'from ' + init} for {cfg.steps} steps on "
                     + ", ".join(f"{d.name} ({len(d.select('train'))})" for d in labelled)
                     + (f" + negatives {', '.join(d.name for d in negs)}" if negs else ""))

    with common.make_progress() as progress:
        task = progress.add_task("training", total=cfg.steps, rate="")

        def on_step(step: int, total: int, rec: dict) -> None:
            f1 = rec.get("val_f1_mean")
            progress.update(task, completed=step,
                            rate=f"loss {rec['loss']:.4f}" + (f" val F1 {f1:.3f}" if f1 is not None else ""))

        log = (lambda s: progress.console.print(s, soft_wrap=True, markup=False)) if not quiet else None
        result = run_train(labelled, negs, cfg, command=command, log=log, progress=on_step)
    save_weights(output, result.model, result.meta)
    common.info_line(f"[green]saved[/] {output}: arch {result.meta.arch}, scale {result.meta.scale}, "
                     f"threshold {result.meta.threshold:.2f}, {result.seconds:.0f} s")
    if json_out:
        sys.stdout.write(json.dumps({"weights": str(output), "arch": result.meta.arch, "scale": result.meta.scale,
                                     "threshold": result.meta.threshold, "info": result.meta.info}) + "\n")


def register(app: typer.Typer) -> None:
    app.command(no_args_is_help=True)(train)


def _parse_weights(items: list[str], names: list[str], option: str = "--weight",
                   example: str = "abdomen=2") -> dict[str, float]:
    """NAME=W options (--weight, --head-zoom) -> {name: value}; unknown names and bad numbers are usage errors."""
    from ..errors import UsageError

    shares: dict[str, float] = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            share = float(value)
        except ValueError:
            share = -1.0
        if not sep or not share >= 0:
            raise UsageError(f"{option} {item!r}: expected NAME=W with W >= 0, e.g. {example}")
        if name not in names:
            raise UsageError(f"{option} {item!r}: no dataset folder named {name!r} (have: {', '.join(names)})")
        shares[name] = share
    return shares
