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


def test_errors(tmp_path):
    with pytest.raises(UnknownNameError):
        load_dataset("imagenet-21k")
    with pytest.raises(InputError, match="not found"):
        load_dataset("svhn", "test", tmp_path)
    with pytest.raises(InputError, match="no 'train' split"):
        load_dataset("tinyimagenet", "train", tmp_path)
    assert all(not r["present"] for r in available(tmp_path))
