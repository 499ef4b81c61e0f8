"""What a photo's compact carrier reveals without the key: keyless statistics and a simulation check.

    python benchmarks/photo_security.py                   # 150 victim photos, 150 attacker pairs, 320x240
    python benchmarks/photo_security.py --n 60 --fit 60   # quicker

Photos are made from CIFAR-10 test images as benchmarks/photos.py makes them (upscaled, sensor-like noise, JPEG
q92 with EXIF), encrypted by the product path (``ExactScheme.encrypt_photos``: the default robustness set, the
smooth carrier of the network's grid). Three keyless attacks, each with a positive control, a carrier that puts
the photo's own downscaled pixels in the high digits (what a careless compact carrier would leak):

* **keyless statistics** (``ric.security.leak_correlations``): the photo's brightness, contrast, dark and bright
  shares estimated from its carrier, analytically and calibrated on the attacker's own photo/carrier pairs (other
  CIFAR-10 test images under a key of the attacker's), correlated with the truth; beside them the same estimators
  on carriers simulated from the label alone, and what the label itself predicts (the label is revealed);
* **the label's view**: the carrier's high digits resized the classifier's way, correlated pixel by pixel with the
  photo resized the same way (what the smooth image shows of the photo), against a same-label pairing;
* **simulation check**: a distinguisher (``ric.security.exact.distinguish``) between real carriers and carriers
  simulated from the label and the carrier size alone (``simulate_ciphertexts``).

Writes docs/results/photo_security.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from photos import make_photo  # noqa: E402  (the photo maker of the photo benchmark)

CLASSIFIER = "cifar10-resnet18"


def encrypt(sch, key, srcs: np.ndarray, size: tuple[int, int], work: Path, seed: int):
    """(carriers, photos' decoded pixels, targets) of photos made from ``srcs``, through the product path."""
    from ric.photos import read_photo

    photos = [read_photo(make_photo(work / f"IMG_{seed + i:04d}.jpg", a, *size, "JPEG", seed + i), 3)
              for i, a in enumerate(srcs)]
    res = sch.encrypt_photos(photos, key)
    bad = [r.error for r in res if r.ciphertext is None]
    if bad:
        raise SystemExit(f"{len(bad)} photos failed: {bad[0]}")
    return [r.ciphertext.pixels for r in res], [p.pixels for p in photos], np.array([r.target for r in res])


def thumbnail_control(carriers: list, photos: list, bits: int) -> list:
    """The positive control: each carrier with its photo, resized to the carrier, in the high digits."""
    from PIL import Image

    out = []
    for c, p in zip(carriers, photos, strict=True):
        thumb = np.asarray(Image.fromarray(p).resize(c.shape[1::-1], Image.Resampling.BILINEAR))
        out.append(((thumb >> bits) << bits) | (c & np.uint8((1 << bits) - 1)))
    return out


def network_view(clf, images: list) -> np.ndarray:
    """Each image resized and cropped the classifier's way (N × C·H·W, float)."""
    from ric.imageio import to_tensor

    return np.stack([clf.preprocess(to_tensor(a[None]))[0].flatten().numpy() for a in images])


def view_correlation(clf, carriers: list, photos: list, targets: np.ndarray, bits: int) -> dict:
    """Mean pixel correlation between each carrier's high digits and its photo in the network's view, against the
    same carrier paired with another photo of the same label (what the label alone explains)."""
    high = [(c >> bits) << bits | np.uint8(1 << (bits - 1)) for c in carriers]
    a, b = network_view(clf, high), network_view(clf, photos)
    a, b = a - a.mean(1, keepdims=True), b - b.mean(1, keepdims=True)

    def corr(i, j):
        return float((a[i] * b[j]).sum() / np.sqrt((a[i] ** 2).sum() * (b[j] ** 2).sum() + 1e-12))

    rng = np.random.default_rng(0)
    paired = [i for i in range(len(targets)) if (targets == targets[i]).sum() > 1]  # photos with a label mate
    other = {i: int(rng.choice(np.flatnonzero((targets == targets[i]) & (np.arange(len(targets)) != i))))
             for i in paired}
    own, same = [corr(i, i) for i in paired], [corr(i, other[i]) for i in paired]
    return {"own": float(np.mean(own)), "same_label": float(np.mean(same)),
            "noise_band_95": float(1.96 * np.std(np.array(own) - np.array(same)) / np.sqrt(len(own)))}


def simulate(sch, key_id: str, carriers: list, targets: np.ndarray) -> list:
    """Carriers of the same sizes made from the labels alone."""
    from ric.security.exact import simulate_ciphertexts

    out: list = [None] * len(carriers)
    by_shape: dict = {}
    for i, c in enumerate(carriers):
        by_shape.setdefault(c.shape, []).append(i)
    for shape, idx in by_shape.items():
        px, _ = simulate_ciphertexts(sch, targets[idx], shape, key_id)
        for j, i in enumerate(idx):
            out[i] = px[j]
    return out


def features(carriers: list, bits: int) -> np.ndarray:
    from ric.security.exact import distinguisher_features

    return np.concatenate([distinguisher_features(c[None], bits) for c in carriers])


def run(n: int, fit: int, size: tuple[int, int], data_root) -> dict:
    from ric.classifiers import load_classifier
    from ric.datasets import load_dataset
    from ric.keys import SecretKey
    from ric.schemes.exact import ExactScheme
    from ric.security import leak_correlations
    from ric.security.exact import distinguish, label_reference

    clf = load_classifier(CLASSIFIER)
    sch = ExactScheme(clf)
    imgs = load_dataset("cifar10", "test", data_root).images
    key, own_key = SecretKey.generate(), SecretKey.generate()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.time()
        c, x, t = encrypt(sch, key, imgs[:n], size, Path(tmp), 0)
        c_fit, x_fit, t_fit = encrypt(sch, own_key, imgs[n:n + fit], size, Path(tmp), n)
        t_enc = time.time() - t0
    control = thumbnail_control(c, x, sch.bits)
    sim = simulate(sch, key.key_id, c, t)
    f_real = features(c, sch.bits)
    return {"photos": n, "fit_pairs": fit, "photo_size": list(size), "bits": sch.bits,
            "carriers": sorted({"x".join(map(str, a.shape[:2])) for a in c}), "encrypt_s": t_enc,
            "keyless": leak_correlations(c, x, 0.8, c_fit, x_fit),
            "keyless_simulated": leak_correlations(sim, x, 0.8, c_fit, x_fit),
            "label_reference": label_reference(t_fit, x_fit, t, x),
            "keyless_control": leak_correlations(control, x, 0.8, thumbnail_control(c_fit, x_fit, sch.bits), x_fit),
            "view": view_correlation(clf, c, x, t, sch.bits),
            "view_control": view_correlation(clf, control, x, t, sch.bits),
            "distinguisher_simulated": distinguish(f_real, features(sim, sch.bits), t, t),
            "distinguisher_control": distinguish(f_real, features(control, sch.bits), t, t)}


def _md(rep: dict) -> str:
    stats = ("mean", "std", "dark", "bright")
    k, kc = rep["keyless"], rep["keyless_control"]

    def row(name, d):
        return (f"| {name} | " + " | ".join(f"{d['analytic'][s]:.3f} / {d['calibrated'][s]:.3f}" for s in stats)
                + f" | ±{d['noise_band_95']:.3f} |")

    def dist(d):
        return (f"{100 * d['accuracy']:.1f} % (chance band {100 * d['band_95'][0]:.1f}-{100 * d['band_95'][1]:.1f} %, "
                f"p = {d['p_value']:.3f})")

    v, vc = rep["view"], rep["view_control"]
    return "\n".join([
        "# What a photo's carrier reveals without the key", "",
        f"Command: `{rep['command']}`  ", f"Machine: {rep['machine']}  ",
        f"Data: {rep['photos']} CIFAR-10 test images made into {rep['photo_size'][0]}x{rep['photo_size'][1]} JPEG "
        f"photos (the victim's), {rep['fit_pairs']} more under a key of the attacker's (its calibration pairs); "
        f"classifier `{CLASSIFIER}`, b = {rep['bits']}, the product's default (robustness set, smooth carrier); "
        f"carriers {', '.join(rep['carriers'])}. Control: the same carriers with the photo, resized to the "
        "carrier, in the high digits.", "",
        "## Keyless statistics (Pearson r, analytic / calibrated)", "",
        "| carriers | brightness | contrast | dark share | bright share | noise level |", "|---|---|---|---|---|---|",
        row("product", k), row("simulated from the label and size alone", rep["keyless_simulated"]),
        row("control", kc), "",
        "The label alone (each photo's statistic predicted by the mean over the attacker's photos of its label): "
        + ", ".join(f"{n} r = {rep['label_reference'][st]:.3f}" for n, st in
                    zip(("brightness", "contrast", "dark share", "bright share"), stats, strict=True)) + ".", "",
        "## The network's view of the high digits", "",
        f"Mean pixel correlation with the photo (both resized the classifier's way): product {v['own']:.3f} "
        f"against {v['same_label']:.3f} for another photo of the same label (noise ±{v['noise_band_95']:.3f}); "
        f"control {vc['own']:.3f} against {vc['same_label']:.3f}.", "",
        "## Simulation check", "",
        f"Real carriers against carriers simulated from the label and the size alone: {dist(rep['distinguisher_simulated'])}. "
        f"Real against the control: {dist(rep['distinguisher_control'])}.", ""])


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=150, help="victim photos")
    p.add_argument("--fit", type=int, default=150, help="the attacker's own photo/carrier pairs")
    p.add_argument("--size", default="320x240", help="photo size WxH")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--data-root")
    p.add_argument("--out", default="docs/results")
    a = p.parse_args(argv)
    from ric.eval.measure import machine

    torch.set_num_threads(a.threads)
    w, h = (int(v) for v in a.size.split("x"))
    rep = {"command": " ".join(["python benchmarks/photo_security.py", *argv]),
           "machine": machine(), **run(a.n, a.fit, (w, h), a.data_root)}
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "photo_security.json").write_text(json.dumps(rep, indent=1) + "\n")
    (out / "photo_security.md").write_text(_md(rep))
    print(_md(rep))


if __name__ == "__main__":
    main()
