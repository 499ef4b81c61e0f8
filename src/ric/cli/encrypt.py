"""``ric encrypt``: images -> ciphertext PNGs (the data owner; needs the key)."""

from __future__ import annotations

import sys
from pathlib import Path

from ric.cli.common import add_classifier, add_force, add_output, add_ray, emit, run_batch
from ric.schemes import DEFAULT_SCHEME, SCHEMES
from ric.schemes.filecodec import parse_transcode
from ric.zoo import bundles

HELP = "images -> ciphertext PNGs (data owner; needs the key)"


def add_arguments(s) -> None:
    s.add_argument("inputs", nargs="+", help="image files or directories")
    s.add_argument("-o", "--output", required=True, type=Path, help="output directory")
    s.add_argument("-k", "--key", required=True, type=Path)
    s.add_argument("--scheme", choices=sorted(SCHEMES),
                   help=f"{DEFAULT_SCHEME} (default): bit-exact recovery, the ciphertext reveals the label and size "
                        "only; paper: the paper's NAE + learned codec (approximate recovery; -m implies it)")
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
    s.add_argument("--transcode", metavar="CODECS",
                   help="exact scheme, photos: byte-reversible codecs tried on each file, comma-separated, or none "
                        "(default: zlib, for uncompressed TIFF/BMP/PPM; zlib,jpegxl-jpeg adds JPEG XL's lossless "
                        "JPEG recompression: ciphertexts about 20 %% smaller, encryption and decryption slower)")
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
    add_classifier(s, f"exact scheme: {bundles.DEFAULT_CLASSIFIER}; paper scheme: the model's own")
    s.add_argument("--retries", type=int, default=3, help="fresh-nonce retries for a ciphertext the classifier "
                                                          "mislabels (default 3)")
    s.add_argument("--batch-size", type=int, default=64)
    s.add_argument("--device", default="cpu")
    add_force(s, "a ciphertext that verifies under the key")
    add_output(s)
    add_ray(s)


def run(args) -> int:
    rows = run_batch(args, "encrypt", args.output, model=args.model, convert=args.convert, device=args.device,
                     max_retries=args.retries, batch_size=args.batch_size, classifier=args.classifier,
                     classifier_config=args.classifier_config, scheme=args.scheme, bits=args.bits,
                     transcode=None if args.transcode is None else parse_transcode(args.transcode),
                     resize=args.resize, refine=not args.no_refine, strip_metadata=args.strip_metadata,
                     keep_names=args.keep_names, force=args.force, **_robust(args))
    failed = [r for r in rows if r["status"] == "failed"]
    unchecked = sorted({s for r in rows for s in r.get("unchecked_stacks", ())})
    if unchecked:
        print(f"note: ciphertexts were not checked on serving stack(s) {', '.join(unchecked)} (library not installed: "
              "pip install 'ric[stacks]'; or the classifier cannot run there, e.g. no ONNX export)", file=sys.stderr)
    summary = {k: sum(r["status"] == k for r in rows) for k in ("encrypted", "skipped", "failed")}
    lines = [f"FAILED {r['input']}: {r['error']}" for r in failed]
    lines.append(f"encrypted {summary['encrypted']}, skipped {summary['skipped']} (already done), "
                 f"failed {summary['failed']} -> {args.output}")
    emit(args, rows, summary, lines)
    return max((r.get("code", 1) for r in failed), default=0)  # 2: a bad photo, 1: a label not reached


def _robust(args) -> dict:
    """``robust_set`` for the encrypt job when ``--robust-set`` was given (``none``: no set); an unknown name is
    refused before anything is loaded."""
    if args.robust_set is None:
        return {}
    if args.robust_set == "none":
        return {"robust_set": None}
    from ric.stacks import check_robust_set

    return {"robust_set": check_robust_set(args.robust_set)}
