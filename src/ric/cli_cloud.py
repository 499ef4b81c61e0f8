"""CLI verbs of the cloud service: ``ric serve`` (and ``ric serve token ...``), ``ric push``, ``ric pull``, and
``--url``/``--token-file`` for ``ric classify``. Kept apart from :mod:`ric.cli`, which calls
:func:`add_cloud_verbs` once."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from ric.errors import InputError, quote


def _cloud(args):
    from ric.client import Cloud, read_token

    return Cloud(args.url, read_token(args.token_file))


def _out(args, rows, summary: dict, lines: list[str]) -> None:
    if args.json:
        print(json.dumps({"summary": summary, "items": rows}, indent=1))
    else:
        for line in lines:
            print(line)


def cmd_serve(args) -> int:
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


def cmd_token(args) -> int:
    from ric.service.store import Store

    out = getattr(args, "out", None)
    if out is not None and os.path.lexists(out):
        raise InputError(f"{out} exists; refusing to overwrite it (give --out a new file)")
    store = Store(args.store)
    try:
        if args.token_cmd == "add":
            token = store.add_token(args.name)
            if out is not None:
                _write_token(out, token, args.name, store)
                print(f"new token for tenant {args.name} in {args.store} written to {out} (mode 0600; the store "
                      "keeps only its SHA-256)", file=sys.stderr)
                return 0
            print(f"new token for tenant {args.name} in {args.store} (shown once; the store keeps only its SHA-256); "
                  "save it to a file for --token-file (or use --out FILE):", file=sys.stderr)
            print(token)
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


def _write_token(out: Path, token: str, tenant: str, store) -> None:
    """``token`` into the new file ``out`` (mode 0600); if that fails, the token is revoked again (no token
    exists that nobody holds)."""
    from ric.files import write_private

    try:
        write_private(out, (token + "\n").encode())
    except OSError as e:
        store.remove_token(token)
        raise InputError(f"cannot write {out} ({e.strerror or e}); no token was made") from None


def cmd_push(args) -> int:
    from ric.client import push_files

    with _cloud(args) as cloud:
        rows = push_files(args.inputs, cloud)
    failed = [r for r in rows if r["status"] == "failed"]
    summary = {k: sum(r["status"] == k for r in rows) for k in ("stored", "exists", "failed")}
    lines = [f"FAILED {r['input']}: {r['error']}" if r["status"] == "failed" else
             f"{r['input']}\t{r['id'][:16]}\t{r['label']}\t{quote(r['class'])}\t{r['status']}" for r in rows]
    lines.append(f"stored {summary['stored']}, already there {summary['exists']}, failed {summary['failed']} "
                 f"-> {args.url}")
    _out(args, rows, summary, lines)
    return 1 if failed else 0


def cmd_pull(args) -> int:
    from ric.client import pull_files

    with _cloud(args) as cloud:
        rows = pull_files(cloud, args.output, label=args.label, cls=args.cls)
    summary = {k: sum(r["status"] == k for r in rows) for k in ("pulled", "skipped")}
    _out(args, rows, summary, [f"pulled {summary['pulled']}, skipped {summary['skipped']} (already there) "
                               f"-> {args.output}"])
    return 0


def cmd_classify(args, local) -> int:
    """``ric classify``: with ``--url`` the service classifies (nothing stored), else ``local(args)``."""
    if not args.url:
        if args.token_file:
            raise InputError("--token-file goes with --url")
        return local(args)
    if args.classifier or args.classifier_config:
        raise InputError("with --url the service picks the classifier each ciphertext names; drop -c")
    if getattr(args, "stack", None):
        raise InputError("--stack classifies here; drop --url")
    if not args.token_file:
        raise InputError("--url needs --token-file F")
    from ric.client import classify_remote

    with _cloud(args) as cloud:
        rows = classify_remote(args.inputs, cloud)
    # the class names come from the server: quoted, as all untrusted text (--json escapes them)
    _out(args, rows, {"images": len(rows)}, [f"{r['input']}\t{r['label']}\t{quote(r['class'])}" for r in rows])
    return 0


# ric serve's limits: (flag, field of ric.service.limits.Limits, type, help); 0 switches a connection or in-flight
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


def add_cloud_verbs(sub, common) -> None:
    """Add serve/push/pull to the ``ric`` subparsers ``sub``, and ``--url``/``--token-file`` to ``classify``."""
    from ric.service.limits import Limits

    def remote(sp, required=True):
        sp.add_argument("--url", required=required, help="the service, e.g. http://127.0.0.1:8000")
        sp.add_argument("--token-file", required=required, type=Path,
                        help="file holding the tenant token (from `ric serve token add NAME --out FILE`)")

    s = sub.add_parser("serve", help="the cloud as an HTTP service: classify and store ciphertexts (no key); "
                                     "`ric serve token add NAME --store DIR` makes a tenant token")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--store", type=Path, help="store folder (SQLite index + ciphertexts; created if missing)")
    s.add_argument("--classifier", action="append",
                   help="classifier to load (repeatable; a ciphertext may only select a loaded one); "
                        "default svhn-cnn7")
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
    s.set_defaults(fn=cmd_serve)
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
        common(tp, False)
        tp.set_defaults(fn=cmd_token)

    s = sub.add_parser("push", help="store ciphertexts in the cloud service (kept under their file names)")
    s.add_argument("inputs", nargs="+", help="ciphertext files or folders")
    remote(s)
    common(s, False)
    s.set_defaults(fn=cmd_push)

    s = sub.add_parser("pull", help="fetch stored ciphertexts (byte-identical, under their pushed names)")
    remote(s)
    s.add_argument("--label", type=int, help="only this label")
    s.add_argument("--class", dest="cls", help="only this class name")
    s.add_argument("-o", "--output", required=True, type=Path, help="output folder")
    common(s, False)
    s.set_defaults(fn=cmd_pull)

    c = sub.choices.get("classify")
    if c is not None:
        remote(c, required=False)
        local = c.get_default("fn")
        c.set_defaults(fn=lambda args: cmd_classify(args, local))
