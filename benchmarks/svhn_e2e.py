"""End-to-end check of the shipped SVHN model through the CLI (issue: the RIC system end to end).

SVHN test images (default 8000-8199 of shared/data/svhn, the test split) are written as PNGs, then
``ric keygen`` -> ``ric encrypt`` -> ``ric classify`` (ciphertexts, no key) -> ``ric decrypt``.
Reports label agreement C(c) = C(x), accuracy, recovery PSNR/SSIM, the identity-codec floor on the same
images (same key, nonces and NAEs), a wrong-key decryption, and stage timings on this machine.

    python benchmarks/svhn_e2e.py --n 200 [--update-model]

Writes docs/results/svhn_e2e.json and .md; ``--update-model`` also stores the numbers in the shipped
bundle's config (``metrics``) so that ``ric models`` shows them.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

from ric.api import classify_files, decrypt_files, encrypt_files, keygen
from ric.codec import make_codec
from ric.container import read_ciphertext
from ric.datasets import load_dataset
from ric.eval.baselines import lsb_hide, lsb_reveal
from ric.eval.metrics import psnr, ssim
from ric.imageio import read_image, write_png
from ric.keys import SecretKey
from ric.schemes.paper import RIC
from ric.zoo import bundles


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = " ".join(["python benchmarks/svhn_e2e.py", *argv])
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="svhn-ric")
    p.add_argument("--n", type=int, default=200)
    p.add_argument("--start", type=int, default=0, help="offset inside the test split (0 = image 8000)")
    p.add_argument("--data-root")
    p.add_argument("--out", default="docs/results")
    p.add_argument("--update-model", action="store_true")
    a = p.parse_args(argv)
    a.command = command
    folder = bundles.resolve(a.model, "ric")
    res = measure(a, bundles.read_config(folder))
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "svhn_e2e.json").write_text(json.dumps(res, indent=1) + "\n")
    md = render(res)
    (out / "svhn_e2e.md").write_text(md)
    print(md)
    if a.update_model:
        update_model(folder, res, a)


def measure(a, cfg: dict) -> dict:
    """Encrypt, classify and decrypt through the CLI's API on temporary files, then the baselines on the same NAEs."""
    ds = load_dataset("svhn", "test", a.data_root)
    imgs, labels = ds.images[a.start:a.start + a.n], ds.labels[a.start:a.start + a.n]
    with tempfile.TemporaryDirectory() as tmp:
        w = Path(tmp)
        for i, im in enumerate(imgs):
            write_png(w / "plain" / f"{8000 + a.start + i:05d}.png", im)
        key = keygen(w / "k.key")
        t0 = time.perf_counter()
        enc = encrypt_files([w / "plain"], w / "ct", key, model=a.model)
        t_enc = time.perf_counter() - t0
        ok = [r for r in enc if r["status"] == "encrypted"]
        t0 = time.perf_counter()
        cloud = classify_files([w / "ct"])
        t_cls = time.perf_counter() - t0
        plain = classify_files([w / "plain"], classifier=cfg["classifier"])
        t0 = time.perf_counter()
        dec = decrypt_files([w / "ct"], w / "rec", key)
        t_dec = time.perf_counter() - t0

        def load(paths):
            return torch.stack([torch.from_numpy(read_image(q)).permute(2, 0, 1) for q in paths]).float() / 255

        x = load([r["input"] for r in ok])
        xh = load([r["output"] for r in dec])
        c = load([r["output"] for r in ok])
        cts = [read_ciphertext(r["output"]) for r in ok]
        ric = RIC.load(a.model)
        shape = tuple(x.shape[1:])
        z = ric.nae(key, [ct.nonce for ct in cts], torch.tensor([ct.target for ct in cts]), shape)
        ident = RIC(make_codec({"name": "identity"}), ric.classifier, alpha=ric.alpha, attack=cfg["attack"])
        x_id = ident._decode(ident._encode(x, z), z)
        c_id = ident._encode(x, z)
        id_agree = (ident.predict(c_id) == ric.predict(x)).float().mean().item()
        wrong = ric.decrypt(cts, SecretKey.generate(), verify=False)
        c_lsb = lsb_hide(x, z)
        lsb_agree = (ric.predict(c_lsb) == ric.predict(x)).float().mean().item()
        x_lsb = lsb_reveal(c_lsb)
    return _summary(a, cfg, enc, ok, plain, cloud, labels, (x, xh, c, x_id, x_lsb, wrong), (id_agree, lsb_agree),
                    (t_enc, t_cls, t_dec))


