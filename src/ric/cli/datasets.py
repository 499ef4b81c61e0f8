"""``ric datasets``: the datasets and where they were found."""

from __future__ import annotations

import json

from ric.cli.common import add_output

HELP = "list the datasets and where they were found"


def add_arguments(sp) -> None:
    sp.add_argument("--data-root")
    add_output(sp, False)


def run(args) -> int:
    from ric.datasets import available

    rows = available(args.data_root)
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        for r in rows:
            print(f"{r['name']:<13} {'found' if r['present'] else 'missing':<8} {r['split']}")
        print(f"data root: {rows[0]['root']} (--data-root or RIC_DATA to change)")
    return 0
