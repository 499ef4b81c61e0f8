"""``ric decrypt``: ciphertexts -> recovered images or photo files (needs the key)."""

from __future__ import annotations

import sys
from pathlib import Path

from ric.cli.common import add_classifier, add_force, add_output, add_ray, emit, run_batch

HELP = "ciphertext PNGs -> recovered images (needs the key)"


def add_arguments(s) -> None:
    s.add_argument("inputs", nargs="+")
    s.add_argument("-o", "--output", required=True, type=Path)
    s.add_argument("-k", "--key", required=True, type=Path)
    s.add_argument("-m", "--model", help="RIC model (default: the one named in each ciphertext)")
    add_classifier(s, "the model's own; must be the one used to encrypt")
    s.add_argument("--no-verify", action="store_true",
                   help="skip the authentication check (experiments only: a wrong key then yields noise)")
    s.add_argument("--any-name", action="store_true",
                   help="decrypt a ciphertext that was renamed since it was written (by default refused: a server "
                        "that swaps two files' names is caught this way)")
    s.add_argument("--batch-size", type=int, default=64)
    s.add_argument("--device", default="cpu")
    add_force(s, "an image recovered under the key (ric:recovered-mac)")
    add_output(s)
    add_ray(s)


def run(args) -> int:
    if args.no_verify:
        print("warning: --no-verify: tags are not checked; a wrong key gives noise, not an error "
              "(for experiments only)", file=sys.stderr)
    rows = run_batch(args, "decrypt", args.output, model=args.model, verify=not args.no_verify, device=args.device,
                     batch_size=args.batch_size, classifier=args.classifier,
                     classifier_config=args.classifier_config, force=args.force, any_name=args.any_name)
    summary = {k: sum(r["status"] == k for r in rows) for k in ("decrypted", "skipped")}
    emit(args, rows, summary, [f"decrypted {summary['decrypted']}, skipped {summary['skipped']} (already done) "
                               f"-> {args.output}"])
    return 0
