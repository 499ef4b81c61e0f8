import numpy as np
import pytest

from ric.datasets import SPLITS, available, load_dataset
from ric.errors import InputError, UnknownNameError


def test_svhn_contiguous_split(data_root):
    tr = load_dataset("svhn", "train", data_root)
    te = load_dataset("svhn", "test", data_root)
    assert (len(tr), len(te)) == (8000, 2000)
    assert tr.images.shape[1:] == (32, 32, 3) and tr.images.dtype == np.uint8
    assert tr.classes[:3] == ["0", "1", "2"]
    x, y = te.tensors(0, 4)
    assert x.shape == (4, 3, 32, 32) and 0 <= x.min() and x.max() <= 1 and y.dtype.is_floating_point is False


def test_faces_split_is_per_identity(data_root):
    if not (data_root / SPLITS["faces"]["file"]).is_file():
        pytest.skip("faces file absent")
    tr, te = load_dataset("faces", "train", data_root), load_dataset("faces", "test", data_root)
    assert (len(tr), len(te)) == (600, 200)
    assert set(np.unique(tr.labels)) == set(np.unique(te.labels))


@pytest.mark.parametrize("name", ["tinyimagenet", "lfw", "orl"])
def test_per_class_splits_are_disjoint(data_root, name):
    if not (data_root / SPLITS[name]["file"]).is_file():
        pytest.skip(f"{name} file absent")
    tr, te, al = (load_dataset(name, s, data_root) for s in ("train", "test", "all"))
    assert len(tr) + len(te) == len(al)
    # no image of the test split is in the train split
    trs = {a.tobytes() for a in tr.images}
    assert not any(a.tobytes() in trs for a in te.images)
    assert set(np.unique(tr.labels)) == set(np.unique(te.labels))


def test_grey_policy():
    from ric.datasets import ArrayDataset

    g = ArrayDataset("g", np.arange(16, dtype=np.uint8).reshape(1, 4, 4, 1) * 16, np.zeros(1, np.int64), ["a"])
    rgb = g.with_channels(3)
    assert rgb.images.shape == (1, 4, 4, 3) and (rgb.images == g.images).all()  # replicated
    assert (rgb.with_channels(1).images == g.images).all()  # luma of R=G=B is the grey value
    assert g.with_channels(1) is g
    with pytest.raises(InputError):
        ArrayDataset("x", np.zeros((1, 2, 2, 2), np.uint8), np.zeros(1, np.int64), []).with_channels(3)


def test_errors(tmp_path):
    with pytest.raises(UnknownNameError):
        load_dataset("imagenet-21k")
    with pytest.raises(InputError, match="not found"):
        load_dataset("svhn", "test", tmp_path)
    with pytest.raises(InputError, match="no 'validation' split"):
        load_dataset("svhn", "validation", tmp_path)
    assert all(not r["present"] for r in available(tmp_path))


def test_folder_datasets(tmp_path):
    from ric.datasets import folder_dataset

    from .conftest import write_rgb

    for c in ("cat", "dog"):
        (tmp_path / "lab" / c).mkdir(parents=True)
        for i in range(2):
            write_rgb(tmp_path / "lab" / c / f"{i}.png", seed=i)
    d = folder_dataset(tmp_path / "lab", labelled=True)
    assert d.classes == ["cat", "dog"] and d.labels.tolist() == [0, 0, 1, 1] and d.images.shape == (4, 32, 32, 3)
    p = folder_dataset(tmp_path / "lab" / "cat")
    assert len(p) == 2 and (p.labels == -1).all()
    write_rgb(tmp_path / "lab" / "cat" / "big.png", 40, 40)
    with pytest.raises(InputError, match="different sizes"):
        folder_dataset(tmp_path / "lab" / "cat")


def test_torchvision_loader_never_downloads(tmp_path):
    from ric.datasets import torchvision_dataset

    with pytest.raises(InputError, match="download=True"):
        torchvision_dataset("cifar10", tmp_path)
    assert not any(tmp_path.iterdir())
