"""Train a RIC codec (classifier frozen) and write its bundle.

    python scripts/train_codec.py svhn-ric --out src/ric/models/svhn-ric --run runs/svhn-ric --time-budget 3600

Reruns with the same --run folder resume from the last epoch.
"""

import argparse
import json
import sys

import torch

from ric.classifiers import load_classifier
from ric.datasets import load_dataset
from ric.training import CodecRecipe, train_codec

RECIPES = {
    "svhn-ric": CodecRecipe(name="svhn-ric", classifier="svhn-cnn7", dataset="svhn"),
    "faces-ric": CodecRecipe(name="faces-ric", classifier="faces-resnet18", dataset="faces", batch_size=32,
                             pool_per_class=48, pad=8, eval_images=64,
                             attack={"name": "cw-margin", "steps": 250, "lr": 0.01, "c": 10.0, "kappa": 10.0}),
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("recipe", choices=sorted(RECIPES))
    p.add_argument("--out", required=True)
    p.add_argument("--run", required=True, help="run folder (checkpoints, log, preview); reruns resume")
    p.add_argument("--epochs", type=int)
    p.add_argument("--time-budget", type=float, help="stop after this many seconds of training")
    p.add_argument("--set", action="append", default=[], metavar="KEY=JSON",
                   help="override a recipe field, e.g. --set alpha=0.7 --set 'codec={\"name\":\"ric-paper\"}'")
    p.add_argument("--classifier", help="classifier bundle (name or folder); default: the recipe's")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--data-root")
    a = p.parse_args()
    r = RECIPES[a.recipe]
    if a.epochs:
        r.epochs = a.epochs
    for kv in a.set:
        k, v = kv.split("=", 1)
        if not hasattr(r, k):
            p.error(f"unknown recipe field {k}")
        setattr(r, k, json.loads(v))
    clf = load_classifier(a.classifier or r.classifier)
    train = load_dataset(r.dataset, "train", a.data_root)
    test = load_dataset(r.dataset, "test", a.data_root)
    cfg = train_codec(r, clf, train, test, a.run, a.out, device=a.device, time_budget=a.time_budget,
                      command="python " + " ".join(sys.argv))
    print(json.dumps(cfg["training"]["final_log"]))


if __name__ == "__main__":
    main()
