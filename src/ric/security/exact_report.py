"""The ``exact`` section of ``ric security``: the scheme's attacks on real data (its Markdown:
:mod:`ric.security.exact_render`).

A model name ``exact:<classifier>`` in ``ric security --models`` (``exact:svhn-cnn7`` is in the quick and the
full defaults) runs :func:`evaluate_exact_model`: a fresh victim key encrypts test images (attacked), train
images (the adversary's known pairs and the cloud's history) and, for the simulation check, *other* images with
the same labels; a key of the attacker's own encrypts other train images (the keyless estimator's
calibration); a simulator makes ciphertexts from the labels alone (:func:`ric.security.exact.simulate_ciphertexts`).
Ciphertexts are cached in the run folder like the paper scheme's.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torchvision.utils import save_image

from ric import __version__
from ric.classifiers import load_classifier
from ric.datasets import load_dataset
from ric.imageio import to_pixels, to_tensor
from ric.schemes.exact import ExactScheme
from ric.security import leak_correlations, score
from ric.security.exact import (
    TEST_NAMES,
    distinguish,
    distinguisher_features,
    label_reference,
    matched_partners,
    randomness_tests,
    simulate_ciphertexts,
)
from ric.security.runs import (
    attack_data,
    blind_section,
    clock,
    cloud_section,
    kpa_section,
    load_or_make_key,
    majority_share,
)
from ric.security.text import PREFIX
from ric.zoo import bundles

# Sizes per (dataset, quick), as SIZES of the paper scheme. Encryption is cheap here (a few attack steps), so the
# attacked sets are larger: the noise band of a correlation is 1.96/sqrt(n_eval). kpa: pairs of the known-
# plaintext network ("all": the whole train split); kpa_epochs: as for the paper scheme (5 epochs above 1,000).
EXACT_SIZES = {
    ("svhn", True): dict(n_eval=500, kpa=[2000], kpa_epochs=40, cloud_epochs=12, cloud_size=32, n_cal=1000),
    ("svhn", False): dict(n_eval=2000, kpa=[1000, "all"], kpa_epochs=40, cloud_epochs=30, cloud_size=32, n_cal=1000),
    ("faces", True): dict(n_eval=80, kpa=[120], kpa_epochs=20, cloud_epochs=12, cloud_size=64, kpa_width=16,
                          kpa_crop=64, n_cal=60),
    ("faces", False): dict(n_eval=200, kpa=[100, "all"], kpa_epochs=30, cloud_epochs=25, cloud_size=64,
                           kpa_width=16, kpa_crop=64, n_cal=200),
    ("cifar10", True): dict(n_eval=500, kpa=[2000], kpa_epochs=40, cloud_epochs=12, cloud_size=32, n_cal=1000),
    ("cifar10", False): dict(n_eval=2000, kpa=[1000, "all"], kpa_epochs=40, cloud_epochs=30, cloud_size=32,
                             n_cal=1000),
}


EXACT_SCHEMA = 3  # bumped whenever evaluate_exact_model's results change meaning


def is_exact(model: str) -> bool:
    return model.startswith(PREFIX)


def _classifier_name(model: str) -> str:
    name = model[len(PREFIX):]
    if (bundles.dataset_of(name), True) not in EXACT_SIZES:
        known = sorted({d for d, _ in EXACT_SIZES})
        raise ValueError(f"{model}: the exact section has sizes for the data sets {', '.join(known)} only")
    return name


def exact_result_key(model: str, quick: bool) -> dict:
    """What a cached exact result depends on: the classifier (name and weights), ``b``, the attack, the sizes,
    the package version and :data:`EXACT_SCHEMA`."""
    sch = ExactScheme(load_classifier(_classifier_name(model)))
    key = {"classifier": sch.classifier.ident, "bits": sch.bits, "attack": sch.attack.config(),
           "sizes": EXACT_SIZES[(bundles.dataset_of(_classifier_name(model)), quick)], "version": __version__,
           "schema": EXACT_SCHEMA}
    return json.loads(json.dumps(key))


def encrypt_exact_cached(sch: ExactScheme, key, images: np.ndarray, path: Path,
                         log: Callable) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pixels N×H×W×C, targets, encrypted?) of uint8 ``images`` under ``key``, reusing a cache at ``path`` made
    with the same classifier, ``b`` and attack. An image that fails (capacity, missed label) has ok = False."""
    ident = json.dumps([sch.classifier.ident, sch.bits, sch.attack.config()], sort_keys=True)
    if path.is_file():
        d = np.load(path)
        if str(d["ident"]) == ident and len(d["px"]) == len(images):
            return d["px"], d["target"], d["ok"]
    log(f"encrypting {len(images)} images ({sch.bits} low bits; cached in {path})")
    res = sch.encrypt(list(images), key)
    ok = np.array([r.ciphertext is not None for r in res])
    px = np.stack([r.ciphertext.pixels if r.ciphertext is not None else np.zeros(images.shape[1:], np.uint8)
                   for r in res])
    target = np.array([r.target for r in res])
    np.savez(path, px=px, target=target, ok=ok, ident=np.array(ident))
    return px, target, ok


