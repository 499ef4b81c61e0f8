"""Command-line interface: a thin layer over :mod:`ric.api`.

Exit codes: 0 success; 1 some images could not be encrypted (reported, nothing silent);
2 bad input or usage (unreadable/truncated file, wrong size or channels, unknown model, missing key);
3 authentication failed (wrong key, or a ciphertext's pixels or metadata were modified).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path

from ric.errors import InputError, RICError, RICWarning
from ric.zoo import bundles


def _progress(args, total: int, desc: str):
    """A tqdm counter on stderr (only when stderr is a terminal and --json/--quiet are off)."""
    if getattr(args, "json", False) or getattr(args, "quiet", False) or not sys.stderr.isatty():
        return None, lambda: None
    from tqdm import tqdm

    bar = tqdm(total=total, desc=desc, unit="img", file=sys.stderr)
    return bar.update, bar.close


def _expand(inputs) -> list:
    """The input files, listed once: the progress bar counts them and the batch function gets the list itself
    (it only checks that each file exists, so a folder is not listed a second time)."""
    from ric.imageio import list_images

    return list_images(inputs)


def _emit(args, rows, summary: dict, text_lines: list[str]):
    if args.json:
        print(json.dumps({"summary": summary, "items": rows}, indent=1))
    else:
        for line in text_lines:
            print(line)


def cmd_keygen(args) -> int:
    from ric.api import keygen

    key = keygen(args.output, force=args.force)
    if args.json:
        print(json.dumps({"key_file": str(args.output), "key_id": key.key_id}))
    else:
        print(f"wrote {args.output} (256-bit key, id {key.key_id}, mode 0600); keep it secret")
    return 0


def _on_ray(args, verb: str):
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


def cmd_encrypt(args) -> int:
    from ric.api import load_key

    key = load_key(args.key)
    fn, kw = _on_ray(args, "encrypt")
    kw.setdefault("key", key)
    inputs = _expand(args.inputs)
    tick, close = _progress(args, len(inputs), "encrypt")
    try:
        rows = fn(inputs, args.output, model=args.model, convert=args.convert, device=args.device,
                  max_retries=args.retries, batch_size=args.batch_size, progress=tick, classifier=args.classifier,
                  classifier_config=args.classifier_config, scheme=args.scheme, bits=args.bits,
                  resize=args.resize, refine=not args.no_refine, strip_metadata=args.strip_metadata,
                  keep_names=args.keep_names, force=args.force, **_robust(args), **kw)
    finally:
        close()
    failed = [r for r in rows if r["status"] == "failed"]
    unchecked = sorted({s for r in rows for s in r.get("unchecked_stacks", ())})
    if unchecked:
        print(f"note: ciphertexts were not checked on serving stack(s) {', '.join(unchecked)} (library not installed: "
              "pip install 'ric[stacks]')", file=sys.stderr)
    summary = {k: sum(r["status"] == k for r in rows) for k in ("encrypted", "skipped", "failed")}
    lines = [f"FAILED {r['input']}: {r['error']}" for r in failed]
    lines.append(f"encrypted {summary['encrypted']}, skipped {summary['skipped']} (already done), "
                 f"failed {summary['failed']} -> {args.output}")
    _emit(args, rows, summary, lines)
    return max((r.get("code", 1) for r in failed), default=0)  # 2: a bad photo, 1: a label not reached


def _robust(args) -> dict:
    """``robust_set`` for the encrypt job when ``--robust-set`` was given (``none``: no set); an unknown name is
    refused before anything is loaded."""
    if args.robust_set is None:
        return {}
    if args.scheme == "paper" or args.model:
        raise InputError("--robust-set belongs to the exact scheme; the paper scheme has no robustness set")
    if args.robust_set == "none":
        return {"robust_set": None}
    from ric.stacks import check_robust_set

    return {"robust_set": check_robust_set(args.robust_set)}


def cmd_classify(args) -> int:
    fn, kw = _on_ray(args, "classify")
    if args.stack:
        if kw:
            raise InputError("--stack classifies here; drop --ray/--workers")
        kw["stack"] = args.stack
    inputs = _expand(args.inputs)
    tick, close = _progress(args, len(inputs), "classify")
    try:
        rows = fn(inputs, classifier=args.classifier, convert=args.convert, progress=tick,
                  classifier_config=args.classifier_config, **kw)
    finally:
        close()
    _emit(args, rows, {"images": len(rows)}, [f"{r['input']}\t{r['label']}\t{r['class']}" for r in rows])
    return 0


def cmd_decrypt(args) -> int:
    from ric.api import load_key

    key = load_key(args.key)
    fn, kw = _on_ray(args, "decrypt")
    kw.setdefault("key", key)
    if args.no_verify:
        print("warning: --no-verify: tags are not checked; a wrong key gives noise, not an error "
              "(for experiments only)", file=sys.stderr)
    inputs = _expand(args.inputs)
    tick, close = _progress(args, len(inputs), "decrypt")
    try:
        rows = fn(inputs, args.output, model=args.model, verify=not args.no_verify, device=args.device,
                  batch_size=args.batch_size, progress=tick, classifier=args.classifier,
                  classifier_config=args.classifier_config, force=args.force, any_name=args.any_name, **kw)
    finally:
        close()
    summary = {k: sum(r["status"] == k for r in rows) for k in ("decrypted", "skipped")}
    _emit(args, rows, summary, [f"decrypted {summary['decrypted']}, skipped {summary['skipped']} (already done) "
                                f"-> {args.output}"])
    return 0


def cmd_models(args) -> int:
    from ric.api import list_models

    rows = list_models()
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    for r in rows:
        if r["kind"] == "classifier":
            acc = f"{100 * r['test_accuracy']:.2f}% on {r['test_data']}" if r.get("test_accuracy") else ""
            pre = r.get("preprocess") or {}
            takes = (f"any size ({pre['kind']} to {pre['size'][0]}x{pre['size'][1]})" if pre
                     else f"input {r['input_shape']}")
            print(f"{r['name']:<20} classifier  {takes}, {r['classes']} classes  {acc}")
        else:
            m = r.get("metrics") or {}
            extra = (f"PSNR {m['psnr_db']:.2f} dB, agreement {100 * m['label_agreement']:.2f}% on {m['data']}"
                     if m else "")
            print(f"{r['name']:<20} ric         codec {r['codec']} (trained on {r['codec_trained_on']}), "
                  f"alpha {r['alpha']}{', scrambled' if r.get('scramble') else ''}, classifier {r['classifier']}, "
                  f"input {r['image_shape']}  {extra}")
    return 0


def cmd_datasets(args) -> int:
    from ric.datasets import available

    rows = available(args.data_root)
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        for r in rows:
            print(f"{r['name']:<13} {'found' if r['present'] else 'missing':<8} {r['split']}")
        print(f"data root: {rows[0]['root']} (--data-root or RIC_DATA to change)")
    return 0


def cmd_demo(args) -> int:
    from ric.api import demo

    s = demo(args.output, model=args.model)
    if args.json:
        print(json.dumps(s, indent=1))
        return 0 if s["failed"] == 0 else 1
    print(f"RIC demo: {s['images']} shipped SVHN test images, offline, one new key ({s['key_id']})")
    for name, r in s["schemes"].items():
        print(f"{name}: {r['scheme']}")
        print(f"  encrypted {r['encrypted']}/{s['images']}; cloud labels on ciphertexts = labels on plaintexts: "
              f"{100 * r['label_agreement']:.2f}%  (accuracy vs true labels: plaintext "
              f"{100 * r['plaintext_accuracy']:.2f}%, ciphertext {100 * r['ciphertext_accuracy']:.2f}%)")
        print(f"  recovery with the key: {100 * r['bit_exact']:.2f}% bit-exact, PSNR {r['psnr_db']:.2f} dB "
              f"(100 = identical), SSIM {r['ssim']:.4f}")
        if "wrong_key_psnr_db" in r:
            print(f"  a random wrong key (tag check off) recovers noise: PSNR {r['wrong_key_psnr_db']:.2f} dB")
        else:
            print(f"  a random wrong key is refused: {100 * r['wrong_key_refused']:.2f}% of files")
    if s["workdir"]:
        print(f"files in {s['workdir']}/<scheme>/")
    return 0 if s["failed"] == 0 else 1


def cmd_train(args) -> int:
    import torch

    from ric.training.recipes import train_from_recipe

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    cfg = train_from_recipe(args.what, args.recipe, out=args.output, run=args.run, epochs=args.epochs,
                            time_budget=args.time_budget, overrides=args.set, device=device,
                            data_root=args.data_root, init=args.init, classifier=args.classifier,
                            command="ric " + " ".join(args.argv))
    if os.environ.get("RANK", "0") == "0":  # under torchrun, rank 0 speaks for the run
        print(json.dumps({k: v for k, v in cfg.items() if k in ("name", "test_accuracy", "weights_sha256")}))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ric", description="Recoverable privacy-preserving image classification.")
    sub = p.add_subparsers(dest="cmd", required=True)

    clf_help = ("classifier: zoo name, bundle folder, TorchScript file, torchvision:NAME or package.module:factory "
                "(the last three need --classifier-config)")

    def byo(sp, default_help):
        sp.add_argument("-c", "--classifier", help=f"{clf_help}; default: {default_help}")
        sp.add_argument("--classifier-config", type=Path,
                        help="JSON with input_shape, mean, std, class_names (and weights, factory_kwargs)")

    def common(sp, progress=True):
        sp.add_argument("--json", action="store_true", help="machine-readable output on stdout")
        if progress:
            sp.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    _owner_verbs(sub, byo, common)
    _other_verbs(sub, common)
    return p


def _force_option(sp, made: str) -> None:
    sp.add_argument("--force", action="store_true",
                    help=f"replace existing files in -o that this job cannot prove it made (by default only {made} "
                         "is replaced; anything else is refused before anything is written); inputs are never "
                         "overwritten")


def _ray_options(sp) -> None:
    sp.add_argument("--ray", nargs="?", const="", metavar="ADDRESS",
                    help="run on Ray (pip install 'ric[distributed]'): with ADDRESS join that cluster, without "
                         "one Ray's default (RAY_ADDRESS, a cluster started here, else a new local one); inputs, "
                         "outputs and the key must be in a folder every node sees at the same path")
    sp.add_argument("--workers", type=int, metavar="N",
                    help="Ray workers, each loading the model once (default: the cluster's CPUs, GPUs with "
                         "--device cuda); implies --ray")


def _owner_verbs(sub, byo, common) -> None:
    """keygen, encrypt, classify, decrypt: the three parties' verbs."""
    s = sub.add_parser("keygen", help="write a new 256-bit secret key (mode 0600)")
    s.add_argument("-o", "--output", required=True, type=Path)
    s.add_argument("--force", action="store_true", help="overwrite an existing key file")
    common(s, False)
    s.set_defaults(fn=cmd_keygen)

    s = sub.add_parser("encrypt", help="images -> ciphertext PNGs (data owner; needs the key)")
    s.add_argument("inputs", nargs="+", help="image files or directories")
    s.add_argument("-o", "--output", required=True, type=Path, help="output directory")
    s.add_argument("-k", "--key", required=True, type=Path)
    s.add_argument("--scheme", choices=("exact", "paper"),
                   help="exact (default): bit-exact recovery, the ciphertext reveals the label and size only; "
                        "paper: the paper's NAE + learned codec (approximate recovery; -m implies it)")
    s.add_argument("-m", "--model",
                   help=f"paper scheme: RIC model (shipped name or bundle folder; default {bundles.DEFAULT_MODEL})")
    s.add_argument("--bits", type=int, choices=(3, 4, 5, 6, 7),
                   help="exact scheme: low bits per sub-pixel that carry the image (default: the classifier's, else 6)")
    s.add_argument("--robust-set", metavar="NAME|none",
                   help="exact scheme: the serving variations every ciphertext keeps its label under (default "
                        "serving-v1: Pillow, OpenCV and torch resizers at three resize/crop geometries; each "
                        "ciphertext is then checked on every installed serving stack of ric classify --stack and "
                        "retried if it fails; see the security page); none: ric's own torch preprocessing only "
                        "(faster)")
    s.add_argument("--no-refine", action="store_true",
                   help="paper scheme: skip the encoder-side refinement of the ciphertexts (faster, lower recovery "
                        "quality; decryption is the same)")
    s.add_argument("--resize", action="store_true",
                   help="paper scheme: encrypt a copy resized to the classifier's input (recovery returns that copy)")
    s.add_argument("--convert", choices=("strict", "auto"), default="strict",
                   help="channel policy: strict = error on grey/RGBA for an RGB model; auto = replicate grey, "
                        "drop alpha (exact scheme: the image keeps its channels and comes back as it was)")
    s.add_argument("--strip-metadata", action="store_true",
                   help="exact scheme, photos: drop EXIF (with GPS), XMP, IPTC and comments (JPEG, PNG, WebP) before "
                        "encryption; by default they stay inside the sealed file, where the cloud cannot see them")
    s.add_argument("--keep-names", action="store_true",
                   help="exact scheme, photos: name each ciphertext <stem>.png instead of an opaque keyed id (the "
                        "cloud then sees your file names; decryption restores the sealed names either way)")
    byo(s, "exact scheme: svhn-cnn7; paper scheme: the model's own")
    s.add_argument("--retries", type=int, default=3, help="fresh-nonce retries for a ciphertext the classifier "
                                                          "mislabels (default 3)")
    s.add_argument("--batch-size", type=int, default=64)
    s.add_argument("--device", default="cpu")
    _force_option(s, "a ciphertext that verifies under the key")
    common(s)
    _ray_options(s)
    s.set_defaults(fn=cmd_encrypt)

    s = sub.add_parser("classify", help="label images with a plaintext classifier (the cloud; no key)")
    s.add_argument("inputs", nargs="+")
    byo(s, "the one named in the ciphertexts")
    s.add_argument("--convert", choices=("strict", "auto"), default="strict")
    s.add_argument("--stack", metavar="NAME", help="classify the way a serving stack does (torch, onnxruntime, "
                   "onnxruntime-fp16, onnxruntime-int8, fp16, bf16, opencv-linear, pil-bicubic, crop-1.15, ...: "
                   "see the security page); OpenCV and ONNX Runtime need pip install 'ric[stacks]'")
    common(s)
    _ray_options(s)
    s.set_defaults(fn=cmd_classify)

    s = sub.add_parser("decrypt", help="ciphertext PNGs -> recovered images (needs the key)")
    s.add_argument("inputs", nargs="+")
    s.add_argument("-o", "--output", required=True, type=Path)
    s.add_argument("-k", "--key", required=True, type=Path)
    s.add_argument("-m", "--model", help="RIC model (default: the one named in each ciphertext)")
    byo(s, "the model's own; must be the one used to encrypt")
    s.add_argument("--no-verify", action="store_true",
                   help="skip the authentication check (experiments only: a wrong key then yields noise)")
    s.add_argument("--any-name", action="store_true",
                   help="decrypt a ciphertext that was renamed since it was written (by default refused: a server "
                        "that swaps two files' names is caught this way)")
    s.add_argument("--batch-size", type=int, default=64)
    s.add_argument("--device", default="cpu")
    _force_option(s, "an image recovered under the key (ric:recovered-mac)")
    common(s)
    _ray_options(s)
    s.set_defaults(fn=cmd_decrypt)


