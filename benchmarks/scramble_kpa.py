"""Does scrambling stop the known-plaintext leak? svhn-ric vs svhn-ric-scrambled under the same attack.

    python benchmarks/scramble_kpa.py [--pairs 8000] [--eval 200]

Both models use the same codec, classifier, victim key (runs/security/svhn-ric-victim.key, shared with
``ric security``), the same test images (SVHN test split, first --eval images) and the same train images as
the adversary's (ciphertext, plaintext) pairs (train split, first N). The known-plaintext network of
``ric.security`` (``KPANet``; ``--plain``: the earlier bare U-Net on raw ciphertexts, which produced the numbers
in docs/results/scramble_kpa.md) is trained with the security report's budget rule (40 epochs for N <= 1000,
else 40,000/N epochs, width 32). The keyless estimator's brightness correlation is printed beside it. Ciphertexts
are cached in runs/security/<model>-{eval,train}.npz (the plain model's are those of ``ric security``).
Writes docs/results/scramble_kpa.{json,md} and docs/security/scramble_kpa.png.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from torchvision.utils import save_image

from ric.datasets import load_dataset
from ric.eval.measure import machine
from ric.imageio import to_pixels
from ric.keys import SecretKey
from ric.schemes.paper import RIC
from ric.security import (
    as_tensor,
    known_plaintext_attack,
    leak_correlations,
    mean_colour_baseline,
    plaintext_stats,
    score,
    stat_correlations,
)
from ric.security.report import encrypt_cached
from ric.security.runs import kpa_epochs

MODELS = ("svhn-ric", "svhn-ric-scrambled")


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = " ".join(["python benchmarks/scramble_kpa.py", *argv])
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pairs", type=int, nargs="+", default=[8000], help="adversary's pair counts N")
    p.add_argument("--eval", type=int, default=200, help="attacked test ciphertexts")
    p.add_argument("--run", default="runs/security")
    p.add_argument("--data-root")
    p.add_argument("--out", default="docs/results")
    p.add_argument("--figs", default="docs/security")
    p.add_argument("--plain", action="store_true", help="the earlier bare U-Net (raw ciphertexts, no statistics)")
    a = p.parse_args(argv)
    run = Path(a.run)
    run.mkdir(parents=True, exist_ok=True)
    kf = run / "svhn-ric-victim.key"
    key = SecretKey.load(kf) if kf.is_file() else SecretKey.generate()
    if not kf.is_file():
        key.save(kf)
    test, train = load_dataset("svhn", "test", a.data_root), load_dataset("svhn", "train", a.data_root)
    x_eval, y_eval = test.tensors(0, a.eval)
    x_kpa, _ = train.tensors(0, max(a.pairs))
    log = print
    rep = {"command": command, "machine": machine(), "key_id": key.key_id,
           "data": f"SVHN test split first {len(x_eval)} (attacked), train split first {len(x_kpa)} (pairs)",
           "attack": "plain U-Net" if a.plain else "KPANet",
           "mean_colour_reference": score(mean_colour_baseline(x_eval), x_eval), "models": {}}
    truth = plaintext_stats(to_pixels(x_eval))
    grid = [x_eval[:8]]
    for m in MODELS:
        ric = RIC.load(m)
        t0 = time.time()
        cts_eval = encrypt_cached(ric, key, x_eval, run / f"{m}-eval.npz", log)
        cts_kpa = encrypt_cached(ric, key, x_kpa, run / f"{m}-train.npz", log)
        c_eval, c_kpa = as_tensor(cts_eval), as_tensor(cts_kpa)
        right = ric.decrypt(cts_eval, key)
        r = {"scramble": ric.scramble, "encrypt_seconds": time.time() - t0,
             "right_key": score(right, x_eval),
             "label_agreement": float((ric.predict(c_eval) == ric.predict(x_eval)).float().mean()), "kpa": {},
             "keyless_brightness_r": leak_correlations(to_pixels(c_eval), to_pixels(x_eval), ric.alpha)["analytic"]["mean"]}
        grid.append(c_eval[:8])
        for n in a.pairs:
            ep = kpa_epochs(n, 40)
            t0 = time.time()
            rec = known_plaintext_attack(c_kpa[:n], x_kpa[:n], c_eval, epochs=ep, width=32, plain=a.plain,
                                         alpha=ric.alpha)
            r["kpa"][str(n)] = {**score(rec, x_eval), "epochs": ep, "seconds": time.time() - t0,
                                "brightness_r": stat_correlations(plaintext_stats(to_pixels(rec)), truth)["mean"],
                                "classifier_accuracy_on_reconstructions":
                                    float((ric.predict(rec) == y_eval).float().mean())}
            log(f"{m} N={n}: SSIM {r['kpa'][str(n)]['ssim']:.3f}, PSNR {r['kpa'][str(n)]['psnr_db']:.2f} dB, "
                f"brightness r {r['kpa'][str(n)]['brightness_r']:.3f} (keyless estimator "
                f"{r['keyless_brightness_r']:.3f})")
            grid.append(rec[:8])
        rep["models"][m] = r
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "scramble_kpa.json").write_text(json.dumps(rep, indent=1) + "\n")
    Path(a.figs).mkdir(parents=True, exist_ok=True)
    save_image(torch.cat(grid).clamp(0, 1), str(Path(a.figs) / "scramble_kpa.png"), nrow=8)
    ref = rep["mean_colour_reference"]
    lines = ["# Known-plaintext attack: plain vs scrambled encoder output", "",
             f"Command: `{rep['command']}`  ", f"Machine: {rep['machine']}  ", f"Data: {rep['data']}; victim key "
             f"`{rep['key_id']}` (both models).", "",
             "| model | scrambled | right-key PSNR | label agreement | N pairs | U-Net epochs | KPA PSNR (dB) | "
             "KPA SSIM | classifier acc. on KPA output |", "|---|---|---|---|---|---|---|---|---|"]
    for m, r in rep["models"].items():
        for n, k in r["kpa"].items():
            lines.append(f"| `{m}` | {r['scramble']} | {r['right_key']['psnr_db']:.2f} dB | "
                         f"{100 * r['label_agreement']:.2f} % | {n} | {k['epochs']} | {k['psnr_db']:.2f} | "
                         f"{k['ssim']:.3f} | {100 * k['classifier_accuracy_on_reconstructions']:.1f} % |")
    lines += ["", "Keyless estimator (ciphertext only), brightness r: " + ", ".join(
        f"`{m}` {r['keyless_brightness_r']:.3f}" for m, r in rep["models"].items()) + "; KPA brightness r: " + ", ".join(
        f"`{m}` N = {n} {k['brightness_r']:.3f}" for m, r in rep["models"].items() for n, k in r["kpa"].items()) + "."]
    lines += ["", f"Mean-colour oracle (given the plaintext's true mean colour): PSNR {ref['psnr_db']:.2f} dB, "
              f"SSIM {ref['ssim']:.3f}. Grid `docs/security/scramble_kpa.png`: plaintexts, then per model its "
              "ciphertexts and the U-Net's reconstructions for each N.", ""]
    (out / "scramble_kpa.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
