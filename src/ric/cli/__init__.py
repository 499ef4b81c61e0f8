"""Command-line interface: a thin layer over :mod:`ric.api`, one module per verb.

Each verb's module has ``HELP``, ``add_arguments(parser)`` and ``run(args) -> exit code``; :data:`VERBS` lists
them in the order ``ric --help`` shows them, and :mod:`ric.cli.common` holds the options they share.

Exit codes: 0 success; 1 some images could not be encrypted (reported, nothing silent);
2 bad input or usage (unreadable/truncated file, wrong size or channels, unknown model, missing key);
3 authentication failed (wrong key, or a ciphertext's pixels or metadata were modified).
"""

from __future__ import annotations

import argparse
import sys
import warnings

from ric.cli import (
    classify,
    datasets,
    decrypt,
    demo,
    encrypt,
    eval,
    export,
    keygen,
    models,
    pull,
    push,
    security,
    serve,
    train,
)
from ric.errors import RICError, RICWarning

VERBS = {"keygen": keygen, "encrypt": encrypt, "classify": classify, "decrypt": decrypt, "models": models,
         "datasets": datasets, "demo": demo, "train": train, "eval": eval, "security": security, "export": export,
         "serve": serve, "push": push, "pull": pull}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ric", description="Recoverable privacy-preserving image classification.")
    sub = p.add_subparsers(dest="cmd", required=True)
    for name, mod in VERBS.items():
        sp = sub.add_parser(name, help=mod.HELP)
        mod.add_arguments(sp)
        sp.set_defaults(fn=mod.run)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run one ``ric`` command line (``argv`` without the program name; default ``sys.argv[1:]``); reports record
    this ``argv`` as their command."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    with warnings.catch_warnings():
        warnings.simplefilter("always", RICWarning)
        show = warnings.showwarning

        def one_line(message, category, filename, lineno, file=None, line=None):
            if issubclass(category, RICWarning):  # ours: one line, like errors
                print(f"ric {args.cmd}: warning: {message}", file=sys.stderr)
            else:
                show(message, category, filename, lineno, file, line)

        warnings.showwarning = one_line
        return _run(args)


def _run(args) -> int:
    try:
        return args.fn(args)
    except RICError as e:
        print(f"ric {args.cmd}: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print(f"ric {args.cmd}: interrupted; finished outputs are kept, rerun to continue", file=sys.stderr)
        return 130
