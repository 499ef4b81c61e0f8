"""A tiny classifier training run for the torchrun tests (not collected by pytest):

    python ddp_train.py OUT ARCH EPOCHS                                  # one process
    python -m torch.distributed.run --standalone --nproc-per-node 2 ddp_train.py OUT ARCH EPOCHS

ARCH is ``cnn7`` (BatchNorm, dropout) or ``test-mlp`` (neither: two processes must then match one up to
floating-point order). 50 training images in batches of 16: the last global batch (2 images) is split 1 + 1.
ARCH ``codec`` trains a tiny paper-scheme codec instead (NAE pool split over the ranks, the svhn-cnn7 classifier).
"""

import sys
from pathlib import Path

import numpy as np
from torch import nn

from ric.classifiers.architectures import ARCHITECTURES
from ric.datasets import ArrayDataset
from ric.distributed.ddp import process_group
from ric.training import ClassifierRecipe, CodecRecipe, train_classifier, train_codec


def mlp(num_classes: int = 10, in_channels: int = 3, width: int = 16) -> nn.Module:
    """No BatchNorm, no dropout."""
    return nn.Sequential(nn.Flatten(), nn.Linear(in_channels * 32 * 32, width), nn.ReLU(),
                         nn.Linear(width, num_classes))


def tiny(n: int, seed: int) -> ArrayDataset:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n)
    x = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    x[..., 0] = (y[:, None, None] * 25).astype(np.uint8)  # learnable signal
    return ArrayDataset("tiny", x, y.astype(np.int64), [str(i) for i in range(10)])


def codec(out: Path, epochs: int) -> None:
    from ric.classifiers import load_classifier

    r = CodecRecipe(name="tiny-ric", classifier="svhn-cnn7", dataset="tiny", epochs=epochs, batch_size=16,
                    pool_per_class=3, eval_images=8, nae_batch=4, attack={"name": "cw-margin", "steps": 5},
                    codec={"name": "ric-paper", "width": 8, "depth": 1, "se_blocks": 0, "feat": 4})
    with process_group("cpu") as dist:
        train_codec(r, load_classifier("svhn-cnn7"), tiny(50, 0), tiny(8, 1), out / "run", out / "bundle",
                    log=lambda *_: None, dist=dist)


def main(out: Path, arch: str, epochs: int) -> None:
    if arch == "codec":
        return codec(out, epochs)
    ARCHITECTURES.setdefault("test-mlp", mlp)
    r = ClassifierRecipe(name="tiny", arch=arch, dataset="tiny", epochs=epochs, batch_size=16,
                         lr=0.05 if arch == "cnn7" else 0.002, pad=2, flip=True,
                         arch_kwargs={"width": 4 if arch == "cnn7" else 16})
    with process_group("cpu") as dist:
        train_classifier(r, tiny(50, 0), tiny(20, 1), out / "run", out / "bundle", log=lambda *_: None, dist=dist)


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]))
