"""Accuracy and CPU throughput of the zoo classifiers on their documented test splits.

    python benchmarks/classifiers.py [--update-bundles]

Writes docs/results/classifiers.json and .md. ``--update-bundles`` stores the measured test accuracy
in each shipped bundle's config (the accuracy printed by ``ric models``) and in its model card.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import sys
import time
from pathlib import Path

import torch

from ric.classifiers import load_classifier
from ric.datasets import load_dataset
from ric.training import evaluate_classifier
from ric.zoo import bundles

# Issue targets per dataset; faces-resnet18 (trained from scratch, below target) is kept as a baseline beside
# faces-dlibface, the faces classifier of faces-ric.
TARGETS = {"mnist-cnn5": 0.993, "svhn-cnn7": 0.88, "cifar10-resnet18": 0.75, "faces-dlibface": 0.70}


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = " ".join(["python benchmarks/classifiers.py", *argv])
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data-root")
    p.add_argument("--out", default="docs/results")
    p.add_argument("--update-bundles", action="store_true")
    a = p.parse_args(argv)
    rows = []
    for cfg in bundles.shipped():
        if cfg["kind"] != "classifier":
            continue
        name = cfg["name"]
        clf = load_classifier(name)
        test = load_dataset(cfg["recipe"]["dataset"], "test", a.data_root)
        x, y = test.tensors()
        acc = evaluate_classifier(clf, x, y)
        n = min(len(x), 1000)
        t0 = time.perf_counter()
        clf.predict(x[:n], batch_size=256)
        ips = n / (time.perf_counter() - t0)
        rows.append({"classifier": name, "arch": cfg["arch"], "test_data": f"{test.name} ({len(x)} images)",
                     "test_accuracy": acc, "target": TARGETS.get(name), "meets_target": acc >= TARGETS.get(name, 0),
                     "images_per_s_cpu": ips,
                     "params": sum(q.numel() for q in clf.parameters()), "weights_sha256": cfg["weights_sha256"]})
        if a.update_bundles:
            folder = Path(cfg["path"])
            c = bundles.read_config(folder)
            c["test_accuracy"], c["test_data"] = acc, f"{test.name} ({len(x)} images)"
            bundles.atomic_write_bytes(folder / "config.json", (json.dumps(c, indent=2) + "\n").encode())
            card = (folder / "MODEL_CARD.md").read_text()
            card = re.sub(r"\*\*Test accuracy: .*", f"**Test accuracy: {100 * acc:.2f} %** on `{test.name}` "
                          f"({len(x)} images; `python benchmarks/classifiers.py --update-bundles`).", card)
            bundles.atomic_write_bytes(folder / "MODEL_CARD.md", card.encode())
    machine = f"{platform.machine()} cpu, torch {torch.__version__}, {torch.get_num_threads()} threads"
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "classifiers.json").write_text(json.dumps({"machine": machine, "command": command,
                                                      "rows": rows}, indent=1) + "\n")
    lines = [f"# Zoo classifiers\n\nCommand: `{command}`; machine: {machine}.\n",
             "| classifier | architecture | test data | accuracy | target | images/s (CPU) | parameters |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        tgt = f"≥ {100 * r['target']:.1f} %" if r["target"] else "none set"
        lines.append(f"| {r['classifier']} | {r['arch']} | {r['test_data']} | {100 * r['test_accuracy']:.2f} % | "
                     f"{tgt} | {r['images_per_s_cpu']:.0f} | {r['params'] / 1e6:.2f} M |")
    (out / "classifiers.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
