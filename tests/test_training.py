from dataclasses import replace

import numpy as np
import pytest
import torch

from skinmask.datasets import open_dataset
from skinmask.engines import onnxruntime_available
from skinmask.inference import SkinModel, load_model
from skinmask.training import BatchMaker, TrainConfig, load_source, train
from skinmask.weights import InputSpec, load_weights, save_weights

from ._skin_synth import make_dataset


def _cfg(**kw):
    base = dict(arch="softconv", scale=1.0, steps=30, batch=4, crop=32, lr=1e-2, seed=3, val_every=15,
                val_images=2, threads=1)
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture
def synth(tmp_path):
    return [open_dataset(make_dataset(tmp_path / "a", n=8, seed=1))], [open_dataset(make_dataset(tmp_path / "n", n=3, seed=2), negatives=True)]


def test_training_reduces_loss_and_is_deterministic(synth, tmp_path):
    ds, neg = synth
    r1 = train(ds, neg, _cfg(), command="test")
    r2 = train(ds, neg, _cfg(), command="test")
    for (k, a), (_, b) in zip(r1.model.state_dict().items(), r2.model.state_dict().items()):
        assert torch.equal(a, b), k
    assert r1.meta.threshold == r2.meta.threshold
    # the loss goes down: compare the untrained net with the trained one on a fixed batch
    src = load_source(ds[0], "train", 1.0, 1.0)
    imgs, masks = BatchMaker([src], _cfg(augment=False), seed=9).batch()
    from skinmask.engines import to_input
    from skinmask.model import build_model

    torch.manual_seed(3)
    fresh = build_model("softconv")
    x, y = to_input(imgs, r1.meta.input, torch.device("cpu")), torch.from_numpy(masks)[:, None]
    bce = torch.nn.functional.binary_cross_entropy
    with torch.no_grad():
        assert bce(r1.model(x), y) < bce(fresh(x), y)
    info = r1.meta.info
    assert info["seed"] == 3 and info["command"] == "test"
    assert info["data"][0]["sha256_train_files"] and info["data"][1]["negatives"]
    assert 0 < r1.meta.threshold < 1


def test_dice_term_trains_deterministically_and_changes_the_result(synth):
    """--dice adds a per-crop soft-Dice loss: still reproducible, lowers the Dice loss it adds, and it
    is not a no-op."""
    ds, neg = synth
    a = train(ds, neg, _cfg(dice=1.0), calibrate=False).model
    b = train(ds, neg, _cfg(dice=1.0), calibrate=False).model
    plain = train(ds, neg, _cfg(dice=0.0), calibrate=False).model
    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k]), k
    assert not torch.equal(a.state_dict()["conv1.weight"], plain.state_dict()["conv1.weight"])
    src = load_source(ds[0], "train", 1.0, 1.0)
    imgs, masks = BatchMaker([src], _cfg(augment=False), seed=9).batch()
    from skinmask.engines import to_input
    from skinmask.model import build_model

    torch.manual_seed(3)
    fresh = build_model("softconv")
    x, y = to_input(imgs, InputSpec(), torch.device("cpu")), torch.from_numpy(masks)[:, None]

    def dice_loss(net):
        with torch.no_grad():
            p = net(x)
        inter = (p * y).sum(dim=(1, 2, 3))
        return float((1 - (2 * inter + 1) / (p.sum(dim=(1, 2, 3)) + y.sum(dim=(1, 2, 3)) + 1)).mean())

    assert dice_loss(a) < dice_loss(fresh)


def test_dataset_weights_set_the_sampling_shares(synth, tmp_path):
    ds, neg = synth
    other = open_dataset(make_dataset(tmp_path / "b", n=4, seed=5))
    srcs = [load_source(ds[0], "train", 1.0, 3.0), load_source(other, "train", 1.0, 1.0)]
    maker = BatchMaker(srcs, _cfg(), seed=0)
    assert maker.p.tolist() == [0.75, 0.25]
    r = train([ds[0], other], [], _cfg(steps=2, dataset_weights={other.name: 0.0}), calibrate=False)
    assert r.meta.info["config"]["dataset_weights"] == {other.name: 0.0}
    with pytest.raises(Exception, match="weight 0"):
        BatchMaker([load_source(ds[0], "train", 1.0, 0.0)], _cfg(), seed=0)


def test_cli_weight_option_errors(run_cli, synth, tmp_path):
    root = synth[0][0].root
    res = run_cli("train", root, "--weight", "nope=2", "-o", tmp_path / "w.safetensors")
    assert res.code == 2 and "no dataset folder named 'nope'" in res.err
    res = run_cli("train", root, "--weight", f"{root.name}=-1", "-o", tmp_path / "w.safetensors")
    assert res.code == 2 and "expected NAME=W" in res.err
    res = run_cli("train", root, "--no-worse-than", tmp_path / "gone.safetensors", "-o", tmp_path / "w.safetensors")
    assert res.code == 1 and "gone.safetensors: no such weights file" in res.err and "Traceback" not in res.err
    assert not (tmp_path / "w.safetensors").exists()
    res = run_cli("train", root, "--head-zoom", "nope=0.3", "-o", tmp_path / "w.safetensors")
    assert res.code == 2 and "--head-zoom 'nope=0.3': no dataset folder named 'nope'" in res.err
    res = run_cli("train", root, "--head-zoom", f"{root.name}=2", "-o", tmp_path / "w.safetensors")
    assert res.code == 2 and "at most 1" in res.err and not (tmp_path / "w.safetensors").exists()


