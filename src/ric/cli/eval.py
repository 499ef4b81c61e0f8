"""``ric eval``: measure a model on a dataset, or regenerate the paper's tables (``--tables``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ric.cli.common import add_output, command
from ric.errors import InputError
from ric.zoo import bundles

HELP = "measure a model on a dataset, or regenerate the paper's tables (--tables)"


def add_arguments(s) -> None:
    s.add_argument("-m", "--model", help="RIC model (default: the shipped model for --dataset)")
    s.add_argument("-d", "--dataset", help="dataset (see `ric datasets`); its test split is used")
    s.add_argument("--codec-from", help="use the codec of this RIC model instead (cross-dataset study)")
    s.add_argument("--limit", type=int, help="first N test images (default 1000, or all if fewer)")
    s.add_argument("--grid", type=Path, help="write a plaintext | ciphertext | recovered grid PNG here")
    s.add_argument("--tables", action="store_true", help="Tables 1-4, alpha sweep, grids, throughput")
    s.add_argument("--datasets", nargs="+", help="with --tables: only these datasets")
    s.add_argument("-o", "--output", type=Path, help="with --tables: the folder for the tables (required)")
    s.add_argument("--ablation-root", type=Path,
                   help="with --tables: folder of the small ablation codecs for Table 4 (default: no Table 4)")
    s.add_argument("--jobs", type=int, default=1,
                   help="with --tables: worker processes (one thread each; e.g. the number of cores)")
    s.add_argument("--data-root")
    add_output(s)


def run(args) -> int:
    log = (lambda m: None) if args.json or args.quiet else (lambda m: print(m, file=sys.stderr))
    if args.tables:
        return _tables(args, log)
    if not args.dataset:
        raise InputError("ric eval: give --dataset (and --model), or --tables")
    from ric.eval import measure as ev
    from ric.keys import SecretKey

    model = args.model or ev.DATASET_MODELS.get(args.dataset, bundles.DEFAULT_MODEL)
    ric = ev.load_model(model, codec_from=args.codec_from)
    images, labels, split = ev.eval_split(args.dataset, args.limit, data_root=args.data_root)
    log(f"{model} on {split}")
    res = ev.evaluate(ric, images, labels, SecretKey.generate(), grid=args.grid, log=log)
    res.update(model=model, codec_from=args.codec_from, data=split, classifier=ric.classifier.ident,
               machine=ev.machine())
    if args.json:
        print(json.dumps(res, indent=1))
    else:
        for k, v in res.items():
            print(f"{k:32s} {v}")
    return 0


def _tables(args, log) -> int:
    if not args.output:
        raise InputError("ric eval --tables: give -o DIR (benchmarks/paper_tables.py fills the repository's)")
    from ric.eval.paper_tables import paper_tables

    rep = paper_tables(args.output, args.limit, args.datasets, args.data_root, ablation_root=args.ablation_root,
                       command=command(args), log=log, jobs=args.jobs)
    if args.json:
        print(json.dumps(rep, indent=1))
    else:
        print(f"wrote {args.output}/paper_tables.md (+ .json, grids) in {rep['wall_seconds'] / 60:.1f} min")
    return 0
