import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from skinmask.cli.app import app
from skinmask.datasets import open_dataset
from skinmask.evaluation import evaluate_dataset, fit_bayes
from skinmask.metrics import confusion, scores

from ._skin_synth import make_dataset


class FixedModel:
    """A stand-in model: probability 1 on exactly the given pixels."""

    threshold = 0.5

    def __init__(self, fn):
        self.fn = fn

    def probability_image(self, img):
        return self.fn(img).astype(np.float32)


def test_evaluate_matches_hand_computed(tmp_path):
    ds = open_dataset(make_dataset(tmp_path / "d", n=4, splits=("train", "val")))
    from skinmask.baselines import kovac_mask
    from skinmask.datasets import load_sample

    rep = evaluate_dataset(ds, "val", model=FixedModel(kovac_mask), baselines=("kovac", "ycrcb"))
    f1s = []
    for s in ds.select("val"):
        img, m = load_sample(s)
        f1s.append(scores(confusion(kovac_mask(img), m))["f1"])
    assert rep["split"] == "val" and rep["images"] == 2
    assert rep["results"]["model"]["f1"]["mean"] == pytest.approx(np.mean(f1s))
    assert rep["results"]["kovac"]["f1"]["mean"] == pytest.approx(np.mean(f1s))


def test_bayes_fit_on_train(tmp_path):
    ds = open_dataset(make_dataset(tmp_path / "d", n=6))
    hb = fit_bayes([ds])
    rep = evaluate_dataset(ds, "heldout", baselines=("bayes",), bayes=hb)
    assert rep["results"]["bayes"]["f1"]["mean"] > 0.8  # the disc colour is unique


def test_cli_train_and_evaluate(tmp_path):
    root = make_dataset(tmp_path / "d", n=8)
    w = tmp_path / "w.safetensors"
    runner = CliRunner()
    r = runner.invoke(app, ["train", str(root), "-o", str(w), "--arch", "softconv", "--scale", "1", "--steps", "6",
                            "--batch", "2", "--crop", "24", "--threads", "1", "-q"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert w.is_file()
    r = runner.invoke(app, ["evaluate", str(root), "--weights", str(w), "--baselines", "--json", "-q"],
                      catch_exceptions=False)
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert set(doc["datasets"][0]["results"]) == {"model", "ycrcb", "kovac", "bayes"}


def test_cli_split_and_missing_masks_errors(tmp_path, capsys):
    from skinmask.datasets import open_dataset as od  # noqa: F401
    from skinmask.errors import InputError, UsageError

    root = make_dataset(tmp_path / "d", n=4, splits=("train", "test"))
    runner = CliRunner()
    r = runner.invoke(app, ["evaluate", str(root), "--split", "val", "--no-model", "--baselines"])
    assert isinstance(r.exception, UsageError) and "no 'val' split" in str(r.exception)
    (root / "masks" / "s00.png").unlink()
    r = runner.invoke(app, ["evaluate", str(root), "--no-model", "--baselines"])
    assert isinstance(r.exception, InputError) and "no mask" in str(r.exception)


def test_evaluate_shared_abdomen_baselines(shared_data):
    ds = open_dataset(shared_data / "abdomen")
    rep = evaluate_dataset(ds, "val", baselines=("kovac",))
    assert rep["images"] == 121 and 0.3 < rep["results"]["kovac"]["f1"]["mean"] < 1


def test_softconv_ctx_beats_the_rules_on_abdomen_val(shared_data):
    """The model card's abdomen row for the session-3 net: `softconv-ctx` above the YCrCb and Kovac rules on
    abdomen val (0.901 vs 0.898 / 0.892), thanks to the small-image floor: at scale 0.4 (91x91 pixels) 0.891."""
    from skinmask.inference import load_model

    model = load_model("softconv-ctx", device="cpu")
    ds = open_dataset(shared_data / "abdomen")
    rep = evaluate_dataset(ds, "val", model=model, baselines=("ycrcb", "kovac"))
    f1 = {k: v["f1"]["mean"] for k, v in rep["results"].items()}
    assert f1["model"] > f1["ycrcb"] and f1["model"] > f1["kovac"], f1
    model.min_working_pixels = None
    assert evaluate_dataset(ds, "val", model=model)["results"]["model"]["f1"]["mean"] < f1["model"] - 0.005


def test_shipped_default_calls_less_background_skin_for_a_little_abdomen(shared_data):
    """The model card's session-5 trade: the default (softconv-ms-prior) calls fewer of the no-people
    backgrounds' pixels skin than softconv-ctx (0.202 vs 0.249) and stays within 0.015 of it on abdomen val
    (0.890 vs 0.901)."""
    from skinmask.inference import load_model

    new, old = load_model(None, device="cpu"), load_model("softconv-ctx", device="cpu")
    assert new.meta.arch == "softconv-ms-prior"
    abdomen, backgrounds = open_dataset(shared_data / "abdomen"), open_dataset(shared_data / "backgrounds", negatives=True)
    f1 = [evaluate_dataset(abdomen, "val", model=m)["results"]["model"]["f1"]["mean"] for m in (new, old)]
    assert f1[0] > f1[1] - 0.015, f1
    split = backgrounds.heldout_name()
    called = [evaluate_dataset(backgrounds, split, model=m)["results"]["model"]["failure"]["called_skin"] for m in (new, old)]
    assert called[0] < called[1] - 0.02, called
