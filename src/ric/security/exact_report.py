"""The ``exact`` section of ``ric security``: the scheme's attacks on real data, and its markdown.

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
from ric.security import STATS, leak_correlations, score
from ric.security.exact import (
    distinguish,
    distinguisher_features,
    label_reference,
    matched_partners,
    randomness_tests,
    simulate_ciphertexts,
)
from ric.security.report import (
    MEAN_COLOUR,
    attack_data,
    blind_section,
    clock,
    cloud_section,
    kpa_section,
    load_or_make_key,
    majority_share,
)
from ric.zoo import bundles

PREFIX = "exact:"
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


TEST_NAMES = {"chi_square": "chi-square of the b-bit digits", "monobit": "NIST frequency (monobit)",
              "runs": "NIST runs"}


# ---------------------------------------------------------------------------------------------- report
def _cal(k: dict, s: str) -> float:
    """The calibrated keyless correlation (the analytic one, written for the blend, where not calibrated)."""
    return k.get("calibrated", k["analytic"]).get(s, float("nan"))


def _p(d: dict) -> str:
    """The permutation p-value; at its floor, the floor and how many relabellings scored less."""
    n = d.get("permutations", 0)
    if n and d["p_value"] <= 1 / (1 + n) + 1e-12:
        return f"≤ {1 / (1 + n):.3f} (all {n} relabellings scored less)"
    return f"{d['p_value']:.3f}"


def _acc(d: dict, with_p: bool = True) -> str:
    lo, hi = d["band_95"]
    return (f"{100 * d['accuracy']:.1f} % (chance: {100 * d['chance']:.1f} %, 95 % band {100 * lo:.1f}–"
            f"{100 * hi:.1f} %" + (f", p {'= ' if d['p_value'] > 0.01 else ''}{_p(d)})" if with_p else ")"))


def _paper_of(r: dict, paper: dict) -> tuple[str, dict] | None:
    m = bundles.DATASET_MODELS.get(r["dataset"])
    return (m, paper[m]) if m in paper and "keyless" in paper[m] else None


def exact_summary(m: str, r: dict, paper: dict) -> list[str]:
    """One exact model's measured lines for the overview."""
    from ric.security.report import STAT_NAMES, num

    k, sim, rt = r["keyless"], r["simulation"], r["randomness"]
    kb = max(r["kpa"], key=lambda n: r["kpa"][n]["ssim"])
    kv, ref = r["kpa"][kb], r["blind"][MEAN_COLOUR]
    best, bch = r["blind"][r["blind_best"]], r["blind_chance"][r["blind_best"]]
    po = _paper_of(r, paper)
    vs = f" (scheme `paper`, `{po[0]}`: " + ", ".join(
        f"{num(max(po[1]['keyless']['analytic'][s], po[1]['keyless'].get('calibrated', {}).get(s, -1)))}"
        for s in STATS) + f", N = {po[1]['keyless']['n']})" if po else ""
    return [f"**`{m}`** ({r['dataset']}, b = {r['bits']}, {r['shape'][0]}×{r['shape'][1]}×{r['shape'][2]}; "
            f"{k['n']} attacked test images; bit-exact recovery with the right key: {100 * r['bit_exact']:.0f} %)", "",
            "- Keyless statistics, calibrated on the attacker's own pairs (r with the plaintext's "
            f"{', '.join(STAT_NAMES[s] for s in STATS)}): "
            + ", ".join(num(_cal(k, s)) for s in STATS) + f"; noise level ±{k['noise_band_95']:.3f}" + vs
            + "; the label alone gives " + ", ".join(num(k["label_reference"][s]) for s in STATS) + ".",
            f"- Simulation check: a logistic-regression distinguisher on {sim['distinguisher_simulated']['features']} "
            f"keyless features tells real ciphertexts from ciphertexts made from the label alone with "
            f"{_acc(sim['distinguisher_simulated'])}, and from ciphertexts of other images with the same labels with "
            f"{_acc(sim['distinguisher_other'])}; the same distinguisher catches a broken variant (the plaintext's own "
            f"low bits in place of the sealed payload) with {100 * sim['distinguisher_control']['accuracy']:.1f} %.",
            f"- Randomness of the sealed low digits ({rt['ciphertexts']} ciphertexts, {rt['bits_per_ciphertext']:,} "
            "bits each): p < 0.01 for " + ", ".join(
                f"{100 * rt[t]['share_below_0.01']:.2f} % ({TEST_NAMES[t]})" for t in TEST_NAMES)
            + " (≈ 1 % expected).",
            f"- Blind filters (best, with the oracle gain/offset fit): SSIM {_vs(best, bch, 'ssim_fit')}; "
            f"mean-colour oracle {ref['ssim_fit']:.3f}.",
            f"- Known plaintext (N = {kb} pairs): SSIM {_vs(kv, kv['chance'], 'ssim')}; mean-colour oracle "
            f"{ref['ssim']:.3f}, the training pairs' mean image {r['train_mean_image']['ssim']:.3f}; the classifier "
            f"labels {100 * kv['classifier_accuracy_on_reconstructions']:.1f} % of the reconstructions correctly "
            f"(always answering the most common class: {100 * r['majority_class_share']:.1f} %).",
            f"- Curious cloud: SSIM {_vs(r['cloud'], r['cloud']['chance'], 'ssim')}; the classifier gives its images "
            f"the ciphertext's label {100 * r['cloud']['label_t_agreement']:.1f} % of the time.", ""]


