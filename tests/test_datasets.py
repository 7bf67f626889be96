import numpy as np
import pytest

from skinmask.datasets import holdout_split, load_sample, normalise_split, open_dataset
from skinmask.errors import InputError, UsageError

from ._skin_synth import make_dataset


def test_open_with_index(tmp_path):
    ds = open_dataset(make_dataset(tmp_path / "d", n=8))
    assert ds.split_counts() == {"train": 6, "val": 2}
    assert len(ds.select("heldout")) == 2 and len(ds.select("all")) == 8
    img, m = load_sample(ds.samples[0])
    assert img.shape == (48, 48, 3) and m.dtype == bool and m.any()


def test_split_errors_name_available_splits(tmp_path):
    ds = open_dataset(make_dataset(tmp_path / "d", n=4, splits=("train_pose+15", "test_pose-30")))
    assert ds.split_counts() == {"train": 2, "test": 2}
    assert ds.heldout_name() == "test"
    with pytest.raises(UsageError, match="no 'val' split.*test \\(2\\)"):
        ds.select("val")


def test_no_index_uses_fixed_holdout(tmp_path):
    ds = open_dataset(make_dataset(tmp_path / "d", n=10, with_index=False))
    assert ds.split_source == "crc32 holdout"
    assert [s.split for s in ds.samples] == [holdout_split(s.stem) for s in ds.samples]


def test_missing_masks_are_a_clear_error(tmp_path):
    root = make_dataset(tmp_path / "d", n=3)
    (root / "masks" / "s01.png").unlink()
    with pytest.raises(InputError, match="1 of 3 images have no mask.*s01"):
        open_dataset(root)


def test_missing_folders(tmp_path):
    with pytest.raises(InputError, match="no such dataset folder"):
        open_dataset(tmp_path / "nope")
    (tmp_path / "x" / "images").mkdir(parents=True)
    with pytest.raises(InputError, match="no masks/ folder"):
        open_dataset(tmp_path / "x")


def test_negatives_folder(tmp_path):
    root = make_dataset(tmp_path / "d", n=3)
    ds = open_dataset(root, negatives=True)
    img, m = load_sample(ds.samples[0])
    assert not m.any()


def test_mask_size_mismatch(tmp_path):
    import cv2

    root = make_dataset(tmp_path / "d", n=2)
    cv2.imwrite(str(root / "masks" / "s00.png"), np.zeros((10, 10), np.uint8))
    ds = open_dataset(root)
    with pytest.raises(InputError, match="mask is 10x10"):
        load_sample(ds.samples[0])


def test_normalise_split():
    assert normalise_split("train_pose+15") == "train"
    assert normalise_split("Validation") == "val"
    assert normalise_split("A") is None


def test_shared_data_layout(shared_data):
    ds = open_dataset(shared_data / "abdomen")
    assert ds.split_counts() == {"train": 500, "val": 121}
    hgr = open_dataset(shared_data / "hgr1")
    assert hgr.split_source == "crc32 holdout" and 0 < len(hgr.select("val")) < 100


def test_hair_class_map_is_read_and_checked(tmp_path):
    import cv2
    import numpy as np

    from skinmask.datasets import HAIR_CLASS, open_dataset, read_hair

    root = tmp_path / "d"
    for sub in ("images", "masks", "labels_multiclass"):
        (root / sub).mkdir(parents=True)
    cv2.imwrite(str(root / "images" / "a.png"), np.zeros((8, 10, 3), np.uint8))
    cv2.imwrite(str(root / "masks" / "a.png"), np.zeros((8, 10), np.uint8))
    labels = np.zeros((8, 10), np.uint8)
    labels[:3] = HAIR_CLASS
    labels[5:] = 2
    cv2.imwrite(str(root / "labels_multiclass" / "a.png"), labels)
    (sample,) = open_dataset(root).samples
    hair = read_hair(sample, (8, 10))
    assert hair.dtype == bool and hair.sum() == 30 and hair[:3].all()
    with pytest.raises(Exception, match="class map is 10x8"):
        read_hair(sample, (9, 10))
