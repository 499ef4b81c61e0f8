"""``ric demo``: keygen -> encrypt -> classify -> decrypt on the shipped samples, offline, with every scheme."""

from __future__ import annotations

import json
from pathlib import Path

from ric.cli.common import add_output
from ric.zoo import bundles

HELP = "keygen -> encrypt -> classify -> decrypt on the shipped samples (offline)"


def add_arguments(sp) -> None:
    sp.add_argument("-o", "--output", type=Path, help="keep the files here (default: a temporary folder)")
    sp.add_argument("-m", "--model", default=bundles.DEFAULT_MODEL)
    add_output(sp, False)


def run(args) -> int:
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
        if "wrong_key_refused" in r:
            print(f"  a random wrong key is refused: {100 * r['wrong_key_refused']:.2f}% of files")
    if s["workdir"]:
        print(f"files in {s['workdir']}/<scheme>/")
    return 0 if s["failed"] == 0 else 1