def _vs(v: dict, chance: dict, key: str, margin: float = 0.02) -> str:
    """``v[key]`` against the plaintexts, another image with the same label and a shuffled pairing, and a verdict:
    chance level when within ``margin`` of the same-label pairing (what the label alone allows)."""
    a, same, sh = v[key], chance["same_label"][key], chance["shuffled"][key]
    verdict = ("chance level" if a <= same + margin else
               f"**{a - same:.3f} above the same-label pairing: more than the label leaks**")
    return (f"{a:.3f} against the plaintexts, {same:.3f} against another image with the same label, {sh:.3f} against "
            f"a shuffled pairing ({verdict})")


ARGUMENT = """A ciphertext is c = 2^b·q + m, one digit pair per sub-pixel.

- **m** (the b low bits) is `b` (3 bits in sub-pixel 0), a public header (magic `RX`, version, key id, nonce),
  then ChaCha20-Poly1305 output under HKDF(key, "ric/exact/aead" ‖ nonce) of the losslessly compressed plaintext,
  length-prefixed and zero-padded to the full capacity, so its length does not depend on the image either.
  Without the key, AEAD output is indistinguishable from random bits.
- **q** (the 8 − b high digits) starts from keyed random digits (HKDF(key, "ric/exact/q" ‖ nonce), independent of
  x) and is moved by a margin attack whose only inputs are the public classifier, the target t = C(x) and m. So q
  depends on x only through t (and m and the nonce's randomness).
- Hence a simulator that knows only t, the size, b and the key id, writing random bytes in place of the sealed
  payload and starting from its own random digits (`ric.security.exact.simulate_ciphertexts`), outputs ciphertexts
  distributed like the real ones, up to the security of ChaCha20-Poly1305 and HKDF-SHA256. Whatever an attacker
  computes from c it could compute from t alone: nothing about x beyond its label and size leaks.
- **What still leaks**, by design: the label t (the cloud reads it, and anything that correlates with the label,
  e.g. a class's typical brightness: the "label alone" rows), the image size, b, the key id (which ciphertexts
  share a key), the number of images, and that the file is a RIC ciphertext (the public header in the pixels; the
  PNG's text chunks repeat scheme, b, classifier, nonce, target and key id). An image that does not fit the
  capacity is refused at encryption, which tells the encrypting user (not the cloud) that it compresses poorly.

The measurements below test the argument on real data; they cannot prove it (a proof is the reduction above)."""


def exact_overview(exact: dict, paper: dict) -> list[str]:
    """The exact scheme's part at the top of the report: the argument, then each model's measured lines."""
    lines = ["## Scheme `exact` (the default): the ciphertext reveals the label and the size", "", ARGUMENT, "",
             "**Measured** (details in the `exact:` sections at the end; the paper scheme's numbers follow "
             "after this part):", ""]
    for m, r in exact.items():
        lines += exact_summary(m, r, paper)
    return lines


