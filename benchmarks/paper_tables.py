"""The paper's Tables 1-4, the α sweep (Figure 7), sample grids and throughput, from the shipped weights.

    python benchmarks/paper_tables.py --jobs 2             # full: 1,000 test images per set (all for faces/Tiny-ImageNet)
    python benchmarks/paper_tables.py --jobs 2 --limit 100 # quick variant, into docs/results/quick/

A thin wrapper over ``python -m ric.eval.paper_tables`` with the repository's folders as defaults; writes
paper_tables.{md,json}, grid_<dataset>.png and alpha_sweep.png into docs/results/ (docs/results/quick/ with
``--limit``). ``--jobs N`` runs the datasets in N worker processes (one thread each). Table 4 and the α sweep use
the small equal-budget codecs under models/ablation/ (made by scripts/train_ablations.sh).
"""

from __future__ import annotations

import argparse
import sys

from ric.eval.paper_tables import main as tables_main


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--limit", type=int, help="first N test images per set (default 1000, or all if fewer)")
    p.add_argument("--out", help="default docs/results, or docs/results/quick with --limit")
    p.add_argument("--ablation-root", default="models/ablation", help="the small codecs of Table 4 and the α sweep")
    a, rest = p.parse_known_args(argv)  # the rest (--datasets, --jobs, --data-root) goes to ric.eval.paper_tables
    out = a.out or ("docs/results" if a.limit is None else "docs/results/quick")  # a quick run never overwrites the full
    argv = ["-o", out, "--ablation-root", a.ablation_root, *rest]
    if a.limit is not None:
        argv += ["--limit", str(a.limit)]
    return tables_main(argv)


if __name__ == "__main__":
    sys.exit(main())
