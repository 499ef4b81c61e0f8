"""The paper's Tables 1-4, the α sweep (Figure 7), sample grids and throughput, from the shipped weights.

    python benchmarks/paper_tables.py --jobs 2             # full: 1,000 test images per set (all for faces/Tiny-ImageNet)
    python benchmarks/paper_tables.py --jobs 2 --limit 100 # quick variant, into docs/results/quick/

A thin wrapper over ``ric eval --tables`` (``ric.evaluation.paper_tables``); writes
paper_tables.{md,json}, grid_<dataset>.png and alpha_sweep.png into docs/results/ (docs/results/quick/ with
``--limit``). ``--jobs N`` runs the datasets in N worker processes (one thread each). Table 4 and the α sweep use
the small equal-budget codecs under models/ablation/ (made by scripts/train_ablations.sh).
"""

from __future__ import annotations

import argparse
import sys

from ric.evaluation import paper_tables


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--limit", type=int, help="first N test images per set (default 1000, or all if fewer)")
    p.add_argument("--datasets", nargs="+")
    p.add_argument("--out", help="default docs/results, or docs/results/quick with --limit")
    p.add_argument("--data-root")
    p.add_argument("--jobs", type=int, default=1, help="worker processes (one thread each)")
    p.add_argument("--ablation-root", default="models/ablation", help="the small codecs of Table 4 and the α sweep")
    a = p.parse_args()
    out = a.out or ("docs/results" if a.limit is None else "docs/results/quick")  # a quick run never overwrites the full
    rep = paper_tables(out, a.limit, a.datasets, a.data_root, ablation_root=a.ablation_root,
                       command="python " + " ".join(sys.argv), jobs=a.jobs)
    print(f"done in {rep['wall_seconds'] / 60:.1f} min")


if __name__ == "__main__":
    main()
