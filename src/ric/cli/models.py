"""``ric models``: the shipped RIC models and classifiers."""

from __future__ import annotations

import json

from ric.cli.common import add_output

HELP = "list shipped RIC models and classifiers"


def add_arguments(sp) -> None:
    add_output(sp, False)


def run(args) -> int:
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
