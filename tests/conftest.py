import os
from pathlib import Path

import numpy as np
import pytest
import torch

from ric.api import sample_images
from ric.classifiers import load_classifier
from ric.codec import make_codec
from ric.datasets import default_data_root
from ric.keys import SecretKey
from ric.schemes.paper import RIC

torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(scope="session")
def key():
    return SecretKey(bytes(range(32)))


@pytest.fixture(scope="session")
def samples():
    files, meta = sample_images()
    from ric.imageio import read_image

    x = torch.stack([torch.from_numpy(read_image(f)).permute(2, 0, 1) for f in files]).float() / 255
    return files, x, meta


@pytest.fixture(scope="session")
def shipped_ric():
    return RIC.load("svhn-ric")


@pytest.fixture(scope="session")
def tiny_ric():
    """Shipped classifier, an untrained tiny codec and a 10-step attack: fast, for mechanics only."""
    torch.manual_seed(0)
    codec = make_codec({"name": "ric-paper", "width": 8, "depth": 1, "se_blocks": 0, "feat": 4})
    return RIC(codec, load_classifier("svhn-cnn7"), alpha=0.8, attack={"name": "cw-margin", "steps": 10},
               nae_batch=4, model_id="tiny")


@pytest.fixture(scope="session")
def data_root():
    root = default_data_root()
    if not (Path(root) / "svhn/svhn_test_first10k.npz").is_file():
        pytest.skip(f"real datasets not found under {root} (set RIC_DATA); skipping data tests")
    return root


def write_rgb(path, h=32, w=32, seed=0, mode="RGB"):
    from PIL import Image

    rng = np.random.default_rng(seed)
    c = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
    a = rng.integers(0, 256, (h, w, c), dtype=np.uint8)
    Image.fromarray(a[:, :, 0] if c == 1 else a, mode=mode).save(path)
    return path
