"""``ric keygen``: a new 256-bit secret key."""

from __future__ import annotations

import json
from pathlib import Path

from ric.cli.common import add_output

HELP = "write a new 256-bit secret key (mode 0600)"


def add_arguments(sp) -> None:
    sp.add_argument("-o", "--output", required=True, type=Path)
    sp.add_argument("--force", action="store_true", help="overwrite an existing key file")
    add_output(sp, False)


def run(args) -> int:
    from ric.api import keygen

    key = keygen(args.output, force=args.force)
    if args.json:
        print(json.dumps({"key_file": str(args.output), "key_id": key.key_id}))
    else:
        print(f"wrote {args.output} (256-bit key, id {key.key_id}, mode 0600); keep it secret")
    return 0
