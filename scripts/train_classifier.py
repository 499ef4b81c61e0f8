"""Train a zoo classifier and write its bundle.

    python scripts/train_classifier.py svhn-cnn7 --out src/ric/models/svhn-cnn7 --run runs/svhn-cnn7
"""

import argparse
import sys

import torch

from ric.datasets import load_dataset
from ric.training import ClassifierRecipe, train_classifier

RECIPES = {
    "svhn-cnn7": ClassifierRecipe(name="svhn-cnn7", arch="cnn7", dataset="svhn", epochs=30, lr=0.05,
                                  pad=2, flip=False, mean=(0.44, 0.44, 0.47), std=(0.2, 0.2, 0.2)),
    "mnist-cnn5": ClassifierRecipe(name="mnist-cnn5", arch="cnn5", dataset="mnist", epochs=8, lr=0.05,
                                   pad=2, flip=False, mean=(0.13,), std=(0.31,)),
    "cifar10-resnet18": ClassifierRecipe(name="cifar10-resnet18", arch="resnet18", dataset="cifar10",
                                         arch_kwargs={"width": 32, "stem": "cifar"}, epochs=120, lr=0.1, batch_size=256, pad=4, flip=True,
                                         label_smoothing=0.1, mean=(0.49, 0.48, 0.45), std=(0.25, 0.24, 0.26)),
    "faces-resnet18": ClassifierRecipe(name="faces-resnet18", arch="resnet18", dataset="faces",
                                       arch_kwargs={"width": 32, "stem": "imagenet"},
                                       epochs=150, lr=0.05, batch_size=64, pad=12, flip=True,
                                       label_smoothing=0.1, mean=(0.5, 0.45, 0.4), std=(0.28, 0.26, 0.26)),
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("recipe", choices=sorted(RECIPES))
    p.add_argument("--out", required=True)
    p.add_argument("--run", required=True, help="run folder (checkpoints, log); reruns resume from it")
    p.add_argument("--epochs", type=int)
    p.add_argument("--time-budget", type=float, help="stop after this many seconds")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--data-root")
    a = p.parse_args()
    r = RECIPES[a.recipe]
    if a.epochs:
        r.epochs = a.epochs
    train = load_dataset(r.dataset, "train", a.data_root)
    test = load_dataset(r.dataset, "test", a.data_root)
    cfg = train_classifier(r, train, test, a.run, a.out, device=a.device, time_budget=a.time_budget,
                           command="python " + " ".join(sys.argv))
    print(f"{cfg['name']}: test accuracy {100 * cfg['test_accuracy']:.2f}% -> {a.out}")


if __name__ == "__main__":
    main()