def _tensor(px: np.ndarray) -> torch.Tensor:
    return to_tensor(px)


def _pool(data, sch: ExactScheme, dataset: str, data_root) -> tuple[np.ndarray, np.ndarray]:
    """Images that are not attacked (other test images, then train images) and their labels C(x)."""
    rest = np.setdiff1d(np.arange(len(data.test.images)), data.sel)
    train = load_dataset(dataset, "train", data_root)
    pool = np.concatenate([data.test.images[rest], train.images[-2000:]])
    return pool, sch._predict(pool).numpy()


def _simulation(sch, key, data, px_eval, t_eval, x_u8, px_cal, x_cal_u8, run: Path, dataset: str, data_root,
                log: Callable) -> tuple[dict, np.ndarray, np.ndarray]:
    """Real ciphertexts against ciphertexts of other images with the same labels and against ciphertexts made
    from the labels alone: keyless statistics of each against the real plaintexts, and a distinguisher. Returns
    (results, the other images' ciphertexts, the simulated ones)."""
    pool, t_pool = _pool(data, sch, dataset, data_root)
    idx = matched_partners(t_pool, t_eval)
    have = idx >= 0
    px_other, t_other, ok = encrypt_exact_cached(sch, key, pool[np.maximum(idx, 0)], run / "other.npz", log)
    use = have & ok
    log(f"[{clock()}] simulating {len(t_eval)} ciphertexts from their labels alone")
    px_sim, attempts = simulate_ciphertexts(sch, t_eval, px_eval.shape[1:], key.key_id)
    b = sch.bits
    f_real, f_other, f_sim = (distinguisher_features(p, b) for p in (px_eval, px_other[use], px_sim))
    broken = (px_eval & ~np.uint8((1 << b) - 1)) | (x_u8 & np.uint8((1 << b) - 1))  # positive control
    res = {"other_matched": int(use.sum()), "other_same_label": float((t_other[use] == t_eval[use]).mean()),
           "simulated_hit": float((attempts > 0).mean()),
           "keyless_other": leak_correlations(px_other[use], x_u8[use], 0.8, px_cal, x_cal_u8),
           "keyless_simulated": leak_correlations(px_sim, x_u8, 0.8, px_cal, x_cal_u8),
           "distinguisher_other": distinguish(f_real[use], f_other, t_eval[use], t_eval[use]),
           "distinguisher_simulated": distinguish(f_real, f_sim, t_eval, t_eval),
           "distinguisher_control": distinguish(f_real, distinguisher_features(broken, b), t_eval, t_eval)}
    return res, px_other[use], px_sim


class _Chance:
    """Scores of an attack's outputs against plaintexts they do not come from: a shuffled pairing of the test
    images (``shuffled``) and a pairing of each test image with another test image of the same label
    (``same_label``, over the images whose label occurs at least twice: what the label, which the scheme
    reveals, allows)."""

    def __init__(self, x_eval: torch.Tensor, labels: np.ndarray):
        self.x = x_eval
        self.shuffled = torch.from_numpy(_cycle(np.arange(len(x_eval))))
        same = np.full(len(x_eval), -1, dtype=np.int64)
        for c in np.unique(labels):
            idx = np.flatnonzero(labels == c)
            if len(idx) > 1:
                same[idx] = _cycle(idx)
        self.use = torch.from_numpy(same >= 0)
        self.same = torch.from_numpy(same[same >= 0])

    def __call__(self, y: torch.Tensor) -> dict:
        return {"shuffled": score(y, self.x[self.shuffled]), "same_label": score(y[self.use], self.x[self.same]),
                "same_label_images": int(self.use.sum())}


def _cycle(idx: np.ndarray, seed: int = 0) -> np.ndarray:
    """A random pairing of the indices ``idx`` in which none is paired with itself (one cycle through all)."""
    p = np.random.default_rng(seed).permutation(len(idx))
    order = np.empty(len(idx), dtype=np.int64)
    order[p] = np.roll(p, -1)
    return idx[order]


def _attacks(sch, data, px_eval, px_kpa, t_eval, chance: _Chance, sz: dict, figs: Path, tag: str,
             log: Callable) -> dict:
    """Blind filters, the known-plaintext network and the curious cloud, each against the plaintexts and
    against plaintexts they do not come from (``chance``)."""
    x_eval, y_eval, x_kpa = data.x_eval, data.y_eval, data.x_kpa
    c_eval, c_kpa = _tensor(px_eval), _tensor(px_kpa)
    b = sch.bits
    high = _tensor((px_eval & ~np.uint8((1 << b) - 1)) | np.uint8(1 << (b - 1)))
    log(f"[{clock()}] blind attacks")
    res: dict = {}
    res["blind"], res["blind_best"], outs = blind_section(c_eval, x_eval, 0.8, figs / f"{tag}_blind_best.png",
                                                         {"high digits only (low digits set to 2^(b−1))": high})
    res["blind_chance"] = {k: chance(v) for k, v in outs.items()}
    predict = sch.classifier.predict
    res["kpa"], recs = kpa_section(c_kpa, x_kpa, c_eval, x_eval, y_eval, predict, data.kpa_sizes, sz, 0.8, log)
    for n, rec in recs.items():
        res["kpa"][n]["chance"] = chance(rec)
    res["train_mean_image"] = score(x_kpa.mean(0, keepdim=True).expand_as(x_eval), x_eval)
    save_image(torch.cat([x_eval[:8], c_eval[:8], *(r[:8] for r in recs.values())]), figs / f"{tag}_kpa.png",
               nrow=min(8, len(x_eval)))
    res["cloud"], gen = cloud_section(sch.classifier, predict, c_kpa, x_kpa, c_eval, x_eval, y_eval, sz,
                                      figs / f"{tag}_cloud.png", log)
    res["cloud"]["label_t_agreement"] = float((predict(gen).numpy() == t_eval).mean())
    res["cloud"]["chance"] = chance(gen)
    return res


