"""``ric train``: a classifier or a RIC codec from a recipe (resumable)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ric.cli.common import command

HELP = "train a classifier or a RIC codec from a recipe (resumable)"


def add_arguments(s) -> None:
    s.add_argument("what", choices=("classifier", "codec"))
    s.add_argument("recipe", help="recipe name (see ric.training.recipes)")
    s.add_argument("-o", "--output", required=True, type=Path, help="bundle folder to write")
    s.add_argument("--run", required=True, type=Path, help="run folder: checkpoints, log, preview; reruns resume")
    s.add_argument("--epochs", type=int)
    s.add_argument("--time-budget", type=float, help="stop after this many seconds")
    s.add_argument("--set", action="append", default=[], metavar="FIELD=JSON", help="override a recipe field")
    s.add_argument("--init", help="codec: start from this RIC bundle's weights")
    s.add_argument("--classifier", help="codec: classifier bundle to use instead of the recipe's")
    s.add_argument("--device")
    s.add_argument("--data-root")


def run(args) -> int:
    import torch

    from ric.training.recipes import train_from_recipe

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    cfg = train_from_recipe(args.what, args.recipe, out=args.output, run=args.run, epochs=args.epochs,
                            time_budget=args.time_budget, overrides=args.set, device=device,
                            data_root=args.data_root, init=args.init, classifier=args.classifier,
                            command=command(args))
    if os.environ.get("RANK", "0") == "0":  # under torchrun, rank 0 speaks for the run
        print(json.dumps({k: v for k, v in cfg.items() if k in ("name", "test_accuracy", "weights_sha256")}))
    return 0
