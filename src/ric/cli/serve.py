"""``ric serve``: the cloud as an HTTP service (classify and store ciphertexts; no key), and ``ric serve token``:
the tenants' bearer tokens."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from ric.cli.common import add_output
from ric.errors import InputError
from ric.zoo import bundles

HELP = ("the cloud as an HTTP service: classify and store ciphertexts (no key); "
        "`ric serve token add NAME --store DIR` makes a tenant token")

# the service's limits: (flag, field of ric.service.limits.Limits, type, help); 0 switches a connection or in-flight
# limit off. Defaults come from Limits.
LIMIT_FLAGS = (
    ("--max-body-bytes", "max_body_bytes", int, "largest request body in bytes"),
    ("--max-pixels", "max_pixels", int, "largest image in pixels, from its header"),
    ("--min-bits-per-subpixel", "min_bits_per_subpixel", float,
     "refuse an upload that declares more than 8 x bytes / this many sub-pixels (a ciphertext carries at least 3 "
     "incompressible bits per sub-pixel; 0: off)"),
    ("--max-meta-bytes", "max_meta_bytes", int, "PNG chunks besides the image data, in bytes"),
    ("--queue-max-pixels", "queue_max_pixels", int, "sub-pixels decoded and waiting for the model, all requests"),
    ("--batch-max-pixels", "batch_max_pixels", int, "sub-pixels per forward pass"),
    ("--max-images-per-tenant", "max_images_per_tenant", int, "images one tenant may store"),
    ("--max-bytes-per-tenant", "max_bytes_per_tenant", int, "ciphertext bytes one tenant may store"),
    ("--max-in-flight", "max_in_flight", int, "requests handled at once (503 beyond)"),
    ("--max-in-flight-per-tenant", "max_in_flight_per_tenant", int, "requests one tenant has in flight (429 beyond)"),
    ("--max-connections", "max_connections", int, "open connections in all (closed beyond)"),
    ("--max-connections-per-client", "max_connections_per_client", int,
     "open connections from one client address (closed beyond)"),
    ("--header-timeout", "header_timeout_s", float, "seconds a connection may take to send a request head"),
)


def add_arguments(s) -> None:
    from ric.service.limits import Limits

    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--store", type=Path, help="store folder (SQLite index + ciphertexts; created if missing)")
    s.add_argument("--classifier", action="append",
                   help="classifier to load (repeatable; a ciphertext may only select a loaded one); "
                        f"default {bundles.DEFAULT_CLASSIFIER}")
    s.add_argument("--stack", metavar="NAME",
                   help="classify the way a serving stack does, as ric classify --stack (torch, onnxruntime, "
                        "onnxruntime-int8, fp16, opencv-linear, pil-bicubic, crop-1.15, ...); default: ric's own "
                        "torch path")
    s.add_argument("--no-batching", action="store_true", help="one forward pass per request (no micro-batching)")
    s.add_argument("--max-batch", type=int, default=64, help="images per forward pass (default 64)")
    s.add_argument("--batch-wait-ms", type=float, default=2.0,
                   help="how long a batch waits for more requests after its first (default 2 ms)")
    s.add_argument("--rate", type=float, default=50.0, help="requests/s per tenant (0: no limit; default 50)")
    s.add_argument("--burst", type=int, default=100, help="rate-limit burst (default 100)")
    defaults = Limits()
    for flag, field, typ, hlp in LIMIT_FLAGS:
        s.add_argument(flag, dest=field, type=typ, default=getattr(defaults, field), metavar="N",
                       help=hlp + " (default %(default)s)")
    s.add_argument("--threads", type=int, default=1, help="torch threads for the model (default 1)")
    s.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"),
                   help="uvicorn log level (info logs each request, warning does not)")
    _add_token_verbs(s)


def _add_token_verbs(s) -> None:
    tsub = s.add_subparsers(dest="serve_cmd")
    t = tsub.add_parser("token", help="tenants' bearer tokens")
    ttsub = t.add_subparsers(dest="token_cmd", required=True)
    for verb, hlp in (("add", "new token for tenant NAME (created if new), printed on the last line"),
                      ("revoke", "revoke every token of tenant NAME"), ("list", "tenants, token and image counts")):
        tp = ttsub.add_parser(verb, help=hlp)
        if verb != "list":
            tp.add_argument("name", metavar="NAME")
        if verb == "add":
            tp.add_argument("--out", type=Path, metavar="FILE",
                            help="write the token to this new file (mode 0600) instead of printing it")
        tp.add_argument("--store", type=Path, required=True)
        add_output(tp, False)
        tp.set_defaults(fn=run_token)


def run(args) -> int:
    if not args.store:
        raise InputError("ric serve needs --store DIR (the folder for the index and the ciphertexts)")
    try:
        from ric.service.app import DEFAULT_CLASSIFIERS, Limits, serve
    except ImportError as e:
        raise InputError(f"ric serve needs the serve extra ({e.name} is missing): pip install -e '.[serve]'") from None
    lim = Limits(rate=args.rate, burst=args.burst, max_batch=1 if args.no_batching else args.max_batch,
                 batch_wait_s=args.batch_wait_ms / 1000, **{f: getattr(args, f) for _, f, _, _ in LIMIT_FLAGS})
    serve(args.store, args.host, args.port, args.classifier or DEFAULT_CLASSIFIERS, lim, args.log_level,
          args.threads, args.stack)
    return 0


def run_token(args) -> int:
    """``ric serve token add|revoke|list``."""
    from ric.service.store import Store

    out = getattr(args, "out", None)
    if out is not None and os.path.lexists(out):
        raise InputError(f"{out} exists; refusing to overwrite it (give --out a new file)")
    store = Store(args.store)
    try:
        if args.token_cmd == "add":
            _add_token(args, store, out)
        elif args.token_cmd == "revoke":
            n = store.revoke_tokens(args.name)
            print(f"revoked {n} token(s) of tenant {args.name}")
        else:
            rows = store.tenants()
            if args.json:
                print(json.dumps(rows, indent=1))
            for r in rows if not args.json else []:
                print(f"{r['tenant']}\t{r['tokens']} token(s)\t{r['images']} image(s)\t{r['bytes']} bytes")
    finally:
        store.close()
    return 0


def _add_token(args, store, out: Path | None) -> None:
    token = store.add_token(args.name)
    if out is not None:
        _write_token(out, token, store)
        print(f"new token for tenant {args.name} in {args.store} written to {out} (mode 0600; the store "
              "keeps only its SHA-256)", file=sys.stderr)
        return
    print(f"new token for tenant {args.name} in {args.store} (shown once; the store keeps only its SHA-256); "
          "save it to a file for --token-file (or use --out FILE):", file=sys.stderr)
    print(token)


def _write_token(out: Path, token: str, store) -> None:
    """``token`` into the new file ``out`` (mode 0600); if that fails, the token is revoked again (no token
    exists that nobody holds)."""
    from ric.files import write_private

    try:
        write_private(out, (token + "\n").encode())
    except OSError as e:
        store.remove_token(token)
        raise InputError(f"cannot write {out} ({e.strerror or e}); no token was made") from None