def evaluate_exact_model(model: str, quick: bool, run: Path, figs: Path, data_root=None,
                         log: Callable = print) -> dict:
    """Every measurement of the exact section for ``exact:<classifier>``; figures ``<classifier>-exact_*.png``."""
    name = _classifier_name(model)
    dataset = bundles.dataset_of(name)
    sz = EXACT_SIZES[(dataset, quick)]
    torch.manual_seed(0)
    sch = ExactScheme(load_classifier(name))
    run = run / f"exact-{name}"
    run.mkdir(parents=True, exist_ok=True)
    tag = f"{name}-exact"
    key, akey = load_or_make_key(run / "victim.key"), load_or_make_key(run / "attacker.key")
    data = attack_data(dataset, sz, data_root)
    t_start = time.time()
    x_u8, x_kpa_u8, x_cal_u8 = (to_pixels(x) for x in (data.x_eval, data.x_kpa, data.x_cal))
    log(f"[{clock()}] {model}: encrypting {len(x_u8)} test, {len(x_kpa_u8)} train and {len(x_cal_u8)} calibration "
        "images")
    px_eval, t_eval, ok_eval = encrypt_exact_cached(sch, key, x_u8, run / "eval.npz", log)
    px_kpa, _, ok_kpa = encrypt_exact_cached(sch, key, x_kpa_u8, run / "train.npz", log)
    px_cal, _, ok_cal = encrypt_exact_cached(sch, akey, x_cal_u8, run / "attacker.npz", log)
    if not (ok_eval.all() and ok_kpa.all() and ok_cal.all()):
        raise RuntimeError(f"{model}: {(~ok_eval).sum() + (~ok_kpa).sum() + (~ok_cal).sum()} images failed to "
                           "encrypt (capacity or label); choose a larger b")
    back = ExactScheme().decrypt(list(px_eval), key)
    res: dict = {"scheme": "exact", "model": model, "classifier": sch.classifier.ident, "dataset": dataset,
                 "bits": sch.bits, "quick": quick, "data": data.description,
                 "bit_exact": float(np.mean([np.array_equal(a, b) for a, b in zip(back, x_u8, strict=True)])),
                 "plaintext_accuracy": float((t_eval == data.y_eval.numpy()).mean()),
                 "majority_class_share": majority_share(data.y_eval.numpy()), "shape": list(px_eval.shape[1:])}
    t_cal = sch._predict(x_cal_u8).numpy()
    log(f"[{clock()}] keyless statistics and the simulation check")
    res["keyless"] = leak_correlations(px_eval, x_u8, 0.8, px_cal, x_cal_u8)
    res["keyless"]["label_reference"] = label_reference(t_cal, x_cal_u8, t_eval, x_u8)
    res["simulation"], px_other, px_sim = _simulation(sch, key, data, px_eval, t_eval, x_u8, px_cal, x_cal_u8, run,
                                                      dataset, data_root, log)
    save_image(torch.cat([data.x_eval[:8], _tensor(px_eval[:8]), _tensor(px_other[:8]), _tensor(px_sim[:8])]),
               figs / f"{tag}_simulation.png", nrow=8)
    log(f"[{clock()}] randomness tests of the sealed low digits")
    res["randomness"] = randomness_tests(np.concatenate([px_eval, px_kpa]))
    _pvalue_figure(res["randomness"], figs / f"{tag}_pvalues.png", log)
    res.update(_attacks(sch, data, px_eval, px_kpa, t_eval, _Chance(data.x_eval, t_eval), sz, figs, tag,
                        log))
    res["seconds"] = time.time() - t_start
    return res


def _pvalue_figure(rt: dict, path: Path, log: Callable) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("matplotlib not installed (pip install -e '.[security]'): no p-value figure")
        return
    fig, axes = plt.subplots(1, 3, figsize=(9, 2.6), sharey=True)
    for ax, k in zip(axes, ("chi_square", "monobit", "runs"), strict=True):
        h = rt[k]["histogram"]
        ax.bar(np.arange(len(h)) / len(h) + 0.05, h, width=0.09)
        ax.axhline(rt[k]["n"] / len(h), color="k", ls="--", lw=1)
        ax.set_title(f"{TEST_NAMES[k]} (n={rt[k]['n']})", fontsize=8)
        ax.set_xlabel("p-value", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