def test_zoom_sets_the_crop_magnification(tmp_path):
    """--zoom MIN MAX: a crop at zoom 2 shows a stripe twice as wide as at zoom 1."""
    img = np.zeros((64, 64, 3), np.uint8)
    img[:, 28:36] = 200  # an 8-pixel stripe through the centre
    mask = (img[..., 0] > 0).astype(np.float32)
    from skinmask.training import _Source

    src = _Source("s", [img], [mask], [np.array([[32, 32]], np.int32)], 1.0)
    widths = {}
    for z in (1.0, 2.0):
        cfg = _cfg(crop=32, zoom=(z, z), skin_crop=1.0, color_aug=0.0)
        crops = [BatchMaker([src], cfg, seed=s)._sample(src)[1] for s in range(4)]
        widths[z] = np.mean([(c[16] > 0.5).sum() for c in crops])
    assert widths[1.0] == pytest.approx(8, abs=1) and widths[2.0] == pytest.approx(16, abs=2)


def test_light_aug_changes_brightness_not_colour_ratios():
    img = np.full((40, 40, 3), (60, 90, 150), np.uint8)
    from skinmask.training import _Source

    src = _Source("s", [img], [np.zeros((40, 40), np.float32)], [np.zeros((0, 2), np.int32)], 1.0)
    out = [BatchMaker([src], _cfg(crop=32, light_aug=0.5, color_aug=0.0, zoom=(1, 1)), seed=s)._sample(src)[0]
           for s in range(12)]
    means = np.array([o.reshape(-1, 3).mean(0) for o in out])
    assert means[:, 2].std() > 5  # brightness varies
    ratio = means[:, 2] / means[:, 0]
    assert np.abs(ratio - 2.5).max() < 0.3  # colour ratios kept (up to rounding, blur, noise, JPEG)


def test_cli_zoom_option_errors(run_cli, synth, tmp_path):
    res = run_cli("train", synth[0][0].root, "--zoom", "2", "1", "-o", tmp_path / "w.safetensors")
    assert res.code == 2 and "--zoom 2 1" in res.err
    assert not (tmp_path / "w.safetensors").exists()


def test_different_seed_differs(synth):
    ds, neg = synth
    a = train(ds, neg, _cfg(steps=5), calibrate=False).model.state_dict()
    b = train(ds, neg, _cfg(steps=5, seed=4), calibrate=False).model.state_dict()
    assert not torch.equal(a["conv1.weight"], b["conv1.weight"])


@pytest.mark.parametrize("arch", ["softconv-ctx", "softconv-ms"])
def test_saved_file_loads_and_predicts_identically(synth, tmp_path, arch):
    ds, neg = synth
    r = train(ds, neg, _cfg(arch=arch, scale=0.5, steps=4, crop=24), calibrate=False)
    path = save_weights(tmp_path / "w.safetensors", r.model, r.meta)
    net, meta = load_weights(path)
    assert meta.arch == arch and meta.scale == 0.5 and meta.info["seed"] == 3
    img = np.random.default_rng(0).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    a = SkinModel(r.model, r.meta, torch.device("cpu")).probability_image(img)
    b = SkinModel(net, meta, torch.device("cpu")).probability_image(img)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (37, 53)
    if onnxruntime_available():  # the fast engine rebuilt from the file gives the same map
        c = load_model(path, engine="onnxruntime").probability_image(img)
        assert np.abs(c - a).max() < 1e-5


def test_fine_tune_keeps_arch(synth, tmp_path):
    ds, neg = synth
    r = train(ds, neg, _cfg(arch="softconv-ctx", scale=0.5, steps=3, crop=24), calibrate=False)
    p = save_weights(tmp_path / "base.safetensors", r.model, r.meta)
    r2 = train(ds, [], _cfg(init=str(p), steps=3, crop=24), calibrate=False)
    assert r2.meta.arch == "softconv-ctx" and r2.meta.scale == 0.5


def test_safetensors_header_length_ending_in_0x80_still_loads(tmp_path):
    """A safetensors file whose header length ends in byte 0x80 is not a pickle (regression)."""
    from skinmask.model import build_model
    from skinmask.weights import WeightsMeta

    net = build_model("softconv")
    for k in range(300):
        p = save_weights(tmp_path / "w.safetensors", net, WeightsMeta(info={"pad": "x" * k}))
        if p.read_bytes()[:1] == b"\x80":
            break
    else:
        pytest.skip("no padding produced a 0x80 first byte")
    _, meta = load_weights(p)
    assert meta.info["pad"] == "x" * k


