"""Datasets behind one registry.

The ``.npz`` files described in ``shared/data/README.md`` are found through ``--data-root`` or the
``RIC_DATA`` environment variable (default: ``../shared/data`` relative to the working directory, then
relative to the repository). Every dataset yields ``(images uint8 N×H×W×C, labels int64 N, class names)``.

Splits are fixed and documented in :data:`SPLITS`; SVHN is split contiguously (0-7999 train,
8000-9999 test) because neighbouring indices are crops of the same photo.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ric.errors import InputError, UnknownNameError


@dataclass
class ArrayDataset:
    """Images (uint8, N×H×W×C), labels (int64, N) and class names."""

    name: str
    images: np.ndarray
    labels: np.ndarray
    classes: list[str]

    def __len__(self) -> int:
        return len(self.images)

    def with_channels(self, channels: int) -> ArrayDataset:
        """Grey policy: a 1-channel set asked for 3 channels is replicated (R=G=B); a 3-channel set asked for
        1 channel is converted with ITU-R BT.601 luma (as PIL's ``convert('L')``). Same count: unchanged."""
        c = self.images.shape[-1]
        if c == channels:
            return self
        if c == 1 and channels == 3:
            imgs = np.repeat(self.images, 3, axis=-1)
        elif c == 3 and channels == 1:
            luma = self.images.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
            imgs = np.clip(np.rint(luma), 0, 255).astype(np.uint8)[..., None]
        else:
            raise InputError(f"{self.name}: cannot turn {c}-channel images into {channels} channels")
        return ArrayDataset(self.name, imgs, self.labels, self.classes)

    def tensors(self, start: int = 0, stop: int | None = None):
        """Float tensors N×C×H×W in [0,1] and int64 labels."""
        import torch

        from ric.imageio import to_tensor

        return to_tensor(self.images[start:stop]), torch.from_numpy(self.labels[start:stop].astype(np.int64))


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
    "tinyimagenet": {"file": "tinyimagenet/tinyimagenet_val_10per_class.npz", "train": "per-class:0:8",
                     "test": "per-class:8:10",
                     "note": "2,000 Tiny-ImageNet val images, 200 classes x 10; per class 0-7 train, 8-9 test"},
    "lfw": {"file": "faces/lfw_grey_160.npz", "train": "per-class:0:15", "test": "per-class:15:20",
            "note": "LFW grey 160x160, 62 people x 20; per person 0-14 train, 15-19 test"},
    "orl": {"file": "faces/att_orl_faces.npz", "train": "per-class:0:7", "test": "per-class:7:10",
            "note": "ORL/AT&T grey 112x92, 40 subjects x 10; per subject 0-6 train, 7-9 test"},
}


def _load_npz(path: Path) -> dict:
    if not path.is_file():
        raise InputError(f"dataset file not found: {path} (set --data-root or RIC_DATA)")
    with np.load(path, allow_pickle=False) as d:
        return {k: d[k] for k in ("images", "labels", "classes")}


def load_dataset(name: str, split: str = "test", root: str | Path | None = None) -> ArrayDataset:
    """Load a registered ``.npz`` dataset split (``train``, ``test`` or ``all`` = train then test)."""
    if name not in SPLITS:
        raise UnknownNameError(f"unknown dataset {name!r}; known: {', '.join(sorted(SPLITS))}")
    spec = SPLITS[name]
    if split == "all":
        a = load_dataset(name, "train", root) if spec.get("train") is not None else None
        b = load_dataset(name, "test", root)
        if a is None:
            return ArrayDataset(f"{name}-all", b.images, b.labels, b.classes)
        return ArrayDataset(f"{name}-all", np.concatenate([a.images, b.images]),
                            np.concatenate([a.labels, b.labels]), b.classes)
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


# ------------------------------------------------------------------------------ user data and torchvision
def folder_dataset(path: str | Path, channels: int = 3, convert: str = "strict",
                   labelled: bool = False) -> ArrayDataset:
    """Images from a folder. ``labelled=False``: a plain folder of one size (labels -1, e.g. a user's own
    photos); ``labelled=True``: ImageFolder layout, one sub-folder per class (class = sub-folder name)."""
    from ric.imageio import IMAGE_SUFFIXES, read_image

    root = Path(path)
    if not root.is_dir():
        raise InputError(f"not a folder: {root}")
    if labelled:
        classes = sorted(d.name for d in root.iterdir() if d.is_dir())
        items = [(f, i) for i, c in enumerate(classes) for f in sorted((root / c).iterdir())
                 if f.suffix.lower() in IMAGE_SUFFIXES]
    else:
        classes = []
        items = [(f, -1) for f in sorted(root.iterdir()) if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES]
    if not items:
        raise InputError(f"no images in {root}")
    arrays = [read_image(f, channels, convert) for f, _ in items]
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1:
        raise InputError(f"images in {root} have different sizes {sorted(shapes)[:3]}…; resize them first")
    return ArrayDataset(name=root.name, images=np.stack(arrays), labels=np.array([y for _, y in items], np.int64),
                        classes=classes)


def torchvision_dataset(name: str, root: str | Path, split: str = "test", download: bool = False) -> ArrayDataset:
    """torchvision's SVHN, CIFAR-10 or MNIST from ``root``. Nothing is downloaded unless ``download=True``."""
    import torchvision.datasets as tvd

    try:
        if name == "svhn":
            d = tvd.SVHN(str(root), split=split, download=download)
            return ArrayDataset("svhn-tv-" + split, d.data.transpose(0, 2, 3, 1), d.labels.astype(np.int64) % 10,
                                [str(i) for i in range(10)])
        if name == "cifar10":
            d = tvd.CIFAR10(str(root), train=split == "train", download=download)
            return ArrayDataset("cifar10-tv-" + split, np.asarray(d.data), np.asarray(d.targets, np.int64), d.classes)
        if name == "mnist":
            d = tvd.MNIST(str(root), train=split == "train", download=download)
            return ArrayDataset("mnist-tv-" + split, d.data.numpy()[..., None], d.targets.numpy().astype(np.int64),
                                [str(i) for i in range(10)])
    except RuntimeError as e:  # torchvision: "Dataset not found or corrupted. You can use download=True …"
        raise InputError(f"torchvision {name} not found under {root} ({e}); pass download=True to fetch it") from None
    raise UnknownNameError(f"no torchvision loader for {name!r}; known: svhn, cifar10, mnist")
