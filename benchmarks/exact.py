"""The exact scheme on every dataset, against the paper scheme on the same images, in the same run.

    python benchmarks/exact.py                      # 1,000 test images of SVHN, CIFAR-10, MNIST; all faces and
                                                    # Tiny-ImageNet; paper scheme on the first 100 of each
    python benchmarks/exact.py --n 100 --paper-n 20 # quick
    python benchmarks/exact.py --bits-sweep --n 200 # first-try agreement and fit share for b = 4..7

Per set (the zoo classifier of the set, the bits its config declares): label agreement C(c) = C(x) on the first
try and after retries, the share of images that fit the capacity, the share of those recovered bit-exactly
(sha256 of the pixels), attack steps (median, p99), and encrypt / decrypt images per second (decrypt includes
the container's tag check). The paper scheme (the set's shipped RIC model) encrypts and decrypts the first
``--paper-n`` of the same images; the speed ratios compare both schemes on exactly those images. One random key;
this CPU, 2 threads. Writes docs/results/exact.{json,md} (``--bits-sweep``: exact_bits.{json,md}).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from ric.classifiers import load_classifier
from ric.eval.measure import DATASET_CLASSIFIERS, DATASET_MODELS, eval_split, evaluate_exact, images_of, machine
from ric.keys import SecretKey
from ric.schemes.exact import ExactScheme
from ric.schemes.paper import RIC

CLASSIFIERS = DATASET_CLASSIFIERS
DEFAULT_N = {"svhn": 1000, "cifar10": 1000, "mnist": 1000, "faces": 200, "tinyimagenet": 400}


def run_paper(model: str, images: np.ndarray, key: SecretKey) -> dict:
    ric = RIC.load(model)
    x = images_of(ric, images)
    t0 = time.perf_counter()
    res = ric.encrypt(x, key)
    enc_s = time.perf_counter() - t0
    cts = [r.ciphertext for r in res if r.ciphertext is not None]
    t0 = time.perf_counter()
    ric.decrypt(cts, key)
    dec_s = time.perf_counter() - t0
    return {"model": model, "images": len(x), "agreement": len(cts) / len(x),
            "encrypt_img_s": len(x) / enc_s, "decrypt_img_s": len(cts) / dec_s}


def one_set(name: str, n: int, paper_n: int, key: SecretKey, data_root=None) -> dict:
    images, _, split = eval_split(name, n, data_root=data_root)
    sch = ExactScheme(load_classifier(CLASSIFIERS[name]))
    row = {"data": split, "classifier": sch.classifier.ident, "scheme": repr(sch), "bits": sch.bits,
           "exact": evaluate_exact(sch, images, key)}
    if paper_n:
        row["exact_same"] = evaluate_exact(sch, images[:paper_n], key)
        row["paper"] = run_paper(DATASET_MODELS[name], images[:paper_n], key)
        row["encrypt_speedup"] = row["exact_same"]["encrypt_img_s"] / row["paper"]["encrypt_img_s"]
        row["decrypt_speedup"] = row["exact_same"]["decrypt_img_s"] / row["paper"]["decrypt_img_s"]
    return row


def _md(rep: dict) -> str:
    cmds = sorted({r.get("command", rep["command"]) for r in rep["sets"].values()})
    lines = ["# Exact scheme vs paper scheme", "", "Commands: " + "; ".join(f"`{c}`" for c in cmds) + "  ",
             f"Machine: {rep['machine']}  ",
             "One random key per run; exact-scheme ciphertexts decrypted and compared array by array (bit-exact).", "",
             "| set | images | classifier | b | fit | first try | after retries | bit-exact | steps median / p99 "
             "| exact enc img/s | exact dec img/s |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in rep["sets"].items():
        e = r["exact"]
        lines.append(f"| {name} | {e['images']} | `{r['classifier']}` | {r['bits']} | {100 * e['fit']:.2f} % | "
                     f"{100 * e['first_try']:.2f} % | {100 * e['agreement']:.2f} % | {100 * e['bit_exact']:.2f} % | "
                     f"{e['steps_median']:.0f} / {e['steps_p99']:.0f} | {e['encrypt_img_s']:.1f} | "
                     f"{e['decrypt_img_s']:.0f} |")
    if any("paper" in r for r in rep["sets"].values()):
        lines += ["", "Speed on the same images (the first N of each set), both schemes in this run:", "",
                  "| set | N | paper model | paper enc img/s | exact enc img/s | encrypt × | paper dec img/s | "
                  "exact dec img/s | decrypt × | paper agreement |", "|---|---|---|---|---|---|---|---|---|---|"]
        for name, r in rep["sets"].items():
            if "paper" not in r:
                continue
            p, e = r["paper"], r["exact_same"]
            lines.append(f"| {name} | {p['images']} | `{p['model']}` | {p['encrypt_img_s']:.2f} | "
                         f"{e['encrypt_img_s']:.1f} | {r['encrypt_speedup']:.1f} | {p['decrypt_img_s']:.1f} | "
                         f"{e['decrypt_img_s']:.0f} | {r['decrypt_speedup']:.0f} | {100 * p['agreement']:.2f} % |")
    if rep.get("photos"):
        lines += _photos_md(rep["photos"], rep.get("photos_command"))
    return "\n".join(lines) + "\n"


PHOTO_SIZES = ((250, 250), (451, 300), (512, 512), (480, 640))  # (H, W)


def photo_sets(n: int, data_root=None) -> dict:
    """Photo-like inputs of several sizes and aspect ratios: CIFAR-10 test images upscaled (bicubic) to each of
    PHOTO_SIZES, every other one grey; and the CelebA faces at their own 160×160."""
    from PIL import Image

    imgs, _, split = eval_split("cifar10", n * len(PHOTO_SIZES), data_root=data_root)
    up = []
    for i, a in enumerate(imgs):
        h, w = PHOTO_SIZES[i % len(PHOTO_SIZES)]
        im = Image.fromarray(a).resize((w, h), Image.BICUBIC)
        im = im.convert("L") if i % 2 else im
        b = np.asarray(im)
        up.append(b[:, :, None] if b.ndim == 2 else b)
    faces, _, fsplit = eval_split("faces", n, data_root=data_root)
    return {"cifar10-upscaled": (up, f"{split}, upscaled to {', '.join(f'{h}x{w}' for h, w in PHOTO_SIZES)}, "
                                     "every other one grey"),
            "faces-160": (list(faces), fsplit)}


def run_photos(n: int, key: SecretKey, data_root=None) -> dict:
    rows = {}
    for set_name, (images, split) in photo_sets(n, data_root).items():
        for clf_name in ("cifar10-resnet18", "faces-dlibface"):
            if set_name == "faces-160" and clf_name == "faces-dlibface":
                continue  # its own input size: covered by the faces row of the main table
            sch = ExactScheme(load_classifier(clf_name))
            e = evaluate_exact(sch, images, key)
            rows[f"{set_name} / {clf_name}"] = {"data": split, "classifier": sch.classifier.ident, "bits": sch.bits,
                                                "preprocess": sch.classifier.preprocess.config(), **e}
            print(set_name, clf_name, json.dumps({k: e[k] for k in ("fit", "agreement", "bit_exact",
                                                                     "encrypt_img_s")}), flush=True)
    return rows


def _photos_md(rows: dict, command: str | None = None) -> list[str]:
    lines = ["", "## Photos of any size (the classifier's declared preprocessing inside the attack)", ""]
    if command:
        lines += [f"Command: `{command}` (same machine)", ""]
    lines += ["| photos / classifier | images | preprocess | b | fit | agreement first try / after retries | "
              "bit-exact | enc img/s | dec img/s |", "|---|---|---|---|---|---|---|---|---|"]
    for k, e in rows.items():
        pre = e["preprocess"]
        lines.append(f"| {k} | {e['images']} | {pre['kind']} to {pre['size'][0]}x{pre['size'][1]} | {e['bits']} | "
                     f"{100 * e['fit']:.2f} % | {100 * e['first_try']:.2f} % / {100 * e['agreement']:.2f} % | "
                     f"{100 * e['bit_exact']:.2f} % | {e['encrypt_img_s']:.2f} | {e['decrypt_img_s']:.1f} |")
    lines += ["", "Data: " + "; ".join(f"{k}: {e['data']}" for k, e in rows.items())]
    return lines


def bits_sweep(names, n: int, key: SecretKey, data_root=None) -> dict:
    rows = {}
    for name in names:
        images, _, split = eval_split(name, n, data_root=data_root)
        clf = load_classifier(CLASSIFIERS[name])
        for b in (4, 5, 6, 7):
            e = evaluate_exact(ExactScheme(clf, bits=b), images, key)
            rows[f"{name}/{b}"] = {"data": split, "bits": b, **e}
            print(name, b, json.dumps({k: e[k] for k in ("fit", "first_try", "agreement", "steps_median")}),
                  flush=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = " ".join(["python benchmarks/exact.py", *argv])
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", nargs="+", default=list(CLASSIFIERS))
    p.add_argument("--n", type=int, help="test images per set (default: 1,000; all faces and Tiny-ImageNet)")
    p.add_argument("--paper-n", type=int, default=100, help="images per set for the paper scheme (0: skip)")
    p.add_argument("--bits-sweep", action="store_true")
    p.add_argument("--merge", action="store_true", help="keep the other sets of an existing exact.json")
    p.add_argument("--photos", type=int, metavar="N", help="only the photo rows: N images per photo set")
    p.add_argument("--data-root")
    p.add_argument("--out", default="docs/results")
    a = p.parse_args(argv)
    torch.set_num_threads(2)
    key = SecretKey.generate()
    rep = {"command": command, "machine": machine()}
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    if a.bits_sweep:
        rep["runs"] = bits_sweep(a.datasets, a.n or 200, key, a.data_root)
        (out / "exact_bits.json").write_text(json.dumps(rep, indent=1) + "\n")
        lines = ["# Exact scheme: choosing b", "", f"Command: `{rep['command']}`  ", f"Machine: {rep['machine']}", "",
                 "| set | b | fit | first try | after retries | steps median / p99 | enc img/s |",
                 "|---|---|---|---|---|---|---|"]
        for k, e in rep["runs"].items():
            lines.append(f"| {k.split('/')[0]} | {e['bits']} | {100 * e['fit']:.1f} % | {100 * e['first_try']:.1f} % "
                         f"| {100 * e['agreement']:.1f} % | {e['steps_median']:.0f} / {e['steps_p99']:.0f} | "
                         f"{e['encrypt_img_s']:.1f} |")
        (out / "exact_bits.md").write_text("\n".join(lines) + "\n")
        print("\n".join(lines))
        return
    rep["sets"] = {}
    old = json.loads((out / "exact.json").read_text()) if (out / "exact.json").is_file() else {}
    if a.photos:  # the photo rows only, added to the report as it is when they are done
        photos = run_photos(a.photos, key, a.data_root)
        (out / "exact_photos.json").write_text(json.dumps({**rep, "photos": photos}, indent=1) + "\n")
        old = json.loads((out / "exact.json").read_text()) if (out / "exact.json").is_file() else {}
        rep = {**rep, "sets": {}, **old, "photos": photos, "photos_command": command}
        (out / "exact.json").write_text(json.dumps(rep, indent=1) + "\n")
        (out / "exact.md").write_text(_md(rep))
        print(_md(rep))
        return
    if a.merge and old:  # add to the sets measured by earlier runs
        rep["sets"] = old.get("sets", {})
        rep["photos"] = old.get("photos", {})
        rep["command"] += " (merged with the sets of earlier runs; each set records its own command)"
    for name in a.datasets:
        row = one_set(name, a.n or DEFAULT_N[name], a.paper_n, key, a.data_root)
        row["command"], row["machine"] = command, rep["machine"]
        rep["sets"][name] = row
        print(name, json.dumps({k: v for k, v in row["exact"].items() if k != "failed"}), flush=True)
        (out / "exact.json").write_text(json.dumps(rep, indent=1) + "\n")  # after every set: nothing is lost
        (out / "exact.md").write_text(_md(rep))
    print(_md(rep))


if __name__ == "__main__":
    main()