def test_prior_net_trains_with_the_person_prior_and_carries_it(synth, tmp_path, monkeypatch):
    """A prior architecture trains on cached person maps, names its prior network and checksum, and
    both engines then compute the prior themselves and agree."""
    from skinmask.inference import load_model
    from skinmask.onnxnets import NETS

    monkeypatch.setenv("SKINMASK_PRIOR_CACHE", str(tmp_path / "cache"))
    ds, neg = synth
    cfg = _cfg(arch="softconv-prior", scale=1.0, steps=4, crop=24)
    r = train(ds, neg, cfg, calibrate=False)
    assert r.meta.prior.network == "selfie_segmentation" and r.meta.prior.sha256 == NETS["selfie_segmentation"].sha256
    cached = sorted((tmp_path / "cache").glob("*.png"))
    assert len(cached) == len(ds[0].samples) + len(neg[0].select("train"))  # train + held-out, negatives' train
    r2 = train(ds, neg, cfg, calibrate=False)  # from the cache: the same weights
    for k, v in r.model.state_dict().items():
        assert torch.equal(v, r2.model.state_dict()[k]), k
    path = save_weights(tmp_path / "p.safetensors", r.model, r.meta)
    img = np.random.default_rng(1).integers(0, 256, (40, 52, 3), dtype=np.uint8)
    fast, ref = load_model(path, "cpu", "onnxruntime"), load_model(path, "cpu", "torch")
    a, b = fast.probability_image(img), ref.probability_image(img)
    assert a.shape == (40, 52) and np.abs(a - b).max() < 1e-5
    # --person-negative-weight weighs non-skin where the prior says person: it changes a prior net's training
    weighted = train(ds, neg, _cfg(arch="softconv-prior", scale=1.0, steps=4, crop=24, person_negative_weight=4.0),
                     calibrate=False).model.state_dict()
    assert not torch.equal(weighted["conv1.weight"], r.model.state_dict()["conv1.weight"])


def test_person_share_net_trains_on_each_crops_photo_share(synth, tmp_path, monkeypatch):
    """softconv-ps-prior trains on the share the batches give each crop (not the crop's own), and the saved
    net then computes the share of the whole frame itself, alike in both engines."""
    import skinmask.training as training
    from skinmask.inference import load_model

    monkeypatch.setenv("SKINMASK_PRIOR_CACHE", str(tmp_path / "cache"))
    ds, neg = synth
    cfg = _cfg(arch="softconv-ps-prior", scale=1.0, steps=3, crop=24, batch=2)
    runs = {}
    for share in (0.0, 0.6):
        monkeypatch.setattr(training, "frame_person_share", lambda prior, share=share: share)
        runs[share] = train(ds, neg, cfg, calibrate=False)
    w0, w6 = (runs[s].model.state_dict()["person_share.weight"] for s in (0.0, 0.6))
    assert not torch.equal(w0, w6)  # the share reached the net's frame-level layer
    path = save_weights(tmp_path / "ps.safetensors", runs[0.6].model, runs[0.6].meta)
    img = np.random.default_rng(1).integers(0, 256, (40, 52, 3), dtype=np.uint8)
    a = load_model(path, "cpu", "onnxruntime").probability_image(img)
    b = load_model(path, "cpu", "torch").probability_image(img)
    assert a.shape == (40, 52) and np.abs(a - b).max() < 1e-5


def test_hair_weight_and_person_paste(tmp_path):
    """--hair-weight weighs labelled hair (changes the result); --person-paste puts labelled skin, shrunk,
    onto negative crops."""
    import cv2

    root = make_dataset(tmp_path / "h", n=8, seed=1)
    (root / "labels_multiclass").mkdir()
    for p in sorted((root / "masks").glob("*.png")):
        labels = np.zeros(cv2.imread(str(p), 0).shape, np.uint8)
        labels[:12] = 1  # a band of "hair" along the top
        cv2.imwrite(str(root / "labels_multiclass" / p.name), labels)
    ds = [open_dataset(root)]
    neg = [open_dataset(make_dataset(tmp_path / "n", n=3, seed=2), negatives=True)]
    plain = train(ds, neg, _cfg(), calibrate=False).model.state_dict()
    weighted = train(ds, neg, _cfg(hair_weight=5.0), calibrate=False).model.state_dict()
    assert not torch.equal(plain["conv1.weight"], weighted["conv1.weight"])
    src = load_source(ds[0], "train", 1.0, 1.0, hair=True)
    assert src.aux is not None and src.aux[0][:12, :, 0].min() == 255 and src.aux[0][12:, :, 0].max() == 0
    srcs = [src, load_source(neg[0], "train", 1.0, 1.0)]
    maker = BatchMaker(srcs, _cfg(crop=32, person_paste=1.0, augment=False), seed=0)
    for _ in range(10):
        img, m, _a, _share = maker._sample(srcs[1])
        assert m.shape == (32, 32)
        if m.max() > 0.5:  # a pasted person: its skin is at most a 16x16 box (shrunk at least 2x)
            ys, xs = np.nonzero(m > 0.5)
            assert ys.max() - ys.min() < 16 and xs.max() - xs.min() < 16
            break
    else:
        pytest.fail("no pasted skin in 10 negative crops")


