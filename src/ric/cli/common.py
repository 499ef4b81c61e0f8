"""What the verbs share: output (``--json``, progress bars), the classifier options, ``--force``, Ray and the
cloud service's options."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ric.errors import InputError

CLASSIFIER_HELP = ("classifier: zoo name, bundle folder, TorchScript file, torchvision:NAME or package.module:factory "
                   "(the last three need --classifier-config)")


def add_output(sp, progress: bool = True) -> None:
    """``--json`` (and ``-q/--quiet`` where the verb shows a progress bar)."""
    sp.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    if progress:
        sp.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def add_classifier(sp, default_help: str) -> None:
    """``-c/--classifier`` and ``--classifier-config`` (bring your own classifier)."""
    sp.add_argument("-c", "--classifier", help=f"{CLASSIFIER_HELP}; default: {default_help}")
    sp.add_argument("--classifier-config", type=Path,
                    help="JSON with input_shape, mean, std, class_names (and weights, factory_kwargs)")


def add_force(sp, made: str) -> None:
    sp.add_argument("--force", action="store_true",
                    help=f"replace existing files in -o that this job cannot prove it made (by default only {made} "
                         "is replaced; anything else is refused before anything is written); inputs are never "
                         "overwritten")


def add_ray(sp) -> None:
    sp.add_argument("--ray", nargs="?", const="", metavar="ADDRESS",
                    help="run on Ray (pip install 'ric[distributed]'): with ADDRESS join that cluster, without "
                         "one Ray's default (RAY_ADDRESS, a cluster started here, else a new local one); inputs, "
                         "outputs and the key must be in a folder every node sees at the same path")
    sp.add_argument("--workers", type=int, metavar="N",
                    help="Ray workers, each loading the model once (default: the cluster's CPUs, GPUs with "
                         "--device cuda); implies --ray")


def add_remote(sp, required: bool = True) -> None:
    """``--url`` and ``--token-file``: the cloud service and the tenant's token."""
    sp.add_argument("--url", required=required, help="the service, e.g. http://127.0.0.1:8000")
    sp.add_argument("--token-file", required=required, type=Path,
                    help="file holding the tenant token (from `ric serve token add NAME --out FILE`)")


def progress(args, total: int, desc: str):
    """A tqdm counter on stderr (only when stderr is a terminal and --json/--quiet are off)."""
    if getattr(args, "json", False) or getattr(args, "quiet", False) or not sys.stderr.isatty():
        return None, lambda: None
    from tqdm import tqdm

    bar = tqdm(total=total, desc=desc, unit="img", file=sys.stderr)
    return bar.update, bar.close


def expand(inputs) -> list:
    """The input files, listed once: the progress bar counts them and the batch function gets the list itself
    (it only checks that each file exists, so a folder is not listed a second time)."""
    from ric.imageio import list_images

    return list_images(inputs)


def emit(args, rows, summary: dict, text_lines: list[str]) -> None:
    """``{"summary", "items"}`` as JSON with ``--json``, else the text lines."""
    if args.json:
        print(json.dumps({"summary": summary, "items": rows}, indent=1))
    else:
        for line in text_lines:
            print(line)


def on_ray(args, verb: str):
    """The batch function for ``verb`` and its extra arguments: local, or on Ray with ``--ray``/``--workers``
    (the key as its file, which every worker reads from the shared folder)."""
    if args.ray is None and args.workers is None:
        from ric import api

        return getattr(api, f"{verb}_files"), {}
    from ric.distributed import ray_jobs

    if args.workers is not None and args.workers < 1:
        raise InputError(f"--workers must be at least 1, got {args.workers}")
    kw = {"address": args.ray or None, "workers": args.workers}
    if verb != "classify":
        kw["key"] = args.key
    return getattr(ray_jobs, f"{verb}_files_ray"), kw


def run_batch(args, verb: str, *positional, **options) -> list[dict]:
    """Run the batch job of ``verb`` (encrypt, classify, decrypt) on ``args.inputs``, here or on Ray, with a progress
    bar; encrypt and decrypt load ``args.key`` first. ``positional`` follow the inputs (the output folder)."""
    key = None
    if verb != "classify":
        from ric.api import load_key

        key = load_key(args.key)
    fn, kw = on_ray(args, verb)
    if key is not None:
        kw.setdefault("key", key)  # on Ray: the key file, which every worker reads from the shared folder
    inputs = expand(args.inputs)
    tick, close = progress(args, len(inputs), verb)
    try:
        return fn(inputs, *positional, progress=tick, **options, **kw)
    finally:
        close()


def cloud(args):
    """The client of ``--url`` with the token of ``--token-file``."""
    from ric.client import Cloud, read_token

    return Cloud(args.url, read_token(args.token_file))


def command(args) -> str:
    """The command line as reports record it (from the ``argv`` given to :func:`ric.cli.main`)."""
    return "ric " + " ".join(args.argv)
