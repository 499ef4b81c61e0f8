"""Datasets behind one registry.

The ``.npz`` files described in ``shared/data/README.md`` are found through ``--data-root`` or the
``RIC_DATA`` environment variable (default: ``../shared/data`` relative to the working directory, then
relative to the repository). Every dataset yields ``(images uint8 N×H×W×C, labels int64 N, class names)``.

Splits are fixed and documented in :data:`SPLITS`; SVHN is split contiguously (0-7999 train,
8000-9999 test) because neighbouring indices are crops of the same photo.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import InputError, UnknownNameError


@dataclass
class ArrayDataset:
    """Images (uint8, N×H×W×C), labels (int64, N) and class names."""

    name: str
    images: np.ndarray
    labels: np.ndarray
    classes: list[str]

    def __len__(self) -> int:
        return len(self.images)

    def tensors(self, start: int = 0, stop: int | None = None):
        """Float tensors N×C×H×W in [0,1] and int64 labels."""
        import torch

        x = torch.from_numpy(np.ascontiguousarray(self.images[start:stop])).permute(0, 3, 1, 2)
        return x.float().div_(255.0), torch.from_numpy(self.labels[start:stop].astype(np.int64))


def default_data_root() -> Path:
    env = os.environ.get("RIC_DATA")
    if env:
        return Path(env)
    here = Path(__file__).resolve()
    candidates = [Path.cwd() / "../shared/data", Path.cwd() / ".devdata", here.parents[3] / "shared/data",
                  here.parents[2] / ".devdata"]
    for c in candidates:
        if c.is_dir():
            return c.resolve()
    return candidates[0]


# name -> (file, split slice (train), split slice (test)); slices are over the file's order.
SPLITS: dict[str, dict] = {
    "svhn": {"file": "svhn/svhn_test_first10k.npz", "train": (0, 8000), "test": (8000, 10000),
             "note": "first 10k of the SVHN test split, split contiguously (no near-duplicate leak)"},
    "cifar10": {"file": {"train": "cifar10/cifar10_train.npz", "test": "cifar10/cifar10_test.npz"},
                "train": (0, 10000), "test": (0, 10000),
                "note": "10k JPEG train subset / full 10k JPEG test split"},
    "mnist": {"file": {"train": "mnist/mnist_train.npz", "test": "mnist/mnist_test.npz"},
              "train": (0, 60000), "test": (0, 10000), "note": "official MNIST train/test"},
    "faces": {"file": "faces/celeba_rgb_160.npz", "train": "per-class:0:15", "test": "per-class:15:20",
              "note": "CelebA 40 identities x 20; per identity images 0-14 train, 15-19 test"},
    "tinyimagenet": {"file": "tinyimagenet/tinyimagenet_val_10per_class.npz", "train": None,
                     "test": (0, 2000), "note": "2,000 Tiny-ImageNet val images (evaluation only)"},
}


def _load_npz(path: Path) -> dict:
    if not path.is_file():
        raise InputError(f"dataset file not found: {path} (set --data-root or RIC_DATA)")
    with np.load(path, allow_pickle=False) as d:
        return {k: d[k] for k in ("images", "labels", "classes")}


def load_dataset(name: str, split: str = "test", root: str | Path | None = None) -> ArrayDataset:
    """Load a registered ``.npz`` dataset split (``train`` or ``test``)."""
    if name not in SPLITS:
        raise UnknownNameError(f"unknown dataset {name!r}; known: {', '.join(sorted(SPLITS))}")
    spec = SPLITS[name]
    if split not in ("train", "test") or spec.get(split) is None:
        raise InputError(f"dataset {name!r} has no {split!r} split")
    root = Path(root) if root else default_data_root()
    f = spec["file"][split] if isinstance(spec["file"], dict) else spec["file"]
    d = _load_npz(root / f)
    images, labels = d["images"], d["labels"].astype(np.int64)
    sel = spec[split]
    if isinstance(sel, tuple):
        images, labels = images[sel[0]:sel[1]], labels[sel[0]:sel[1]]
    else:  # "per-class:a:b": images a..b-1 of every class, in file order
        _, a, b = sel.split(":")
        idx = []
        for c in np.unique(labels):
            idx.extend(np.flatnonzero(labels == c)[int(a):int(b)].tolist())
        idx = np.sort(np.array(idx))
        images, labels = images[idx], labels[idx]
    return ArrayDataset(name=f"{name}-{split}", images=images, labels=labels,
                        classes=[str(c) for c in d["classes"]])


def available(root: str | Path | None = None) -> list[dict]:
    """What registered datasets are present under ``root``."""
    root = Path(root) if root else default_data_root()
    rows = []
    for name, spec in SPLITS.items():
        files = spec["file"].values() if isinstance(spec["file"], dict) else [spec["file"]]
        present = all((root / f).is_file() for f in files)
        rows.append({"name": name, "present": present, "root": str(root), "split": spec["note"]})
    return rows


DATASETS: dict[str, Callable[..., ArrayDataset]] = {n: (lambda split="test", root=None, _n=n:
                                                        load_dataset(_n, split, root)) for n in SPLITS}