def test_prior_dropout_zeroes_labelled_priors_only(tmp_path):
    from skinmask.training import _Source

    img = np.full((40, 40, 3), 128, np.uint8)
    mask = np.zeros((40, 40), np.float32)
    mask[10:30, 10:30] = 1.0
    aux = np.zeros((40, 40, 2), np.uint8)
    aux[..., 1] = 200  # the segmenter's prior
    pts = np.array([[20, 20]], np.int32)
    labelled = _Source("l", [img], [mask], [pts], 1.0, aux=[aux])
    negative = _Source("n", [img], [np.zeros_like(mask)], [pts], 1.0, negatives=True, aux=[aux])
    for rate, want in ((1.0, 0), (0.0, 200)):
        maker = BatchMaker([labelled, negative], _cfg(crop=24, prior_dropout=rate, paste=0.0, augment=False), seed=0)
        assert maker._sample(labelled)[2][..., 1].max() == want
        assert maker._sample(negative)[2][..., 1].min() == 200  # negatives keep theirs


def test_each_crop_carries_the_person_share_of_the_photo_it_stands_for(tmp_path):
    """A plain crop carries its whole image's share of person (the crop's own may be 0 or 1); a close-up,
    a photo of its own, carries its own (scaled) prior's; a crop whose prior was dropped carries 0."""
    from skinmask.training import _Source, frame_person_share

    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (80, 80, 3), dtype=np.uint8)
    mask = np.zeros((80, 80), np.float32)
    mask[50:70, 50:70] = 1.0
    aux = np.zeros((80, 80, 2), np.uint8)
    aux[40:, 40:, 1] = 200  # a quarter of the image is person
    src = _Source("l", [img], [mask], [np.argwhere(mask > 0).astype(np.int32)], 1.0, aux=[aux])

    def samples(**kw) -> list:
        maker = BatchMaker([src], _cfg(crop=24, paste=0.0, color_aug=0.0, **kw), seed=0)
        return [maker._sample(src) for _ in range(20)]

    plain = samples(closeups=0.0)
    assert all(share == 0.25 for *_, share in plain)
    assert {frame_person_share(a[..., 1]) for _, _, a, _ in plain} != {0.25}  # what the crops alone would say
    close = samples(closeups=1.0)
    assert all(share == frame_person_share(a[..., 1]) for _, _, a, share in close)
    assert all(share == 0.0 for *_, share in samples(prior_dropout=1.0))
    imgs, masks, aux_b, shares = BatchMaker([src], _cfg(crop=24, batch=5, paste=0.0), seed=0).batch_with_shares()
    assert shares.shape == (5,) and shares.dtype == np.float32 and aux_b.shape == (5, 24, 24, 2)


def test_closeups_fill_labelled_crops_with_skin_and_scale_their_prior(tmp_path):
    from skinmask.training import _Source

    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (80, 80, 3), dtype=np.uint8)
    mask = np.zeros((80, 80), np.float32)
    mask[30:50, 30:50] = 1.0  # a 20x20 patch of skin in an 80x80 image
    aux = np.zeros((80, 80, 2), np.uint8)
    aux[..., 1] = 200
    pts = np.argwhere(mask > 0).astype(np.int32)
    labelled = _Source("l", [img], [mask], [pts], 1.0, aux=[aux])
    negative = _Source("n", [img], [np.zeros_like(mask)], [pts], 1.0, negatives=True, aux=[aux])

    def crops(closeups: float, src: _Source = labelled) -> list:
        cfg = _cfg(crop=24, closeups=closeups, skin_crop=0.0, paste=0.0, color_aug=0.0)
        maker = BatchMaker([labelled, negative], cfg, seed=0)
        return [maker._sample(src) for _ in range(30)]

    plain, close = crops(0.0), crops(1.0)
    # ordinary crops show skin beside other things; close-ups (centred on skin, magnified) mostly skin
    skin_plain, skin_close = np.mean([m.mean() for _, m, _, _ in plain]), np.mean([m.mean() for _, m, _, _ in close])
    assert skin_plain < 0.3 and skin_close > 0.6 and skin_close > 2.5 * skin_plain
    priors = [float(a[..., 1].max()) for _, _, a, _ in close]
    assert max(priors) <= 200 and min(priors) < 150  # the prior of a close-up is scaled by U(0, 1)
    assert all(a[..., 1].min() == 200 for _, _, a, _ in crops(1.0, negative))  # negatives are never close-ups


def test_closeup_prior_segmenter_replaces_a_closeups_prior_with_the_crops_own(tmp_path, monkeypatch):
    from skinmask.prior import PersonPrior, default_prior_spec
    from skinmask.training import _Source

    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (80, 80, 3), dtype=np.uint8)
    mask = np.zeros((80, 80), np.float32)
    mask[20:60, 20:60] = 1.0
    aux = np.zeros((80, 80, 2), np.uint8)
    aux[..., 1] = 200  # the whole image's prior
    src = _Source("l", [img], [mask], [np.argwhere(mask > 0).astype(np.int32)], 1.0, aux=[aux])
    seen = []

    def crop_prior(crop):
        seen.append(crop.shape)
        return np.full(crop.shape[:2], 37, np.uint8)

    cfg = _cfg(crop=24, closeups=1.0, closeup_prior="segmenter", paste=0.0, color_aug=0.0)
    crops = [BatchMaker([src], cfg, seed=0, crop_prior=crop_prior)._sample(src) for _ in range(5)]
    assert seen == [(24, 24, 3)] * 5 and all((a[..., 1] == 37).all() for _, _, a, _ in crops)
    scaled = [BatchMaker([src], replace(cfg, closeup_prior="scaled"), seed=0, crop_prior=crop_prior)._sample(src)
              for _ in range(5)]
    assert len(seen) == 5 and all(a[..., 1].max() <= 200 for _, _, a, _ in scaled)  # the image's, scaled
    # train() hands a prior net's own segmenter to the batches: its map of a close-up crop
    monkeypatch.setenv("SKINMASK_PRIOR_CACHE", str(tmp_path / "cache"))
    ds = [open_dataset(make_dataset(tmp_path / "a", n=4, seed=1))]
    calls = []
    real = PersonPrior.maps
    monkeypatch.setattr(PersonPrior, "maps", lambda self, frames: calls.append(frames.shape) or real(self, frames))
    train(ds, [], _cfg(arch="softconv-prior", steps=3, crop=24, closeups=1.0, closeup_prior="segmenter"), calibrate=False)
    assert (1, 24, 24, 3) in calls
    person = PersonPrior(default_prior_spec(), threads=1).maps(img[None])
    assert person.shape == (1, 80, 80) and person.dtype == np.uint8


