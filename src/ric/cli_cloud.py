"""CLI verbs of the cloud service: ``ric serve`` (and ``ric serve token ...``), ``ric push``, ``ric pull``, and
``--url``/``--token-file`` for ``ric classify``. Kept apart from :mod:`ric.cli`, which calls
:func:`add_cloud_verbs` once."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ric.errors import InputError


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
    lim = Limits(max_body_bytes=args.max_body_bytes, max_pixels=args.max_pixels, rate=args.rate, burst=args.burst,
                 max_batch=1 if args.no_batching else args.max_batch, batch_wait_s=args.batch_wait_ms / 1000,
                 queue_max=args.queue_max,
                 max_connections=args.max_connections)
    serve(args.store, args.host, args.port, args.classifier or DEFAULT_CLASSIFIERS, lim, args.log_level,
          args.threads)
    return 0


def cmd_token(args) -> int:
    from ric.service.store import Store

    store = Store(args.store)
    try:
        if args.token_cmd == "add":
            token = store.add_token(args.name)
            print(f"new token for tenant {args.name} in {args.store} (shown once; the store keeps only its SHA-256); "
                  "save it to a file for --token-file:", file=sys.stderr)
            print(token)
        elif args.token_cmd == "revoke":
            n = store.revoke_tokens(args.name)
            print(f"revoked {n} token(s) of tenant {args.name}")
        else:
            rows = store.tenants()
            if args.json:
                print(json.dumps(rows, indent=1))
            for r in rows if not args.json else []:
                print(f"{r['tenant']}\t{r['tokens']} token(s)\t{r['images']} image(s)")
    finally:
        store.close()
    return 0


def cmd_push(args) -> int:
    from ric.client import push_files

    with _cloud(args) as cloud:
        rows = push_files(args.inputs, cloud)
    failed = [r for r in rows if r["status"] == "failed"]
    summary = {k: sum(r["status"] == k for r in rows) for k in ("stored", "exists", "failed")}
    lines = [f"FAILED {r['input']}: {r['error']}" if r["status"] == "failed" else
             f"{r['input']}\t{r['id'][:16]}\t{r['label']}\t{r['class']}\t{r['status']}" for r in rows]
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
    _out(args, rows, {"images": len(rows)}, [f"{r['input']}\t{r['label']}\t{r['class']}" for r in rows])
    return 0


def add_cloud_verbs(sub, common) -> None:
    """Add serve/push/pull to the ``ric`` subparsers ``sub``, and ``--url``/``--token-file`` to ``classify``."""

    def remote(sp, required=True):
        sp.add_argument("--url", required=required, help="the service, e.g. http://127.0.0.1:8000")
        sp.add_argument("--token-file", required=required, type=Path,
                        help="file holding the tenant token (the last line of `ric serve token add`)")

    s = sub.add_parser("serve", help="the cloud as an HTTP service: classify and store ciphertexts (no key); "
                                     "`ric serve token add NAME --store DIR` makes a tenant token")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--store", type=Path, help="store folder (SQLite index + ciphertexts; created if missing)")
    s.add_argument("--classifier", action="append",
                   help="classifier to load (repeatable; a ciphertext may only select a loaded one); "
                        "default svhn-cnn7")
    s.add_argument("--no-batching", action="store_true", help="one forward pass per request (no micro-batching)")
    s.add_argument("--max-batch", type=int, default=64, help="images per forward pass (default 64)")
    s.add_argument("--batch-wait-ms", type=float, default=2.0,
                   help="how long a batch waits for more requests after its first (default 2 ms)")
    s.add_argument("--rate", type=float, default=50.0, help="requests/s per tenant (0: no limit; default 50)")
    s.add_argument("--burst", type=int, default=100, help="rate-limit burst (default 100)")
    s.add_argument("--max-body-bytes", type=int, default=8 << 20, help="largest request body (default 8 MiB)")
    s.add_argument("--max-pixels", type=int, default=1 << 22, help="largest image, from its header (default 4 Mpx)")
    s.add_argument("--queue-max", type=int, default=256, help="classify requests waiting at most (default 256)")
    s.add_argument("--max-connections", type=int, default=128, help="concurrent connections (503 beyond)")
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
