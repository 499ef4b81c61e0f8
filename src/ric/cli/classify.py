"""``ric classify``: label images with a plaintext classifier (the cloud; no key), here or on Ray, or by the
cloud service (``--url``)."""

from __future__ import annotations

from ric.cli.common import add_classifier, add_output, add_ray, add_remote, cloud, emit, run_batch
from ric.errors import InputError, quote

HELP = "label images with a plaintext classifier (the cloud; no key)"


def add_arguments(s) -> None:
    s.add_argument("inputs", nargs="+")
    add_classifier(s, "the one named in the ciphertexts")
    s.add_argument("--convert", choices=("strict", "auto"), default="strict")
    s.add_argument("--stack", metavar="NAME", help="classify the way a serving stack does (torch, onnxruntime, "
                   "onnxruntime-fp16, onnxruntime-int8, fp16, bf16, opencv-linear, pil-bicubic, crop-1.15, ...: "
                   "see the security page); OpenCV and ONNX Runtime need pip install 'ric[stacks]'")
    add_output(s)
    add_ray(s)
    add_remote(s, required=False)


def run(args) -> int:
    """With ``--url`` the service classifies (nothing stored), else this machine (or Ray) does."""
    if args.url:
        return _remote(args)
    if args.token_file:
        raise InputError("--token-file goes with --url")
    if args.stack and (args.ray is not None or args.workers is not None):
        raise InputError("--stack classifies here; drop --ray/--workers")
    rows = run_batch(args, "classify", classifier=args.classifier, convert=args.convert,
                     classifier_config=args.classifier_config, **({"stack": args.stack} if args.stack else {}))
    emit(args, rows, {"images": len(rows)}, [f"{r['input']}\t{r['label']}\t{r['class']}" for r in rows])
    return 0


def _remote(args) -> int:
    if args.classifier or args.classifier_config:
        raise InputError("with --url the service picks the classifier each ciphertext names; drop -c")
    if args.stack:
        raise InputError("--stack classifies here; drop --url")
    if not args.token_file:
        raise InputError("--url needs --token-file F")
    from ric.client import classify_remote

    with cloud(args) as c:
        rows = classify_remote(args.inputs, c)
    # the class names come from the server: quoted, as all untrusted text (--json escapes them)
    emit(args, rows, {"images": len(rows)}, [f"{r['input']}\t{r['label']}\t{quote(r['class'])}" for r in rows])
    return 0