def test_hair_recolour_turns_labelled_hair_light_and_leaves_the_rest(tmp_path):
    import cv2

    from skinmask.training import HAIR_COLOURS, _Source, recolour_hair

    rng = np.random.default_rng(0)
    img = np.full((60, 60, 3), (40, 120, 200), np.uint8)  # a warm face-like BGR patch
    img[:20] = rng.integers(15, 45, (20, 60, 3), dtype=np.uint8)  # dark, textured hair on top
    hair = np.zeros((60, 60), np.uint8)
    hair[:20] = 255
    lab_lo = min(lo for (lo, _), _, _ in HAIR_COLOURS.values())
    for seed in range(8):
        out = recolour_hair(img, hair, np.random.default_rng(seed))
        assert np.array_equal(out[20:], img[20:])  # skin untouched
        lab = cv2.cvtColor(out[:20], cv2.COLOR_BGR2LAB).reshape(-1, 3).astype(np.float32)
        assert lab[:, 0].mean() > lab_lo - 10  # lighter than the dark original (L ~ 20)
        assert lab[:, 0].std() > 1.5  # the strands' texture survives
    assert np.array_equal(recolour_hair(img, np.zeros_like(hair), rng), img)  # no hair: nothing to do

    aux = np.zeros((60, 60, 2), np.uint8)
    aux[..., 0] = hair
    mask = np.zeros((60, 60), np.float32)
    mask[20:] = 1.0
    src = _Source("l", [img], [mask], [np.argwhere(mask > 0).astype(np.int32)], 1.0, aux=[aux])

    def hair_lightness(rate: float) -> float:
        maker = BatchMaker([src], _cfg(crop=60, zoom=(1.0, 1.0), hair_recolour=rate, color_aug=0.0, augment=False), seed=0)
        crops = [maker._sample(src) for _ in range(6)]
        return float(np.mean([cv2.cvtColor(c, cv2.COLOR_BGR2LAB)[..., 0][a[..., 0] > 127].mean() for c, _, a, _ in crops]))

    assert hair_lightness(0.0) < 40 < lab_lo < hair_lightness(1.0)


def test_no_worse_than_scores_the_reference_and_says_when_it_cannot_be_kept(synth, tmp_path):
    ds, neg = synth
    name = ds[0].name
    ref = train(ds, neg, _cfg(steps=30), command="ref")
    ref_path = save_weights(tmp_path / "ref.safetensors", ref.model, ref.meta)
    weak = _cfg(steps=3, seed=5)  # a barely trained net: no threshold of it reaches the reference
    plain = train(ds, neg, weak)
    plain_path = save_weights(tmp_path / "plain.safetensors", plain.model, plain.meta)
    beaten = train(ds, neg, replace(weak, no_worse_than=str(ref_path), tolerance=0.0))
    m = beaten.meta.info["metrics"]
    # the reference is scored at its own stored threshold on the same held-out split
    assert m["reference_f1"][name] == pytest.approx(ref.meta.info["metrics"]["heldout_f1_at_threshold"][name])
    assert m["reference_f1"][name] > m["heldout_f1_at_threshold"][name] + 0.1
    assert not m["guard_met"] and beaten.meta.threshold == plain.meta.threshold  # the unconstrained best, flagged
    assert str(ref_path) in beaten.meta.info["threshold_choice"]
    kept = train(ds, neg, replace(weak, no_worse_than=str(plain_path), tolerance=0.0))  # against itself: met
    assert kept.meta.info["metrics"]["guard_met"] and kept.meta.threshold == plain.meta.threshold


def test_ema_saves_the_moving_average_of_the_steps_weights(synth):
    """--ema: training itself is unchanged, and the saved weights are decay x step-1 + (1 - decay) x step-2
    weights after two steps (the average starts as a copy of the first step's)."""
    ds, neg = synth
    w1 = train(ds, neg, _cfg(steps=1), calibrate=False).model.state_dict()
    w2 = train(ds, neg, _cfg(steps=2), calibrate=False).model.state_dict()
    ema = train(ds, neg, _cfg(steps=2, ema=0.75), calibrate=False)
    for k, v in ema.model.state_dict().items():
        assert not torch.equal(w1[k], w2[k]), k
        torch.testing.assert_close(v, 0.75 * w1[k] + 0.25 * w2[k]), k
    assert ema.meta.info["config"]["ema"] == 0.75


