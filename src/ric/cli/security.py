"""``ric security``: attack the shipped models and write the security report."""

from __future__ import annotations

import json
import sys

from ric.cli.common import add_output, command
from ric.zoo import bundles

HELP = ("attack the shipped models (brute force, known plaintext, curious cloud, blind) and write DOCS/security.md "
        "(--quick: DOCS/security_quick.md)")


def add_arguments(s) -> None:
    s.add_argument("--models", nargs="+",
                   help="paper-scheme models, or exact:CLASSIFIER for the exact scheme (e.g. "
                        f"exact:{bundles.DEFAULT_CLASSIFIER}, exact:faces-dlibface); default: "
                        f"{bundles.DATASET_MODELS['svhn']} {bundles.DATASET_MODELS['faces']} "
                        f"exact:{bundles.DEFAULT_CLASSIFIER} exact:faces-dlibface (full run: + svhn-ric faces-ric)")
    s.add_argument("--quick", action="store_true", help="small samples (minutes instead of an hour or more)")
    s.add_argument("--run", required=True, help="cache folder of the victim's ciphertexts and finished results "
                                                "(reused by reruns)")
    s.add_argument("-o", "--docs", required=True, help="folder DOCS for security.md, security/ and results/ "
                                                       "(benchmarks/security.py fills the repository's)")
    s.add_argument("--fresh", action="store_true", help="recompute models whose finished results are cached")
    s.add_argument("--data-root")
    add_output(s)


def run(args) -> int:
    from ric.security.report import run_security

    log = (lambda m: None) if args.json or args.quiet else (lambda m: print(m, file=sys.stderr, flush=True))
    rep = run_security(args.models, args.quick, args.run, args.docs, args.data_root, command=command(args), log=log,
                       fresh=args.fresh)
    if args.json:
        print(json.dumps(rep, indent=1))
    else:
        q = "_quick" if args.quick else ""
        print(f"wrote {args.docs}/security{q}.md, figures in {args.docs}/security/{'quick/' if q else ''}")
    return 0