def _other_verbs(sub, common) -> None:
    """models, datasets, demo, train, eval, security."""
    s = sub.add_parser("models", help="list shipped RIC models and classifiers")
    common(s, False)
    s.set_defaults(fn=cmd_models)

    s = sub.add_parser("datasets", help="list the datasets and where they were found")
    s.add_argument("--data-root")
    common(s, False)
    s.set_defaults(fn=cmd_datasets)

    s = sub.add_parser("demo", help="keygen -> encrypt -> classify -> decrypt on the shipped samples (offline)")
    s.add_argument("-o", "--output", type=Path, help="keep the files here (default: a temporary folder)")
    s.add_argument("-m", "--model", default=bundles.DEFAULT_MODEL)
    common(s, False)
    s.set_defaults(fn=cmd_demo)

    s = sub.add_parser("train", help="train a classifier or a RIC codec from a recipe (resumable)")
    s.add_argument("what", choices=("classifier", "codec"))
    s.add_argument("recipe", help="recipe name (see ric.training.recipes)")
    s.add_argument("-o", "--output", required=True, type=Path, help="bundle folder to write")
    s.add_argument("--run", required=True, type=Path, help="run folder: checkpoints, log, preview; reruns resume")
    s.add_argument("--epochs", type=int)
    s.add_argument("--time-budget", type=float, help="stop after this many seconds")
    s.add_argument("--set", action="append", default=[], metavar="FIELD=JSON", help="override a recipe field")
    s.add_argument("--init", help="codec: start from this RIC bundle's weights")
    s.add_argument("--classifier", help="codec: classifier bundle to use instead of the recipe's")
    s.add_argument("--device")
    s.add_argument("--data-root")
    s.set_defaults(fn=cmd_train)

    s = sub.add_parser("eval", help="measure a model on a dataset, or regenerate the paper's tables (--tables)")
    s.add_argument("-m", "--model", help="RIC model (default: the shipped model for --dataset)")
    s.add_argument("-d", "--dataset", help="dataset (see `ric datasets`); its test split is used")
    s.add_argument("--codec-from", help="use the codec of this RIC model instead (cross-dataset study)")
    s.add_argument("--limit", type=int, help="first N test images (default 1000, or all if fewer)")
    s.add_argument("--grid", type=Path, help="write a plaintext | ciphertext | recovered grid PNG here")
    s.add_argument("--tables", action="store_true", help="Tables 1-4, alpha sweep, grids, throughput")
    s.add_argument("--datasets", nargs="+", help="with --tables: only these datasets")
    s.add_argument("-o", "--output", type=Path, help="with --tables: the folder for the tables (required)")
    s.add_argument("--ablation-root", type=Path,
                   help="with --tables: folder of the small ablation codecs for Table 4 (default: no Table 4)")
    s.add_argument("--jobs", type=int, default=1,
                   help="with --tables: worker processes (one thread each; e.g. the number of cores)")
    s.add_argument("--data-root")
    common(s)
    s.set_defaults(fn=cmd_eval)

    s = sub.add_parser("security", help="attack the shipped models (brute force, known plaintext, curious cloud, "
                                        "blind) and write DOCS/security.md (--quick: DOCS/security_quick.md)")
    s.add_argument("--models", nargs="+",
                   help="paper-scheme models, or exact:CLASSIFIER for the exact scheme (exact:svhn-cnn7, "
                        "exact:faces-dlibface, exact:cifar10-resnet18); default: "
                        f"{bundles.DATASET_MODELS['svhn']} {bundles.DATASET_MODELS['faces']} exact:svhn-cnn7 "
                        "exact:faces-dlibface (full run: + svhn-ric faces-ric)")
    s.add_argument("--quick", action="store_true", help="small samples (minutes instead of an hour or more)")
    s.add_argument("--run", required=True, help="cache folder of the victim's ciphertexts and finished results "
                                                "(reused by reruns)")
    s.add_argument("-o", "--docs", required=True, help="folder DOCS for security.md, security/ and results/ "
                                                       "(benchmarks/security.py fills the repository's)")
    s.add_argument("--fresh", action="store_true", help="recompute models whose finished results are cached")
    s.add_argument("--data-root")
    common(s)
    s.set_defaults(fn=cmd_security)

    s = sub.add_parser("export", help="write a classifier's network as ONNX, its preprocessing as JSON beside it")
    s.add_argument("classifier", help="zoo name, bundle folder, TorchScript file, torchvision:NAME or module:factory")
    s.add_argument("--classifier-config", type=Path, help="JSON for the last three (as for encrypt)")
    s.add_argument("--onnx", required=True, type=Path, metavar="FILE",
                   help="the ONNX file (fixed input size, free batch axis); FILE with .json gets the preprocessing")
    s.add_argument("--force", action="store_true", help="replace existing files")
    common(s, False)
    s.set_defaults(fn=cmd_export)

    from ric.cli_cloud import add_cloud_verbs

    add_cloud_verbs(sub, common)  # serve (+ token), push, pull; classify --url