def test_cli_ema_option_is_range_checked(run_cli, synth, tmp_path):
    ds, neg = synth
    res = run_cli("train", ds[0].root, "--ema", "1.5", "-o", tmp_path / "x.safetensors")
    assert res.code == 2 and "--ema" in res.err and "Traceback" not in res.err
    assert not (tmp_path / "x.safetensors").exists()


def test_face_map_net_trains_on_cached_face_maps(synth, tmp_path, monkeypatch):
    """softconv-face-prior: each training image's face map (from the run-time face networks, cached beside the
    person maps) is a 5th input channel the training reaches; the saved file names the face networks and runs
    alike in both engines."""
    from skinmask import face

    monkeypatch.setenv("SKINMASK_PRIOR_CACHE", str(tmp_path / "cache"))
    calls = []

    def left_half(self, frames):  # a stand-in face map: the synthetic images hold no faces
        calls.append(len(frames))
        out = np.zeros(frames.shape[:3], np.uint8)
        out[:, :, : frames.shape[2] // 2] = 255
        return out

    monkeypatch.setattr(face.FaceMaps, "__call__", left_half)
    ds, neg = synth
    cfg = _cfg(arch="softconv-face-prior", scale=1.0, steps=3, crop=24, batch=2)
    r = train(ds, neg, cfg, calibrate=False)
    assert r.meta.face_prior is not None and [s.network for s in r.meta.face_prior][1] == "face_landmark"
    from skinmask.prior import PriorCache, load_prior

    cached = PriorCache(load_prior(r.meta.prior, r.meta.face_prior))
    src = load_source(ds[0], "train", 1.0, 1.0, prior=cached)
    n = len(calls)
    assert src.aux[0].shape[-1] == 3 and src.aux[0][:, :4, 2].min() == 255 and src.aux[0][:, -4:, 2].max() == 0
    assert len(calls) == n  # the second load came from the cache
    monkeypatch.setattr(face.FaceMaps, "__call__", lambda self, frames: np.zeros(frames.shape[:3], np.uint8))
    monkeypatch.setenv("SKINMASK_PRIOR_CACHE", str(tmp_path / "cache0"))
    r0 = train(ds, neg, cfg, calibrate=False)
    w, w0 = r.model.state_dict()["stem.0.weight"], r0.model.state_dict()["stem.0.weight"]
    assert not torch.equal(w[:, 4], w0[:, 4])  # the face channel reached the training
    path = save_weights(tmp_path / "face.safetensors", r.model, r.meta)
    img = np.random.default_rng(1).integers(0, 256, (40, 52, 3), dtype=np.uint8)
    a = load_model(path, "cpu", "onnxruntime").probability_image(img)
    b = load_model(path, "cpu", "torch").probability_image(img)
    assert a.shape == (40, 52) and np.abs(a - b).max() < 1e-5


def test_a_pasted_person_brings_its_face_map_when_found(tmp_path):
    """--person-paste with face maps: the donor's face map comes with the shrunk person (when the draw says the
    face would be found), inside the pasted box only; the background's stays."""
    from skinmask.training import _Source

    img = np.full((60, 60, 3), 150, np.uint8)
    mask = np.zeros((60, 60), np.float32)
    mask[10:50, 10:50] = 1.0
    aux = np.zeros((60, 60, 3), np.uint8)
    aux[..., 1], aux[10:50, 10:50, 2] = 220, 255
    pts = np.argwhere(mask > 0).astype(np.int32)
    labelled = _Source("l", [img], [mask], [pts], 1.0, aux=[aux])
    negative = _Source("n", [img], [np.zeros_like(mask)], [pts], 1.0, negatives=True, aux=[np.zeros_like(aux)])
    maker = BatchMaker([labelled, negative], _cfg(crop=32, person_paste=1.0, augment=False), seed=0)
    faces = 0
    for _ in range(20):
        _, m, a, _ = maker._sample(negative)
        assert a.shape == (32, 32, 3)
        if a[..., 2].any():
            faces += 1
            ys, xs = np.nonzero(a[..., 2])
            assert ys.max() - ys.min() < 16 and xs.max() - xs.min() < 16  # shrunk at least 2x, like the person
            assert (m[a[..., 2] > 0] > 0).mean() > 0.5  # where the pasted person's skin is
    assert 0 < faces < 20  # found in some pastes, not in all


def test_reuse_freed_memory_takes_effect_on_glibc_and_can_be_turned_off(monkeypatch):
    """The heap tuning training applies: accepted by glibc's mallopt on Linux, skipped with
    SKINMASK_MALLOC_TUNING=0 (its effect on speed is measured in benchmarks/bench_train.py)."""
    import ctypes.util
    import sys

    from skinmask.heap import reuse_freed_memory

    monkeypatch.setenv("SKINMASK_MALLOC_TUNING", "0")
    assert reuse_freed_memory() is False
    monkeypatch.delenv("SKINMASK_MALLOC_TUNING")
    if not sys.platform.startswith("linux") or "libc" not in str(ctypes.util.find_library("c")):
        pytest.skip("not glibc")
    assert reuse_freed_memory() is True


def _upright_person(h: int = 400, w: int = 300) -> np.ndarray:
    """A full-resolution skin mask of an upright person: a 40x52 face at the top, a neck, two hands below, and a
    speck of skin-coloured label noise above the head."""
    import cv2

    mask = np.zeros((h, w), np.uint8)
    cv2.ellipse(mask, (150, 90), (20, 26), 0, 0, 360, 1, -1)
    mask[116:130, 142:158] = 1  # the neck, joined to the face
    mask[250:290, 60:90] = mask[250:290, 210:240] = 1
    mask[20:24, 40:44] = 1
    return mask.astype(np.float32)


def test_head_window_frames_the_topmost_face_four_face_widths_wide():
    from skinmask.training import head_window

    y0, x0, side = head_window(_upright_person())
    assert 150 <= side <= 170  # four widths of the 41-pixel face, not of the face plus neck
    assert y0 <= 64 and y0 + side >= 116 and x0 <= 130 and x0 + side >= 170  # the whole face is inside
    assert abs((x0 + side / 2) - 150) <= 2 and abs((y0 + side / 2) - 90) <= 12  # centred on it
    assert head_window(np.zeros((50, 50), np.float32)) is None
    assert head_window(_upright_person()[:, :100]) is not None  # the hand left in view is the topmost region


def test_head_crops_come_from_the_full_resolution_window_and_change_nothing_when_off(tmp_path):
    import cv2

    from skinmask.datasets import open_dataset
    from skinmask.training import _Source, head_window

    root = tmp_path / "people"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        img = rng.integers(0, 256, (400, 300, 3), dtype=np.uint8)
        cv2.imwrite(str(root / "images" / f"p{i}.png"), img)
        cv2.imwrite(str(root / "masks" / f"p{i}.png"), (_upright_person() * 255).astype(np.uint8))
    ds = open_dataset(root)
    src = load_source(ds, "all", 0.25, 1.0, heads=True)
    assert src.images[0].shape == (100, 75, 3) and len(src.heads) == 2
    hi, hm, ha, pts, share = src.heads[0]
    full = cv2.imread(str(root / "images" / "p0.png"))
    y0, x0, side = head_window(_upright_person())
    assert np.array_equal(hi, full[y0:y0 + side, x0:x0 + side])  # full-resolution pixels, not the working image's
    assert ha is None and share == 0.0 and hm.mean() > 0.05

    cfg = _cfg(crop=32, paste=0.0, color_aug=0.0, augment=False)
    plain = _Source(src.name, src.images, src.masks, src.skin_points, 1.0)
    off = [BatchMaker([src], cfg, seed=1)._sample(src) for _ in range(5)]
    ref = [BatchMaker([plain], cfg, seed=1)._sample(plain) for _ in range(5)]
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(off, ref))  # no head zoom asked for: the same draws
    maker = BatchMaker([src], replace(cfg, head_zoom={src.name: 1.0}), seed=1)
    heads = [maker._sample(src) for _ in range(10)]
    # a head crop is a piece of the window at full resolution (magnified 1-2x): a face fills far more of it
    assert np.mean([m.mean() for _, m, _, _ in heads]) > 3 * np.mean([m.mean() for _, m, _, _ in ref])