def _summary(a, cfg, enc, ok, plain, cloud, labels, images, agreements, seconds) -> dict:
    x, xh, c, x_id, x_lsb, wrong = images
    id_agree, lsb_agree = agreements
    t_enc, t_cls, t_dec = seconds

    pl = {Path(r["input"]).name: r["label"] for r in plain}
    agree = [pl[Path(r["input"]).name] == cl["label"] for r, cl in zip(ok, cloud, strict=True)]
    truth = torch.tensor(labels)
    ps, ss = psnr(xh, x), ssim(xh, x)
    res = {
        "model": a.model, "weights_sha256": cfg["weights_sha256"], "classifier": cfg["classifier"],
        "data": f"svhn test split, images {8000 + a.start}-{8000 + a.start + a.n - 1} (shared/data/svhn)",
        "images": a.n, "encrypted": len(ok), "failed": a.n - len(ok),
        "attempts_histogram": {str(k): sum(r.get("attempts") == k for r in enc) for k in range(1, 5)},
        "label_agreement": sum(agree) / len(agree),
        "plaintext_accuracy": float((torch.tensor([r["label"] for r in plain]) == truth).float().mean()),
        "ciphertext_accuracy": float(sum(cl["label"] == int(truth[i]) for i, cl in enumerate(cloud)) / a.n),
        "psnr_db": ps.mean().item(), "psnr_min_db": ps.min().item(), "ssim": ss.mean().item(), "identity_floor_ssim": ssim(x_id, x).mean().item(),
        "identity_floor_psnr_db": psnr(x_id, x).mean().item(), "identity_floor_agreement": id_agree,
        "lsb4_psnr_db": psnr(x_lsb, x).mean().item(), "lsb4_ssim": ssim(x_lsb, x).mean().item(),
        "lsb4_agreement": lsb_agree,
        "wrong_key_psnr_db": psnr(wrong, x).mean().item(),
        "ciphertext_vs_plaintext_psnr_db": psnr(c, x).mean().item(),
        "seconds": {"encrypt": t_enc, "classify": t_cls, "decrypt": t_dec},
        "images_per_s": {"encrypt": a.n / t_enc, "classify": a.n / t_cls, "decrypt": a.n / t_dec},
        "machine": f"{platform.machine()} {platform.processor() or ''} cpu, torch {torch.__version__}, "
                   f"{torch.get_num_threads()} threads",
        "command": a.command, "identity_floor_agreement_pct": 100 * id_agree,
        "lsb4_agreement_pct": 100 * lsb_agree,
    }
    return res


def render(res: dict) -> str:
    ips = res["images_per_s"]
    return f"""# SVHN end to end (`{res['model']}`)

Command: `{res['command']}`; data: {res['data']}; weights sha256 `{res['weights_sha256'][:16]}…`;
machine: {res['machine']}.

| metric | value |
|---|---|
| encrypted / images | {res['encrypted']} / {res['images']} (attempts: {res['attempts_histogram']}) |
| label agreement C(c) = C(x) | {100 * res['label_agreement']:.2f} % |
| accuracy plaintext / ciphertext | {100 * res['plaintext_accuracy']:.2f} % / {100 * res['ciphertext_accuracy']:.2f} % |
| recovery PSNR (mean, min) | {res['psnr_db']:.2f} dB, {res['psnr_min_db']:.2f} dB |
| recovery SSIM | {res['ssim']:.4f} |
| identity-codec floor, same images and NAEs | {res['identity_floor_psnr_db']:.2f} dB, SSIM {res['identity_floor_ssim']:.4f} \
(agreement {res['identity_floor_agreement_pct']:.2f} %) |
| LSB 4-bit in the same NAEs (baseline) | {res['lsb4_psnr_db']:.2f} dB, SSIM {res['lsb4_ssim']:.4f} (agreement {res['lsb4_agreement_pct']:.2f} %) |
| wrong key (tag check off) | {res['wrong_key_psnr_db']:.2f} dB |
| ciphertext vs plaintext | {res['ciphertext_vs_plaintext_psnr_db']:.2f} dB |
| encrypt / classify / decrypt | {ips['encrypt']:.1f} / {ips['classify']:.1f} / {ips['decrypt']:.1f} images/s |
"""


def update_model(folder: Path, res: dict, a) -> None:
    """Write the measured numbers into the model's config and the measured block of its card."""
    cfg = bundles.read_config(folder)
    cfg["metrics"] = {k: res[k] for k in ("label_agreement", "psnr_db", "ssim", "identity_floor_psnr_db",
                                          "wrong_key_psnr_db", "plaintext_accuracy", "ciphertext_accuracy")}
    cfg["metrics"].update(data=f"svhn test {8000 + a.start}-{8000 + a.start + a.n - 1}",
                          command=res["command"])
    bundles.atomic_write_bytes(folder / "config.json", (json.dumps(cfg, indent=2) + "\n").encode())
    card = (folder / "MODEL_CARD.md").read_text()
    head, _, rest = card.partition("<!-- measured:start")
    _, _, tail = rest.partition("<!-- measured:end -->")
    body = (f"<!-- measured:start (written by benchmarks/svhn_e2e.py --update-model) -->\n"
            f"`{res['command']}` on {res['machine']}, {res['data']}, through the CLI "
            f"(`docs/results/svhn_e2e.md`): {100 * res['label_agreement']:.2f} % label agreement "
            f"({res['encrypted']}/{res['images']} encrypted), recovery **PSNR {res['psnr_db']:.2f} dB**, "
            f"SSIM {res['ssim']:.4f}; identity-codec floor on the same images and NAEs "
            f"{res['identity_floor_psnr_db']:.2f} dB; LSB 4-bit baseline {res['lsb4_psnr_db']:.2f} dB; "
            f"wrong key {res['wrong_key_psnr_db']:.2f} dB.\n")
    bundles.atomic_write_bytes(folder / "MODEL_CARD.md", (head + body + "<!-- measured:end -->" + tail).encode())


if __name__ == "__main__":
    main()
