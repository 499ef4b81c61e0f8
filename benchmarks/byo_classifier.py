"""A classifier the codec was not trained with drives encryption: label agreement and recovery.

The zoo's CIFAR-10 ResNet-18 is exported to TorchScript (a different architecture from svhn-cnn7, which
svhn-ric was trained with) and used through the bring-your-own path (``--classifier model.pt``) to
encrypt CIFAR-10 test images with the svhn-ric codec, then to classify and decrypt them.

    python benchmarks/byo_classifier.py --n 500

Writes docs/results/byo_classifier.json and .md.
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

from ric.api import classify_files, decrypt_files, encrypt_files
from ric.classifiers import load_classifier
from ric.datasets import load_dataset
from ric.eval.metrics import psnr, ssim
from ric.imageio import read_image, write_png
from ric.keys import SecretKey


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = " ".join(["python benchmarks/byo_classifier.py", *argv])
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=500)
    p.add_argument("--model", default="svhn-ric")
    p.add_argument("--data-root")
    p.add_argument("--out", default="docs/results")
    a = p.parse_args(argv)
    ds = load_dataset("cifar10", "test", a.data_root)
    base = load_classifier("cifar10-resnet18")
    with tempfile.TemporaryDirectory() as tmp:
        w = Path(tmp)
        ts = w / "resnet18.pt"
        torch.jit.trace(base.net, torch.rand(1, 3, 32, 32)).save(str(ts))
        Path(str(ts) + ".json").write_text(json.dumps({
            "name": "cifar10-resnet18-torchscript", "input_shape": list(base.input_shape),
            "mean": base.mean.flatten().tolist(), "std": base.std.flatten().tolist(), "class_names": base.class_names}))
        for i in range(a.n):
            write_png(w / "plain" / f"cifar_{i:05d}.png", ds.images[i])
        key = SecretKey.generate()
        t0 = time.perf_counter()
        enc = encrypt_files([w / "plain"], w / "ct", key, model=a.model, classifier=str(ts))
        t_enc = time.perf_counter() - t0
        ok = [r for r in enc if r["status"] == "encrypted"]
        plain = {Path(r["input"]).name: r["label"] for r in classify_files([w / "plain"], classifier=str(ts))}
        cloud = classify_files([r["output"] for r in ok], classifier=str(ts))
        dec = decrypt_files([r["output"] for r in ok], w / "rec", key, classifier=str(ts))

        def load(paths):
            return torch.stack([torch.from_numpy(read_image(q)).permute(2, 0, 1) for q in paths]).float() / 255

        x, xh = load([r["input"] for r in ok]), load([r["output"] for r in dec])
    agree = sum(plain[Path(r["input"]).name] == c["label"] for r, c in zip(ok, cloud, strict=True))
    truth = ds.labels[:a.n]
    res = {"classifier": "cifar10-resnet18 exported to TorchScript (not the classifier svhn-ric was trained with)",
           "model": a.model, "data": f"cifar10 test images 0-{a.n - 1} (shared/data/cifar10)", "images": a.n,
           "encrypted": len(ok), "failed": a.n - len(ok),
           "attempts_histogram": {str(k): sum(r.get("attempts") == k for r in enc) for k in range(1, 5)},
           "label_agreement_of_all_images": agree / a.n, "label_agreement_of_written": agree / max(1, len(ok)),
           "plaintext_accuracy": float(sum(plain[f"cifar_{i:05d}.png"] == truth[i] for i in range(a.n)) / a.n),
           "psnr_db": psnr(xh, x).mean().item(), "ssim": ssim(xh, x).mean().item(),
           "encrypt_images_per_s": a.n / t_enc,
           "machine": f"{platform.machine()} cpu, torch {torch.__version__}, {torch.get_num_threads()} threads",
           "command": command}
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "byo_classifier.json").write_text(json.dumps(res, indent=1) + "\n")
    md = f"""# Bring-your-own classifier

Command: `{res['command']}`; {res['machine']}.
Classifier: {res['classifier']}; codec: `{a.model}`; data: {res['data']}.

| metric | value |
|---|---|
| ciphertexts written / images | {len(ok)} / {a.n} (attempts {res['attempts_histogram']}; the rest are reported, not written) |
| label agreement C(c) = C(x), all images | {100 * res['label_agreement_of_all_images']:.2f} % |
| label agreement, written ciphertexts | {100 * res['label_agreement_of_written']:.2f} % |
| classifier accuracy on plaintexts | {100 * res['plaintext_accuracy']:.2f} % |
| recovery PSNR / SSIM (cross-dataset: codec trained on SVHN) | {res['psnr_db']:.2f} dB / {res['ssim']:.4f} |
| encryption speed | {res['encrypt_images_per_s']:.2f} images/s |
"""
    (out / "byo_classifier.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