def test_person_gate_is_stored_and_calibrated_with_and_changes_no_weight(synth, tmp_path, monkeypatch):
    monkeypatch.setenv("SKINMASK_PRIOR_CACHE", str(tmp_path / "cache"))
    ds, neg = synth
    cfg = _cfg(arch="softconv-ms-prior", scale=1.0, steps=3, crop=32, batch=2)
    plain = train(ds, neg, cfg)
    gated = train(ds, neg, replace(cfg, person_gate=(0.05, 0.15)))
    assert gated.meta.person_gate == (0.05, 0.15) and plain.meta.person_gate is None
    for k, v in plain.model.state_dict().items():  # the gate acts after the network: training is untouched
        assert torch.equal(v, gated.model.state_dict()[k]), k
    assert gated.meta.info["config"]["person_gate"] == (0.05, 0.15)
    with pytest.raises(Exception, match="needs an architecture with a person prior"):
        train(ds, neg, replace(cfg, arch="softconv-ctx", person_gate=(0.05, 0.15)))


def test_cli_person_gate_errors(run_cli, synth, tmp_path):
    root = synth[0][0].root
    res = run_cli("train", root, "--arch", "softconv-ms-prior", "--person-gate", "0.3", "0.1", "-o", tmp_path / "w.safetensors")
    assert res.code == 2 and "0 <= LO < HI <= 1" in res.err and "Traceback" not in res.err
    res = run_cli("train", root, "--person-gate", "0.05", "0.15", "-o", tmp_path / "w.safetensors")
    assert res.code == 2 and "needs an architecture with a person prior" in res.err
    assert not (tmp_path / "w.safetensors").exists()