def _keyless_table(r: dict, paper: dict) -> str:
    from ric.security.report import STAT_NAMES, keyless_best, num

    k, sim = r["keyless"], r["simulation"]
    po = _paper_of(r, paper)
    kb = max(r["kpa"], key=lambda n: r["kpa"][n]["ssim"])
    head = r["kpa"][kb].get("stats_head", {})
    pcol = f" paper `{po[0]}` (N = {po[1]['keyless']['n']}) |" if po else ""
    rows = [f"| {STAT_NAMES[s]} | {num(k['analytic'][s])} | {num(_cal(k, s))} | {num(_cal(sim['keyless_other'], s))} | "
            f"{num(_cal(sim['keyless_simulated'], s))} | {num(k['label_reference'][s])} | {num(head.get(s))} |"
            + (f" {num(keyless_best(po[1]['keyless'], s))} |" if po else "") for s in STATS]
    return (f"| statistic | analytic r | calibrated r | other images, same labels | simulated from the label | "
            f"label alone | KPA statistics head (N = {kb}) |{pcol}\n|---|---|---|---|---|---|---|"
            + ("---|" if po else "") + "\n" + "\n".join(rows))


def _randomness_table(rt: dict) -> str:
    rows = []
    for t, name in TEST_NAMES.items():
        d = rt[t]
        rows.append(f"| {name} | {d['n']} | {100 * d['share_below_0.01']:.2f} % ({100 * d['band_95'][0]:.2f}–"
                    f"{100 * d['band_95'][1]:.2f} %) | {d['uniformity_p']:.3f} | "
                    f"{' '.join(map(str, d['histogram']))} | {d['min']:.2g} / {d['median']:.2f} |")
    return ("| test | ciphertexts | p < 0.01 (95 % band for random data) | uniformity of the p-values (NIST, "
            "10 bins) | p-value histogram, 10 bins from 0 | min / median p |\n|---|---|---|---|---|---|\n"
            + "\n".join(rows))


def _attack_tables(r: dict) -> tuple[str, str]:
    from ric.security.report import blind_name

    ch = r["blind_chance"]

    def cells(v, c, key):
        return f"{v[key]:.3f} | {c['same_label'][key]:.3f} | {c['shuffled'][key]:.3f}"

    blind = "\n".join(f"| {blind_name(n)} | {cells(v, ch[n], 'ssim_fit')} | {v['psnr_fit_db']:.2f} |"
                      for n, v in r["blind"].items() if n in ch)
    ref = r["blind"][MEAN_COLOUR]
    blind += f"\n| {MEAN_COLOUR} | {ref['ssim_fit']:.3f} | — | — | {ref['psnr_fit_db']:.2f} |"
    kpa = "\n".join(f"| {n} | {cells(v, v['chance'], 'ssim')} | {v['psnr_db']:.2f} | "
                    f"{100 * v['classifier_accuracy_on_reconstructions']:.1f} % | {v['epochs']} |"
                    for n, v in r["kpa"].items())
    tm = r["train_mean_image"]
    kpa += (f"\n| mean-colour oracle | {ref['ssim']:.3f} | — | — | {ref['psnr_db']:.2f} | — | — |"
            f"\n| the training pairs' mean image | {tm['ssim']:.3f} | — | — | {tm['psnr_db']:.2f} | — | — |")
    return blind, kpa


def _distinguisher_rows(sim: dict) -> str:
    return "\n".join(f"| {name} | {sim[key]['n']} | {_acc(sim[key], False)} | {_p(sim[key])} |" for name, key in (
        ("real vs other images with the same labels", "distinguisher_other"),
        ("real vs simulated from the label alone", "distinguisher_simulated"),
        ("control: real vs the plaintext's own low bits in place of the payload", "distinguisher_control")))