def cmd_export(args) -> int:
    from ric.classifiers import load_classifier
    from ric.stacks.export import export_onnx, need_onnx

    need_onnx()
    clf = load_classifier(args.classifier, config=args.classifier_config)
    model, side = export_onnx(clf, args.onnx, force=args.force)
    if args.json:
        print(json.dumps({"onnx": str(model), "preprocessing": str(side), "classifier": clf.ident}))
    else:
        print(f"wrote {model} ({clf.ident}, input {list(clf.input_shape)}) and {side}")
    return 0


def cmd_eval(args) -> int:
    from ric.eval import measure as ev
    from ric.keys import SecretKey

    log = (lambda m: None) if args.json or args.quiet else (lambda m: print(m, file=sys.stderr))
    if args.tables:
        if not args.output:
            raise InputError("ric eval --tables: give -o DIR (benchmarks/paper_tables.py fills the repository's)")
        out = args.output
        from ric.eval.paper_tables import paper_tables

        rep = paper_tables(out, args.limit, args.datasets, args.data_root, ablation_root=args.ablation_root,
                              command="ric " + " ".join(args.argv), log=log, jobs=args.jobs)
        if args.json:
            print(json.dumps(rep, indent=1))
        else:
            print(f"wrote {out}/paper_tables.md (+ .json, grids) in {rep['wall_seconds'] / 60:.1f} min")
        return 0
    if not args.dataset:
        raise InputError("ric eval: give --dataset (and --model), or --tables")
    model = args.model or ev.DATASET_MODELS.get(args.dataset, bundles.DEFAULT_MODEL)
    ric = ev.load_model(model, codec_from=args.codec_from)
    images, labels, split = ev.eval_split(args.dataset, args.limit, data_root=args.data_root)
    log(f"{model} on {split}")
    res = ev.evaluate(ric, images, labels, SecretKey.generate(), grid=args.grid, log=log)
    res.update(model=model, codec_from=args.codec_from, data=split, classifier=ric.classifier.ident,
               machine=ev.machine())
    if args.json:
        print(json.dumps(res, indent=1))
    else:
        for k, v in res.items():
            print(f"{k:32s} {v}")
    return 0


def cmd_security(args) -> int:
    from ric.security.report import run_security

    log = (lambda m: None) if args.json or args.quiet else (lambda m: print(m, file=sys.stderr, flush=True))
    rep = run_security(args.models, args.quick, args.run, args.docs, args.data_root,
                       command="ric " + " ".join(args.argv), log=log, fresh=args.fresh)
    if args.json:
        print(json.dumps(rep, indent=1))
    else:
        q = "_quick" if args.quick else ""
        print(f"wrote {args.docs}/security{q}.md, figures in {args.docs}/security/{'quick/' if q else ''}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run one ``ric`` command line (``argv`` without the program name; default ``sys.argv[1:]``)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args.argv = argv  # what reports record as their command
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


if __name__ == "__main__":
    sys.exit(main())