def test_a_face_confirmed_gate_names_the_face_networks_and_leaves_the_net_on_the_person_map(synth, tmp_path, monkeypatch):
    from skinmask.prior import face_prior_specs

    monkeypatch.setenv("SKINMASK_PRIOR_CACHE", str(tmp_path / "cache"))
    ds, neg = synth
    cfg = _cfg(arch="softconv-ms-prior", scale=1.0, steps=3, crop=32, batch=2)
    plain = train(ds, neg, cfg, calibrate=False)
    faced = train(ds, neg, replace(cfg, person_gate=(0.05, 0.15), gate_faces=0.2))
    assert faced.meta.person_gate == (0.05, 0.15, 0.2) and faced.meta.face_prior == face_prior_specs()
    for k, v in plain.model.state_dict().items():
        assert torch.equal(v, faced.model.state_dict()[k]), k
    with pytest.raises(Exception, match="--gate-faces needs --person-gate"):
        train(ds, neg, replace(cfg, gate_faces=0.2))


def test_a_hair_zone_is_stored_with_the_face_networks_and_changes_no_weight(synth, tmp_path, monkeypatch):
    from skinmask.prior import face_prior_specs

    monkeypatch.setenv("SKINMASK_PRIOR_CACHE", str(tmp_path / "cache"))
    ds, neg = synth
    cfg = _cfg(arch="softconv-ms-prior", scale=1.0, steps=3, crop=32, batch=2)
    plain = train(ds, neg, cfg, calibrate=False)
    zoned = train(ds, neg, replace(cfg, hair_zone=(0.6, 0.35, 0.15, 0.2)))
    assert zoned.meta.hair_zone == (0.6, 0.35, 0.15, 0.2) and zoned.meta.face_prior == face_prior_specs()
    assert zoned.meta.person_gate is None and zoned.meta.info["config"]["hair_zone"] == (0.6, 0.35, 0.15, 0.2)
    for k, v in plain.model.state_dict().items():  # a rule after the network: training is untouched
        assert torch.equal(v, zoned.model.state_dict()[k]), k
    with pytest.raises(Exception, match="hair zone needs an architecture with a person prior"):
        train(ds, neg, replace(cfg, arch="softconv-ctx", hair_zone=(0.6, 0.35, 0.15, 0.2)))


@pytest.mark.parametrize("option, bad, good, message", [
    ("--hair-zone", ["0.6", "0.35", "0.15", "5"], ["0.6", "0.35", "0.15", "0.2"], "each in 0..2"),
    ("--fine-pass", ["0.7", "0.2", "9"], ["0.7", "0.2", "2.5"], "1 < FACTOR <= 4"),
    ("--face-colour", ["6", "3", "2"], ["3", "6", "2"], "0 < NEAR < FAR"),
])
def test_cli_rule_options_refuse_bad_values_and_nets_without_a_prior(run_cli, synth, tmp_path, option, bad, good,
                                                                      message):
    root = synth[0][0].root
    res = run_cli("train", root, "--arch", "softconv-ms-prior", option, *bad, "-o", tmp_path / "w.safetensors")
    assert res.code == 2 and message in res.err and "Traceback" not in res.err
    res = run_cli("train", root, option, *good, "-o", tmp_path / "w.safetensors")  # the default arch: no prior
    assert res.code == 2 and "needs an architecture with a person prior" in res.err
    assert not (tmp_path / "w.safetensors").exists()


def test_zero_steps_from_init_keep_the_weights_and_choose_the_threshold_with_the_gate(synth, tmp_path, monkeypatch, run_cli):
    monkeypatch.setenv("SKINMASK_PRIOR_CACHE", str(tmp_path / "cache"))
    ds, neg = synth
    cfg = _cfg(arch="softconv-ms-prior", scale=1.0, steps=3, crop=32, batch=2)
    base = train(ds, neg, cfg)
    path = save_weights(tmp_path / "base.safetensors", base.model, base.meta)
    again = train(ds, neg, replace(cfg, init=str(path), steps=0, person_gate=(0.05, 0.15), gate_faces=0.2,
                                   fine_pass=(0.7, 0.2, 2.5), face_colour=(3.0, 6.0, 2.0)))
    for k, v in base.model.state_dict().items():  # no step taken: the same tensors
        assert torch.equal(v, again.model.state_dict()[k]), k
    assert again.meta.person_gate == (0.05, 0.15, 0.2) and again.meta.face_prior is not None
    assert again.meta.fine_pass == (0.7, 0.2, 2.5) and again.meta.info["config"]["fine_pass"] == (0.7, 0.2, 2.5)
    assert again.meta.face_colour == (3.0, 6.0, 2.0) and load_weights(
        save_weights(tmp_path / "again.safetensors", again.model, again.meta))[1].face_colour == (3.0, 6.0, 2.0)
    assert 0.0 < again.meta.threshold < 1.0 and "heldout_f1_at_threshold" in again.meta.info["metrics"]
    assert again.meta.info["init_info"]["command"] == base.meta.info["command"]  # the trained file's provenance kept
    with pytest.raises(Exception, match="--steps 0 keeps the weights it starts from: it needs --init"):
        train(ds, neg, replace(cfg, steps=0))
    res = run_cli("train", ds[0].root, "--steps", "0", "-o", tmp_path / "w.safetensors")
    assert res.code == 2 and "needs --init" in res.err and not (tmp_path / "w.safetensors").exists()