def exact_section(r: dict, paper: dict, figs: str = "security") -> str:
    """The detailed section of one exact model."""
    from ric.security.report import kpa_setup

    m, k, sim, rt, cl = r["model"], r["keyless"], r["simulation"], r["randomness"], r["cloud"]
    tag = f"{figs}/{m[len(PREFIX):]}-exact"
    blind, kpa = _attack_tables(r)
    return f"""## `{m}` ({r['dataset']}, scheme `exact`, b = {r['bits']})

Data: {r['data']}. Classifier `{r['classifier']}`; bit-exact recovery with the right key:
{100 * r['bit_exact']:.0f} % of the {k['n']} attacked ciphertexts; classifier accuracy on the plaintexts
{100 * r['plaintext_accuracy']:.1f} % (the label the ciphertexts carry); {r['seconds'] / 60:.1f} min.

### E0. Keyless statistics
Pearson r of each plaintext statistic with its estimate from the ciphertext alone, over {k['n']} test images;
|r| ≤ {k['noise_band_95']:.3f} is noise level. *Analytic*: the paper scheme's estimator (written for its blend,
α = 0.8). *Calibrated*: the ridge regression fitted on {k.get('fit_pairs', 0)} public images the attacker
encrypted under a key of its own. The next two columns apply the calibrated estimator to ciphertexts of *other*
images with the same labels ({sim['other_matched']} matched, under the victim's key) and to ciphertexts simulated
from the labels alone, against the same plaintexts: the real ciphertexts should do no better. *Label alone*: each
image's statistic predicted by its label's mean over the attacker's images (what the scheme reveals by design). The
last column is the paper scheme's keyless estimator (the better of its two forms) on the same data set.

{_keyless_table(r, paper)}

### E1. Simulation check
A logistic regression (ridge 1) on {sim['distinguisher_simulated']['features']} keyless features per ciphertext (the
keyless estimator's features, the histogram of the high digits, per-channel means and standard deviations of both
digits, neighbouring high-digit differences) tries to tell two sets of equal size apart, 5-fold cross-validated
with each label's ciphertexts in one fold (the high digits carry the label, so the features cluster by label).
Chance is measured, not assumed: the same procedure on {sim['distinguisher_simulated'].get('permutations', 0)}
relabellings that swap set membership within each label gives the band and the one-sided p-value. The simulated
ciphertexts carry their labels ({100 * sim['simulated_hit']:.0f} % hit with the scheme's margin). The control shows
that the distinguisher has power.

| sets | ciphertexts | accuracy (chance from relabellings) | p |
|---|---|---|---|
{_distinguisher_rows(sim)}

Rows: plaintext; its ciphertext; the ciphertext of another image with the same label; a ciphertext simulated from
the label alone. ![simulation]({tag}_simulation.png)

### E2. Randomness of the sealed low digits
The low digits of every ciphertext after sub-pixel 0 and the public header ({rt['digits_per_ciphertext']:,} digits,
{rt['bits_per_ciphertext']:,} bits per ciphertext): chi-square uniformity of the b-bit digits ({rt['chi_square_p']}),
NIST SP 800-22 frequency (monobit) and runs tests on the bit stream, one p-value per ciphertext and test. For
random data about 1 % of the p-values fall below 0.01, and NIST accepts the p-values as uniform when the
uniformity p-value is at least 0.0001.

{_randomness_table(rt)}

![p-values]({tag}_pvalues.png)

### E3. Blind filters
SSIM and PSNR with the oracle gain/offset fit, against the plaintexts; SSIM also against another image with the
same label and against a shuffled pairing of the test images (chance).

| filter | SSIM fit | SSIM fit, same label | SSIM fit, shuffled | PSNR fit |
|---|---|---|---|---|
{blind}

Rows: plaintext, ciphertext, best filter, same with the oracle fit. ![blind]({tag}_blind_best.png)

### E4. Known-plaintext network (N pairs under the victim's key)
{kpa_setup(r)}

| pairs N | SSIM | SSIM, same label | SSIM, shuffled | PSNR | classifier accuracy on reconstructions | epochs |
|---|---|---|---|---|---|---|
{kpa}

Always answering the most common class: {100 * r['majority_class_share']:.1f} %. Rows: plaintext, ciphertext,
reconstructions. ![kpa]({tag}_kpa.png)

### E5. Curious cloud
Trained on {cl['ciphertexts']} ciphertexts and the classifier only ({cl['epochs']} epochs, generator at
{cl['size']}×{cl['size']}): SSIM {_vs(cl, cl['chance'], 'ssim')}; PSNR {cl['psnr_db']:.2f} dB. The classifier gives
the generated images the ciphertext's label {100 * cl['label_t_agreement']:.1f} % of the time and the true label
{100 * cl['classifier_accuracy_on_reconstructions']:.1f} %. Rows: plaintext, ciphertext, generated.
![cloud]({tag}_cloud.png)
"""
