"""Which lossless codec carries the exact scheme's plaintext? Size (bits per sub-pixel) and speed.

    python benchmarks/lossless.py --n 200

For each dataset's test split (first ``--n`` images; all faces / Tiny-ImageNet if fewer) every codec of
``ric.schemes.lossless`` encodes each image; reported: mean / p99 / max bits per sub-pixel, the share of
images that fit the exact scheme's room at b = 4..7 bits per sub-pixel (the smallest of the default
candidates, as encryption uses), and encode / decode ms per image on this CPU. Every encoding is decoded and
compared bit for bit. Writes docs/results/lossless.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from ric.datasets import load_dataset
from ric.eval.measure import machine
from ric.schemes import exact, lossless

SETS = ("svhn", "cifar10", "mnist", "faces", "tinyimagenet")


def measure(images: np.ndarray) -> dict:
    rows, best = {}, np.full(len(images), np.inf)
    for codec in lossless.CODECS.values():
        if not codec.available():
            continue
        bits, enc, dec = [], 0.0, 0.0
        for i, a in enumerate(images):
            t0 = time.perf_counter()
            data = codec.encode(a)
            t1 = time.perf_counter()
            if not np.array_equal(codec.decode(data, a.shape[2]), a):
                raise SystemExit(f"{codec.name} is not lossless on image {i}")
            dec += time.perf_counter() - t1
            enc += t1 - t0
            bits.append(8 * len(data) / a.size)
            if codec.name in lossless.DEFAULT_CANDIDATES:
                best[i] = min(best[i], len(data))
        b = np.array(bits)
        rows[codec.name] = {"mean": float(b.mean()), "p99": float(np.percentile(b, 99)), "max": float(b.max()),
                            "encode_ms": 1000 * enc / len(images), "decode_ms": 1000 * dec / len(images)}
    shape = images.shape[1:]
    fits = {str(k): float(np.mean(best <= exact.room_bytes(shape, k))) for k in (4, 5, 6, 7)}
    return {"codecs": rows, "fits": fits, "best_mean_bits": float(np.mean(8 * best / np.prod(shape)))}


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = " ".join(["python benchmarks/lossless.py", *argv])
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=200)
    p.add_argument("--datasets", nargs="+", default=list(SETS))
    p.add_argument("--data-root")
    p.add_argument("--out", default="docs/results")
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    rep = {"command": command, "machine": machine(), "sets": {}}
    for name in a.datasets:
        ds = load_dataset(name, "test", a.data_root)
        imgs = ds.images[:a.n]
        rep["sets"][name] = {"images": len(imgs), "shape": list(imgs.shape[1:]), **measure(imgs)}
        print(name, json.dumps(rep["sets"][name]["fits"]), flush=True)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "lossless.json").write_text(json.dumps(rep, indent=1) + "\n")
    lines = ["# Lossless codecs for the exact scheme's payload", "", f"Command: `{rep['command']}`  ",
             f"Machine: {rep['machine']} (1 thread)  ",
             "Data: first N test images of each set (`ric datasets`); every encoding decoded and compared bit for bit.",
             "", "| set | N | codec | bits / sub-pixel mean | p99 | max | encode ms | decode ms |",
             "|---|---|---|---|---|---|---|---|"]
    for name, r in rep["sets"].items():
        for c, v in r["codecs"].items():
            lines.append(f"| {name} | {r['images']} | {c} | {v['mean']:.2f} | {v['p99']:.2f} | {v['max']:.2f} | "
                         f"{v['encode_ms']:.2f} | {v['decode_ms']:.2f} |")
    lines += ["", "Share of images that fit the exact scheme at b low bits per sub-pixel (smallest of "
              f"{', '.join(lossless.DEFAULT_CANDIDATES)}, after the {exact.OVERHEAD_BYTES}-byte header, tag and prefix):",
              "", "| set | shape | best mean bits | b = 4 | b = 5 | b = 6 | b = 7 |", "|---|---|---|---|---|---|---|"]
    for name, r in rep["sets"].items():
        f = r["fits"]
        lines.append(f"| {name} | {'×'.join(map(str, r['shape']))} | {r['best_mean_bits']:.2f} | "
                     + " | ".join(f"{100 * f[k]:.1f} %" for k in ("4", "5", "6", "7")) + " |")
    (out / "lossless.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
