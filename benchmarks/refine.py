"""Encoder-side refinement of the paper scheme's ciphertexts: recovery gain (dB) against its cost (ms/image).

    python benchmarks/refine.py --models svhn-ric-v3 --n 100                # both update rules, 100 SVHN test images
    python benchmarks/refine.py --models faces-ric-v3 --n 8 --out docs/results/refine-faces
    python benchmarks/refine.py --models svhn-ric-v2 --n 32 --settings 140:0.03:2:adam

For each model, the same test images, key, nonces and first-try NAEs: the ciphertexts straight from the codec, then
refined (``ric.codec.refine.Refinement``: offsets optimised through straight-through rounding by the normalized or
the Adam rule, best iterate per image that keeps the label with a lead of κ). Reports PSNR / SSIM / MS-SSIM of the recovery (decrypted through the
public ``RIC.decrypt`` path, one image at a time) and label agreement, both ways, and the refinement's ms per image.
Writes docs/results/refine.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from ric.eval.measure import eval_split, images_of, machine
from ric.eval.metrics import ms_ssim, psnr, ssim
from ric.keys import SecretKey, new_nonce
from ric.schemes.paper import RIC
from ric.zoo import bundles

DEFAULT_N = {"svhn": 100, "faces": 40}


def run_model(model: str, n: int | None, settings: list[dict], data_root) -> dict:
    ric = RIC.load(model)
    dataset = bundles.dataset_of(model)
    images, _, split = eval_split(dataset, n or DEFAULT_N.get(dataset, 64), data_root=data_root)
    x = images_of(ric, images)
    key = SecretKey.generate()
    t = ric.predict(x)
    nonces = [new_nonce() for _ in range(len(x))]
    shape = tuple(x.shape[1:])
    z = ric.nae(key, nonces, t, shape)
    perm = ric.perms(key, nonces, shape)
    c = ric.encode_with(x, z, perm)
    rows = [_measure(ric, x, c, z, perm, t, "codec only", 0.0)]
    for s in settings:
        from ric.codec.refine import Refinement

        ric.refinement = Refinement(**s)
        t0 = time.perf_counter()
        cr = ric.refine(x, c, z, t, perm)
        ms = 1000 * (time.perf_counter() - t0) / len(x)
        rows.append(_measure(ric, x, cr, z, perm, t, f"refined {s}", ms))
        print(f"{model}: {rows[-1]}", file=sys.stderr, flush=True)
    return {"model": model, "data": split, "images": len(x), "rows": rows,
            "codec_sha256": bundles.codec_sha256(ric.config)}


def _measure(ric: RIC, x, c, z, perm, t, name: str, ms: float) -> dict:
    xh = ric.decode_with(c, z, perm)  # what decryption computes (one image per decoder pass)
    grey = ric.plaintext_channels == 1
    a, b = (xh.mean(1, keepdim=True), x.mean(1, keepdim=True)) if grey else (xh, x)
    return {"setting": name, "psnr_db": float(psnr(a, b).mean()), "psnr_min_db": float(psnr(a, b).min()),
            "ssim": float(ssim(a, b).mean()), "ms_ssim": float(ms_ssim(a, b).mean()),
            "agreement": float((ric.predict(c) == t).float().mean()), "ms_per_image": ms}


def render(rep: dict) -> str:
    lines = ["# Encoder-side refinement (paper scheme)", "",
             f"Command: `{rep['command']}`  ", f"Machine: {rep['machine']}  ",
             "Same images, key, nonces and NAEs for every row of a model; recovery decoded one image at a time, as "
             "decryption does.", ""]
    for m in rep["models"]:
        lines += [f"## `{m['model']}` on {m['data']}", "",
                  "| ciphertext | PSNR (dB) | min PSNR | SSIM | MS-SSIM | label agreement | refinement ms/image |",
                  "|---|---|---|---|---|---|---|"]
        for r in m["rows"]:
            lines.append(f"| {r['setting']} | {r['psnr_db']:.2f} | {r['psnr_min_db']:.2f} | {r['ssim']:.4f} | "
                         f"{r['ms_ssim']:.4f} | {100 * r['agreement']:.2f} % | {r['ms_per_image']:.0f} |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = " ".join(["python benchmarks/refine.py", *argv])
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=["svhn-ric-v3", "faces-ric-v3"])
    p.add_argument("--n", type=int, help="test images per model (default: 100 SVHN, 40 faces)")
    p.add_argument("--settings", nargs="+", default=["30:0.6:2:normalized", "80:0.02:2:adam"],
                   help="steps:lr:max_offset[:method] of each refinement to measure (method: normalized, the "
                        "default, or adam)")
    p.add_argument("--data-root")
    p.add_argument("--out", default="docs/results")
    a = p.parse_args(argv)
    settings = []
    for s in a.settings:
        steps, lr, off, *method = s.split(":")
        settings.append({"steps": int(steps), "lr": float(lr), "max_offset": float(off),
                         **({"method": method[0]} if method else {})})  # none given: Refinement's default
    rep = {"command": command, "machine": machine(),
           "models": [run_model(m, a.n, settings, a.data_root) for m in a.models]}
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "refine.json").write_text(json.dumps(rep, indent=1) + "\n")
    (out / "refine.md").write_text(render(rep) + "\n")
    print(render(rep))


if __name__ == "__main__":
    main()
