import numpy as np
import pytest

from skinmask.metrics import (Counts, MetricAccumulator, choose_threshold, confusion, f1_from_sweep, scores,
                              sweep_counts, threshold_grid)


def test_confusion_and_scores_by_hand():
    pred = np.array([[1, 1, 0, 0], [1, 0, 0, 0]], bool)
    truth = np.array([[1, 0, 1, 0], [1, 0, 0, 0]], bool)
    c = confusion(pred, truth)
    assert c == Counts(tp=2, fp=1, fn=1, tn=4)
    s = scores(c)
    assert s["precision"] == pytest.approx(2 / 3)
    assert s["recall"] == pytest.approx(2 / 3)
    assert s["f1"] == pytest.approx(2 / 3)
    assert s["iou"] == pytest.approx(2 / 4)
    assert s["fpr"] == pytest.approx(1 / 5)


def test_empty_cases():
    z = np.zeros((3, 3), bool)
    assert scores(confusion(z, z)) == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "iou": 1.0, "fpr": 0.0}
    one = z.copy()
    one[0, 0] = True
    s = scores(confusion(one, z))  # skin predicted where there is none
    assert s["f1"] == 0.0 and s["precision"] == 0.0 and s["fpr"] == pytest.approx(1 / 9)
    s = scores(confusion(z, one))  # skin missed
    assert s["f1"] == 0.0 and s["recall"] == 0.0


def test_accumulator_mean_std_pooled():
    acc = MetricAccumulator()
    acc.add(np.array([1, 1, 0, 0], bool), np.array([1, 1, 0, 0], bool))  # f1 1
    acc.add(np.array([1, 0, 0, 0], bool), np.array([0, 1, 1, 1], bool))  # tp0 fp1 fn3 -> f1 0
    s = acc.summary()
    assert s["images"] == 2
    assert s["f1"]["mean"] == pytest.approx(0.5)
    assert s["f1"]["std"] == pytest.approx(0.5)
    # pooled: tp 2, fp 1, fn 3 -> f1 = 4 / 8
    assert s["f1"]["pooled"] == pytest.approx(0.5)
    assert s["iou"]["pooled"] == pytest.approx(2 / 6)
    assert s["precision"]["pooled"] == pytest.approx(2 / 3)
    assert s["recall"]["pooled"] == pytest.approx(2 / 5)


def test_shape_mismatch():
    with pytest.raises(ValueError):
        confusion(np.zeros((2, 2)), np.zeros((2, 3)))


def test_sweep_matches_direct_thresholding(rng):
    prob = rng.random((20, 30))
    truth = rng.random((20, 30)) < prob  # correlated
    sw = sweep_counts(prob, truth)
    for k, t in enumerate(threshold_grid()):
        c = confusion(prob >= t, truth)
        # binning at 1/100: compare away from bin edges only
        if np.min(np.abs(prob - t)) > 1e-9:
            assert tuple(sw[k]) == (c.tp, c.fp, c.fn, c.tn)
    f1 = f1_from_sweep(sw)
    assert f1.shape == (99,)


def test_choose_threshold_prefers_separating_value():
    prob = np.array([0.1, 0.2, 0.35, 0.45, 0.8, 0.9])
    truth = np.array([0, 0, 0, 0, 1, 1], bool)
    thr, info = choose_threshold({"a": [sweep_counts(prob, truth)]})
    assert 0.45 < thr <= 0.8
    assert info["objective"] == pytest.approx(1.0)


def test_choose_threshold_floors_guard_a_dataset_against_regression():
    # "a" wants a high threshold, "b" a low one; the mean prefers a's, a floor on b moves it down
    prob = np.array([0.3, 0.5, 0.7, 0.9])
    a = [sweep_counts(prob, np.array([0, 0, 0, 1], bool))]
    b = [sweep_counts(prob, np.array([0, 1, 1, 1], bool))]
    thr, info = choose_threshold({"a": a, "b": b, "c": a})
    assert thr > 0.7 and info["guard_met"] and info["per_dataset"]["b"] < 0.7
    guarded, ginfo = choose_threshold({"a": a, "b": b, "c": a}, floors={"b": 0.79})
    assert 0.5 < guarded <= 0.7 and ginfo["per_dataset"]["b"] == pytest.approx(0.8) and ginfo["guard_met"]
    assert ginfo["objective"] < info["objective"]  # the guard costs the mean something
    same, sinfo = choose_threshold({"a": a, "b": b, "c": a}, floors={"b": 1.01})  # unreachable
    assert same == thr and not sinfo["guard_met"]


def test_choose_threshold_tie_takes_the_highest_near_best_and_keeps_the_floors():
    # "a" is best anywhere in [0.3, 0.9) (F1 1); "b" is slightly better low: the mean is nearly flat
    prob = np.array([0.2, 0.3, 0.9, 0.95])
    a = [sweep_counts(prob, np.array([0, 0, 1, 1], bool))]
    b = [sweep_counts(np.array([0.2, 0.5, 0.7, 0.9]), np.array([0, 1, 1, 1], bool)),
         sweep_counts(np.array([0.2, 0.35, 0.7, 0.9]), np.array([0, 0, 1, 1], bool))]
    best, info = choose_threshold({"a": a, "b": b})
    tied, tinfo = choose_threshold({"a": a, "b": b}, tie=0.1)
    assert tied > best and tinfo["objective"] >= info["objective"] - 0.1 and tinfo["objective"] < info["objective"]
    assert choose_threshold({"a": a, "b": b}, tie=0.0) == (best, info)
    floored, finfo = choose_threshold({"a": a, "b": b}, floors={"b": info["per_dataset"]["b"]}, tie=0.1)
    assert finfo["per_dataset"]["b"] >= info["per_dataset"]["b"] - 1e-9 and floored <= tied


def test_small_regions_and_failure_counts_by_hand():
    from skinmask.metrics import FailureCounts, small_regions

    truth = np.zeros((60, 60), bool)
    truth[2:6, 2:6] = True  # 16 px: small
    truth[10:14, 40:45] = True  # 20 px: small
    truth[30:60, 0:30] = True  # 900 px: large
    truth[20, 20] = True  # a 1-pixel speck: not a region
    labels, n = small_regions(truth, max_pixels=400)
    assert n == 2 and np.count_nonzero(labels) == 36 and set(np.unique(labels)) == {0, 1, 2}
    pred = np.zeros_like(truth)
    pred[2:6, 2:4] = True  # half of the first small region: found
    pred[10:11, 40:45] = True  # a quarter of the second: not found
    hair = np.zeros_like(truth)
    hair[0:2, :] = True  # 120 px of hair, 60 of them called skin (below)
    pred[0:2, 0:30] = True
    fc = FailureCounts()
    fc.add(pred, truth, hair)
    s = fc.summary()
    assert s["small_region_recall"] == pytest.approx(13 / 36)
    assert s["small_regions_found"] == pytest.approx(0.5) and s["small_regions"] == 2
    assert s["hair_called_skin"] == pytest.approx(60 / 120)
    assert s["called_skin"] == pytest.approx(np.count_nonzero(pred) / pred.size)
    assert small_regions(truth, max_pixels=400, min_pixels=1)[1] == 3
    empty = FailureCounts()
    empty.add(np.zeros((4, 4), bool), np.zeros((4, 4), bool))
    assert empty.summary()["hair_called_skin"] is None and empty.summary()["small_region_recall"] is None
