"""Labels under the cloud's own serving stack: every scheme × classifier × stack of ric.stacks.STACKS.

    nice -n 10 python benchmarks/stacks.py --threads 1   # all sets
    python benchmarks/stacks.py --sets svhn cifar10-photos --scale 0.5

Per set (dataset test images at the classifier's input size, or photos: upscaled test images saved as JPEG files):
* plaintext: how often each stack gives the plaintext the label ric's own torch path gives it (``t = C(x)``);
* the exact scheme as the product runs it: without a robustness set (``ExactScheme(robust_set=None)``, "today")
  and with the default one (``ExactScheme()``: the attack over ``serving-v1``, then :func:`ric.stacks.verify` on
  every installed stack and fresh-nonce retries, a ciphertext that never holds reported failed). Grid images go
  through ``ExactScheme.encrypt``, photos through ``ExactScheme.encrypt_photo`` (the photo file sealed in a
  compact format-2 carrier of a size class; the stacks classify the carrier). A cell is the share of *all*
  images whose ciphertext was written and is labelled ``t`` by that stack (a refused image counts as a miss);
  beside it the attack steps, attempts and encrypt seconds per image;
* the paper scheme (shipped ``svhn-ric-v3``): how often each stack labels its ciphertexts ``t``.
Writes docs/results/stacks.{json,md}. One random key; this CPU, ``--threads`` threads.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ric.classifiers import load_classifier
from ric.eval.measure import eval_split, machine
from ric.imageio import to_tensor
from ric.keys import SecretKey
from ric.schemes.exact import ROBUST_STEPS, ExactScheme, Photo
from ric.stacks import DEFAULT_ROBUST_SET, STACKS

ROBUST = DEFAULT_ROBUST_SET
TARGET = 0.995
# name -> (data set, classifier, images, photo sizes or None for the data set's own size)
SETS = {
    "svhn": ("svhn", "svhn-cnn7", 200, None),
    "mnist": ("mnist", "mnist-cnn5", 60, None),
    "cifar10": ("cifar10", "cifar10-resnet18", 60, None),
    "tinyimagenet": ("tinyimagenet", "tinyimagenet-resnet18", 20, None),
    "faces": ("faces", "faces-dlibface", 16, None),
    "faces-resnet18": ("faces", "faces-resnet18", 12, None),
    "cifar10-photos": ("cifar10", "cifar10-resnet18", 96,
                       ((250, 250), (451, 300), (512, 512), (480, 640), (960, 1280), (1080, 1920))),
    "faces-photos": ("faces", "faces-dlibface", 12, ((250, 200), (320, 240), (300, 300))),
    "svhn-paper": ("svhn", "svhn-ric-v3", 40, None),
}


def images_for(data: str, n: int, sizes, data_root=None) -> tuple[list[np.ndarray], str]:
    imgs, _, split = eval_split(data, n, data_root=data_root)
    if not sizes:
        return list(imgs), split
    out = [np.asarray(Image.fromarray(a if a.shape[2] == 3 else a[:, :, 0]).resize((w, h), Image.Resampling.BICUBIC))
           for a, (h, w) in zip(imgs, (sizes[i % len(sizes)] for i in range(len(imgs))), strict=True)]
    return [a if a.ndim == 3 else a[:, :, None] for a in out], (f"{split}, upscaled (bicubic) to "
                                                                  f"{', '.join(f'{h}x{w}' for h, w in sizes)}")


def stack_labels(clf, images: list[np.ndarray]) -> dict[str, np.ndarray]:
    """stack -> labels of ``images`` (uint8 H×W×C, any sizes; grouped by size into batches)."""
    groups: dict[tuple, list[int]] = {}
    for i, a in enumerate(images):
        groups.setdefault(a.shape, []).append(i)
    out = {}
    for name, st in STACKS.items():
        lab = np.zeros(len(images), dtype=np.int64)
        for idx in groups.values():
            for s in range(0, len(idx), 32):
                part = idx[s:s + 32]
                lab[part] = st.predict(clf, to_tensor(np.stack([images[i] for i in part]))).numpy()
        out[name] = lab
    return out


def _views(clf, images):
    from ric.imageio import channel_view

    return [channel_view(a, clf.input_shape[0]) for a in images]


def photo_of(a: np.ndarray, i: int) -> Photo:
    """A photo file (JPEG, quality 92) of the upscaled image ``a``, as ``ric encrypt`` reads one."""
    buf = io.BytesIO()
    Image.fromarray(a if a.shape[2] == 3 else a[:, :, 0]).save(buf, "JPEG", quality=92)
    return Photo(f"IMG_{i:04d}.jpg", buf.getvalue(), "JPEG", a)


def run_exact(clf, images, key, robust_set: str | None, photos: bool) -> dict:
    """The product path on ``images`` (grid images, or photos through their JPEG files): agreement per stack over
    all images (a refused image counts as a miss), steps, attempts and seconds per image."""
    sch = ExactScheme(clf, robust_set=robust_set)
    t0 = time.perf_counter()
    if photos:
        res = [sch.encrypt_photo(photo_of(a, i), key) for i, a in enumerate(images)]
    else:
        res = sch.encrypt(images, key)
    enc = time.perf_counter() - t0
    ok = [r for r in res if r.ciphertext is not None]
    t = np.array([r.target for r in ok])
    labs = stack_labels(clf, _views(clf, [r.ciphertext.pixels for r in ok])) if ok else {k: t for k in STACKS}
    steps = np.array([r.steps for r in ok] or [0])
    return {"attack": repr(sch.attack), "robust_set": robust_set, "encrypted": len(ok), "images": len(images),
            "failed": [r.error for r in res if r.ciphertext is None],
            "unchecked": sorted({s for r in ok for s in r.unchecked}),
            "carriers": sorted({"x".join(map(str, r.ciphertext.pixels.shape[:2])) for r in ok}) if photos else [],
            "encrypt_s_per_image": enc / len(images), "steps_median": float(np.median(steps)),
            "steps_p99": float(np.percentile(steps, 99)), "steps_mean": float(steps.mean()),
            "attempts_mean": float(np.mean([r.attempts for r in res])),
            "agreement": {k: float(np.sum(v == t)) / len(images) for k, v in labs.items()}}


def run_paper(model: str, images, key) -> dict:
    from ric.eval.measure import images_of
    from ric.schemes.paper import RIC

    ric = RIC.load(model)
    x = images_of(ric, np.stack(images))
    t0 = time.perf_counter()
    res = ric.encrypt(x, key)
    enc = time.perf_counter() - t0
    ok = [r for r in res if r.ciphertext is not None]
    t = np.array([r.target for r in ok])
    labs = stack_labels(ric.classifier, [r.ciphertext.pixels for r in ok])
    return {"model": model, "classifier": ric.classifier.ident, "encrypted": len(ok), "images": len(images),
            "encrypt_s_per_image": enc / len(images),
            "agreement": {k: float(np.mean(v == t)) for k, v in labs.items()}}, ric.classifier


def one_set(name: str, n: int, key: SecretKey, data_root=None, log=print, robust_set: str = ROBUST) -> dict:
    data, clf_name, _, sizes = SETS[name]
    images, split = images_for(data, n, sizes, data_root)
    row = {"data": split + (", saved as JPEG q92 (format-2 carriers)" if sizes else ""), "images": len(images)}
    if clf_name.endswith(("-ric-v3", "-ric-v2")):  # the paper scheme's model
        row["paper"], clf = run_paper(clf_name, images, key)
    else:
        clf = load_classifier(clf_name)
        row["today"] = run_exact(clf, images, key, None, bool(sizes))
        log(f"  {name}: today {row['today']['encrypt_s_per_image']:.2f} s/img", flush=True)
        row["robust"] = run_exact(clf, images, key, robust_set, bool(sizes))
    row["classifier"] = clf.ident
    row["preprocess"] = clf.preprocess.config() if clf.preprocess is not None else None
    views = _views(clf, images)
    plain = stack_labels(clf, views)
    row["plaintext_stability"] = {k: float(np.mean(v == plain["torch"])) for k, v in plain.items()}
    return row


def _load(rep: dict) -> str:
    """The 1-minute load average at the start and the end (older reports did not record it)."""
    if "load" not in rep:
        return ""
    return f"; 1-minute load average {rep['load'][0]:.2f} at the start, {rep['load'][-1]:.2f} at the end"


def _md(rep: dict) -> str:
    lines = ["# Labels under the cloud's serving stack", "", f"Command: `{rep['command']}`  ",
             f"Machine: {rep['machine']} ({rep['wall_minutes']:.1f} min{_load(rep)})  ",
             f"Robust: the product's default, `ExactScheme()`: robustness set `{rep['robust_set_name']}` "
             f"({rep['robust_set']}), at most {rep['robust_steps']} attack steps, every ciphertext verified on every "
             f"installed stack, at most 3 fresh-nonce retries. Today: `ExactScheme(robust_set=None)`. "
             f"A cell counts every image: one the product refused is a miss. "
             f"Target: {100 * TARGET:.1f} % in every cell.", "",
             "## Summary", "",
             "| set | classifier | N | plaintext: lowest stack | today: lowest stack | robust: lowest stack | "
             "robust: refused | steps median today / robust | attempts robust | encrypt s/img today / robust |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in rep["sets"].items():
        low = lambda d: min(d.items(), key=lambda kv: kv[1]) if min(d.values()) < 1 else ("all", 1.0)  # noqa: E731
        pk, pv = low(r["plaintext_stability"])
        if "paper" in r:
            ck, cv = low(r["paper"]["agreement"])
            lines.append(f"| {name} (paper `{r['paper']['model']}`) | `{r['classifier']}` | {r['images']} | "
                         f"{100 * pv:.1f} % ({pk}) | {100 * cv:.1f} % ({ck}) | | | | "
                         f"{r['paper']['encrypt_s_per_image']:.2f} |")
            continue
        tk, tv = low(r["today"]["agreement"])
        rk, rv = low(r["robust"]["agreement"])
        rb = r["robust"]
        lines.append(f"| {name} | `{r['classifier']}` | {r['images']} | {100 * pv:.1f} % ({pk}) | "
                     f"{100 * tv:.1f} % ({tk}) | {100 * rv:.1f} % ({rk}) | {len(rb['failed'])} | "
                     f"{r['today']['steps_median']:.0f} / {rb['steps_median']:.0f} | {rb['attempts_mean']:.2f} | "
                     f"{r['today']['encrypt_s_per_image']:.2f} / {rb['encrypt_s_per_image']:.2f} |")
    lines += ["", "## Every stack", "", "Share of labels equal to ric's own torch label of the plaintext "
              "(plaintext: its own stability; ciphertexts: their target).", ""]
    names = list(rep["sets"])
    lines.append("| stack | " + " | ".join(f"{n} plain / today / robust" if "paper" not in rep["sets"][n]
                                             else f"{n} plain / paper" for n in names) + " |")
    lines.append("|---|" + "---|" * len(names))
    for st in STACKS:
        cells = []
        for n in names:
            r = rep["sets"][n]
            p = 100 * r["plaintext_stability"][st]
            if "paper" in r:
                cells.append(f"{p:.0f} / {100 * r['paper']['agreement'][st]:.1f}")
            else:
                cells.append(f"{p:.0f} / {100 * r['today']['agreement'][st]:.1f} / "
                             f"{100 * r['robust']['agreement'][st]:.1f}")
        lines.append(f"| `{st}` | " + " | ".join(cells) + " |")
    carriers = {k: r["robust"]["carriers"] for k, r in rep["sets"].items() if r.get("robust", {}).get("carriers")}
    if carriers:
        lines += ["", "Photo carriers (format 2): " + "; ".join(f"{k}: {', '.join(v)}" for k, v in carriers.items())]
    unchecked = sorted({s for r in rep["sets"].values() for s in r.get("robust", {}).get("unchecked", [])})
    lines += ["", "Stacks the verifier could not run here: " + (", ".join(unchecked) if unchecked else "none")]
    lines += ["", "Stacks: " + "; ".join(f"`{k}`: {s.help}" for k, s in STACKS.items()) + ".", "",
              "Data: " + "; ".join(f"{k}: {r['data']}" for k, r in rep["sets"].items())]
    return "\n".join(lines) + "\n"


def _describe(members) -> str:
    geos = {(m.scale, m.offset) for m in members}
    return f"{len(members)} members: {len({m.resizer for m in members})} resizers x {len(geos)} geometries"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sets", nargs="+", default=list(SETS), choices=list(SETS))
    p.add_argument("--scale", type=float, default=1.0, help="multiply every set's image count")
    p.add_argument("--threads", type=int, default=2, help="torch threads (1 is faster on a crowded machine)")
    p.add_argument("--robust-set", default=ROBUST, help="the robustness set to measure (another than the default "
                   f"{ROBUST} writes stacks-NAME.{{json,md}})")
    p.add_argument("--data-root")
    p.add_argument("--out", default="docs/results")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    key = SecretKey.generate()
    from ric.stacks.robust import ROBUST_SETS

    rep = {"command": "python benchmarks/stacks.py " + " ".join(sys.argv[1:] if argv is None else argv), "machine": machine(), "sets": {},
           "robust_set": _describe(ROBUST_SETS[a.robust_set]), "robust_set_name": a.robust_set,
           "robust_steps": ROBUST_STEPS,
           "stacks": {k: s.help for k, s in STACKS.items()}}
    t0 = time.perf_counter()
    rep["load"] = [os.getloadavg()[0]]
    for name in a.sets:
        n = max(2, round(SETS[name][2] * a.scale))
        rep["sets"][name] = one_set(name, n, key, a.data_root, robust_set=a.robust_set)
        print(name, json.dumps({k: v for k, v in rep["sets"][name].items() if k in ("images", "classifier")}),
              f"{(time.perf_counter() - t0) / 60:.1f} min", flush=True)
    rep["wall_minutes"] = (time.perf_counter() - t0) / 60
    rep["load"].append(os.getloadavg()[0])
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = "stacks" if a.robust_set == ROBUST else f"stacks-{a.robust_set}"
    (out / f"{stem}.json").write_text(json.dumps(rep, indent=1) + "\n")
    (out / f"{stem}.md").write_text(_md(rep))
    print(_md(rep))


if __name__ == "__main__":
    main()
