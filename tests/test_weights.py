import os
import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from skinmask.errors import WeightsError
from skinmask.model import build_model
from skinmask.weights import InputSpec, WeightsMeta, default_weights_path, load_weights, save_weights


def test_round_trip_keeps_tensors_and_metadata(tmp_path: Path) -> None:
    torch.manual_seed(3)
    net = build_model("softconv-ctx")
    meta = WeightsMeta(arch="softconv-ctx", input=InputSpec("bgr", (0.1, 0.2, 0.3), (0.5, 0.6, 0.7)),
                       threshold=0.42, scale=0.5, info={"seed": 3, "data": ["x"]})
    path = save_weights(tmp_path / "m.safetensors", net, meta)
    loaded, meta2 = load_weights(path)
    assert meta2.arch == "softconv-ctx" and meta2.threshold == 0.42 and meta2.scale == 0.5
    assert meta2.input == meta.input and meta2.info == {"seed": 3, "data": ["x"]}
    for k, v in net.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v)
    assert not loaded.training
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # readable like any output, not mkstemp's 0600


def test_shipped_default_loads() -> None:
    net, meta = load_weights(None)
    assert default_weights_path().is_file()
    assert net.conv1.out_channels == 32 and 0 <= meta.threshold <= 1


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="no such weights file"):
        load_weights(tmp_path / "nope.safetensors")


def test_corrupt_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all")
    with pytest.raises(WeightsError, match="bad.safetensors"):
        load_weights(bad)


def test_wrong_shapes(tmp_path: Path) -> None:
    net = build_model("softconv")
    tensors = {k: v.clone() for k, v in net.state_dict().items()}
    tensors["conv1.weight"] = torch.zeros(16, 3, 3, 3)
    path = tmp_path / "shape.safetensors"
    save_file(tensors, str(path), metadata=WeightsMeta().to_strings())
    with pytest.raises(WeightsError, match=r"conv1.weight has shape \(16, 3, 3, 3\)"):
        load_weights(path)


def test_wrong_metadata(tmp_path: Path) -> None:
    net = build_model("softconv")
    path = tmp_path / "meta.safetensors"
    meta = WeightsMeta().to_strings() | {"arch": "resnet152"}
    save_file(dict(net.state_dict()), str(path), metadata=meta)
    with pytest.raises(WeightsError, match="unknown architecture 'resnet152'"):
        load_weights(path)
    save_file(dict(net.state_dict()), str(path), metadata={"format": "pt"})
    with pytest.raises(WeightsError, match="not a skinmask weights file"):
        load_weights(path)


class _Boom:
    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_pickle_is_refused_and_never_executed(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    payload = _Boom()
    payload.marker = str(marker)
    evil = tmp_path / "evil.safetensors"
    evil.write_bytes(pickle.dumps(payload))
    with pytest.raises(WeightsError, match="pickle"):
        load_weights(evil)
    torch.save({"x": payload}, tmp_path / "evil.pt")
    with pytest.raises(WeightsError, match="pickle"):
        load_weights(tmp_path / "evil.pt")
    assert not marker.exists()


def test_shipped_prior_weights_name_their_prior_and_a_changed_one_is_refused(tmp_path: Path) -> None:
    """softconv-prior names the shipped person segmenter and its checksum; both engines run it; weights
    naming another checksum, or a prior arch naming none, are refused with one clear error."""
    from dataclasses import replace

    import numpy as np

    from skinmask.inference import load_model
    from skinmask.onnxnets import NETS
    from skinmask.prior import PersonPrior

    net, meta = load_weights("softconv-prior")
    assert meta.arch == "softconv-prior" and meta.prior.sha256 == NETS["selfie_segmentation"].sha256
    img = np.random.default_rng(0).integers(0, 256, (60, 80, 3), dtype=np.uint8)
    a = load_model("softconv-prior", "cpu", "onnxruntime").probability_image(img)
    b = load_model("softconv-prior", "cpu", "torch").probability_image(img)
    assert a.shape == (60, 80) and np.abs(a - b).max() < 1e-5
    with pytest.raises(WeightsError, match="trained with prior network"):
        PersonPrior(replace(meta.prior, sha256="0" * 64))
    with pytest.raises(WeightsError, match="names no prior"):
        save_weights(tmp_path / "bad.safetensors", net, replace(meta, prior=None))
        load_weights(tmp_path / "bad.safetensors")


def test_face_map_weights_name_both_face_networks_and_refuse_others(tmp_path: Path) -> None:
    """A softconv-face-prior file names the shipped detector and mesh with their checksums beside the person
    prior; a file naming none, or a changed or swapped network, is refused with one clear error."""
    from dataclasses import replace

    from skinmask.model import SkinNet
    from skinmask.prior import FacePrior, default_prior_spec, face_prior_specs, load_prior

    specs = face_prior_specs()
    meta = WeightsMeta(arch="softconv-face-prior", prior=default_prior_spec(), face_prior=specs, scale=0.5)
    path = save_weights(tmp_path / "face.safetensors", SkinNet("softconv-face-prior"), meta)
    _, got = load_weights(path)
    assert got.face_prior == specs and [s.network for s in specs] == ["face_detection_short_range", "face_landmark"]
    assert type(load_prior(got.prior, got.face_prior)).__name__ == "StackedPrior"
    with pytest.raises(WeightsError, match="trained with prior network face_landmark"):
        FacePrior((specs[0], replace(specs[1], sha256="0" * 64)))
    with pytest.raises(WeightsError, match="not shipped"):
        FacePrior(specs[::-1])
    save_weights(tmp_path / "none.safetensors", SkinNet("softconv-face-prior"), replace(meta, face_prior=None))
    with pytest.raises(WeightsError, match="names no face networks"):
        load_weights(tmp_path / "none.safetensors")
    save_weights(tmp_path / "extra.safetensors", SkinNet("softconv-ms-prior"), replace(meta, arch="softconv-ms-prior"))
    with pytest.raises(WeightsError, match="takes no face map"):
        load_weights(tmp_path / "extra.safetensors")
