"""Security evaluation of the shipped models; regenerates docs/security.md, its figures and JSON.

    python benchmarks/security.py            # full run (see docs/security.md for its duration)
    python benchmarks/security.py --quick    # small run into docs/security_quick.md (see there for its duration)

A thin wrapper over ``ric security`` (``ric.security.report.run_security``). Needs the optional extra for
the non-local-means/TV denoisers: ``pip install -e '.[security]'`` (those rows are left out without it).
"""

from __future__ import annotations

import argparse
import sys

from ric.security.report import run_security


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = " ".join(["python benchmarks/security.py", *argv])
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", help="default: ric.security.report.DEFAULT_MODELS")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--run", default="runs/security")
    p.add_argument("--data-root")
    p.add_argument("--docs", default="docs")
    p.add_argument("--fresh", action="store_true", help="recompute models whose finished results are cached")
    a = p.parse_args(argv)
    run_security(a.models, a.quick, a.run, a.docs, a.data_root, command=command,
                 fresh=a.fresh)


if __name__ == "__main__":
    main()
