"""``ric pull``: fetch stored ciphertexts (byte-identical, under their pushed names)."""

from __future__ import annotations

from pathlib import Path

from ric.cli.common import add_output, add_remote, cloud, emit

HELP = "fetch stored ciphertexts (byte-identical, under their pushed names)"


def add_arguments(s) -> None:
    add_remote(s)
    s.add_argument("--label", type=int, help="only this label")
    s.add_argument("--class", dest="cls", help="only this class name")
    s.add_argument("-o", "--output", required=True, type=Path, help="output folder")
    add_output(s, False)


def run(args) -> int:
    from ric.client import pull_files

    with cloud(args) as c:
        rows = pull_files(c, args.output, label=args.label, cls=args.cls)
    summary = {k: sum(r["status"] == k for r in rows) for k in ("pulled", "skipped")}
    emit(args, rows, summary, [f"pulled {summary['pulled']}, skipped {summary['skipped']} (already there) "
                               f"-> {args.output}"])
    return 0
