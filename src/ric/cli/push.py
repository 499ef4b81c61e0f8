"""``ric push``: store ciphertexts in the cloud service (kept under their file names)."""

from __future__ import annotations

from ric.cli.common import add_output, add_remote, cloud, emit
from ric.errors import quote

HELP = "store ciphertexts in the cloud service (kept under their file names)"


def add_arguments(s) -> None:
    s.add_argument("inputs", nargs="+", help="ciphertext files or folders")
    add_remote(s)
    add_output(s, False)


def run(args) -> int:
    from ric.client import push_files

    with cloud(args) as c:
        rows = push_files(args.inputs, c)
    failed = [r for r in rows if r["status"] == "failed"]
    summary = {k: sum(r["status"] == k for r in rows) for k in ("stored", "exists", "failed")}
    lines = [f"FAILED {r['input']}: {r['error']}" if r["status"] == "failed" else
             f"{r['input']}\t{r['id'][:16]}\t{r['label']}\t{quote(r['class'])}\t{r['status']}" for r in rows]
    lines.append(f"stored {summary['stored']}, already there {summary['exists']}, failed {summary['failed']} "
                 f"-> {args.url}")
    emit(args, rows, summary, lines)
    return 1 if failed else 0
