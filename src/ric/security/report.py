"""The security report (``ric security``): every attack of :mod:`ric.security` on shipped models.

For each model (default: ``DEFAULT_MODELS``; ``QUICK_MODELS`` for a quick run) a fresh victim key encrypts
test images (the attacked ciphertexts) and train images (the adversary's known pairs, and the curious cloud's
ciphertext history), and a key of the attacker's own encrypts other train images (the keyless estimator's
calibration). Encryptions are cached per model in the run folder, so reruns and larger runs reuse them.
Writes ``DOCS/security.md``, figures under ``DOCS/security/`` and ``DOCS/results/security.json`` (``DOCS``: the
``-o`` folder; ``benchmarks/security.py`` fills the repository's ``docs``); a ``--quick`` run writes
``security_quick.md``, ``security/quick/`` and ``results/security_quick.json`` there instead.
A model name ``exact:<classifier>`` runs the exact scheme's section (:mod:`ric.security.exact_report`). The
Markdown comes from the results alone (:func:`ric.security.render.render`).
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
from ric.container import Ciphertext
from ric.eval.metrics import psnr
from ric.imageio import to_pixels
from ric.keys import SecretKey, random_noise_image
from ric.schemes.paper import RIC
from ric.security import (
    as_tensor,
    file_edit_rejection,
    known_plaintext_attack,
    leak_correlations,
    nes_pixel_gradient_norms,
    plaintext_stats,
    score,
    stat_correlations,
    tag_rejection,
    theorem61_heuristic,
)
from ric.security.exact_report import evaluate_exact_model, exact_result_key, is_exact
from ric.security.render import render
from ric.security.runs import (
    attack_data,
    blind_section,
    clock,
    cloud_section,
    kpa_epochs,
    kpa_section,
    load_or_make_key,
    majority_share,
)
from ric.zoo import bundles

# Sizes per (dataset, quick). "all" = the whole train split. Faces ciphertexts are 25x larger than SVHN's
# and every wrong-key decryption reruns the NAE attack, so the faces runs are smaller. n_cal: public images
# the keyless attacker encrypts under a key of its own to calibrate the estimator; kpa_epochs: the
# known-plaintext network (the best held-out epoch is kept); plain_epochs: the bare U-Net baseline on raw
# ciphertexts, at the largest N.
SIZES = {
    ("svhn", False): dict(n_eval=200, n_bf=100, keys_per_ct=10, n_bits=256, kpa=[100, 1000, "all"], kpa_epochs=40,
                          plain_epochs=40, cloud_epochs=30, cloud_size=32, nes_cts=8, nes_dirs=32, n_cal=1000),
    ("svhn", True): dict(n_eval=64, n_bf=16, keys_per_ct=4, n_bits=32, kpa=[100, 300], kpa_epochs=40,
                         plain_epochs=15, cloud_epochs=8, cloud_size=32, nes_cts=2, nes_dirs=16, n_cal=128),
    ("faces", False): dict(n_eval=100, n_bf=100, keys_per_ct=2, n_bits=32, kpa=[100, "all"], kpa_epochs=30,
                           plain_epochs=30, cloud_epochs=25, cloud_size=64, nes_cts=2, nes_dirs=16, kpa_width=16,
                           kpa_crop=64, n_cal=100),
    ("faces", True): dict(n_eval=24, n_bf=8, keys_per_ct=2, n_bits=8, kpa=[100], kpa_epochs=30, plain_epochs=8,
                          cloud_epochs=6, cloud_size=64, nes_cts=1, nes_dirs=8, kpa_width=16, kpa_crop=64, n_cal=48),
}


# Bumped whenever evaluate_model's results change meaning (new attacks or fields): part of the cache key.
RESULT_SCHEMA = 2


# "exact:<classifier>": the exact scheme with that classifier (ric.security.exact_report)
_DEFAULT_PAPER = (bundles.DATASET_MODELS["svhn"], bundles.DATASET_MODELS["faces"])


_EXACT = tuple(f"exact:{bundles.DATASET_CLASSIFIERS[d]}" for d in ("svhn", "faces"))


DEFAULT_MODELS = (*_DEFAULT_PAPER, "svhn-ric", "faces-ric", *_EXACT)


# --quick: the default paper models and the exact scheme on the same two data sets (the duration of the last run is
# in the report's header; the exact ones take about 7 min at one thread, uncached)
QUICK_MODELS = (*_DEFAULT_PAPER, *_EXACT)


def encrypt_cached(ric: RIC, key: SecretKey, x: torch.Tensor, path: Path, log: Callable) -> list[Ciphertext]:
    """Ciphertexts of ``x`` under ``key``, reusing (a prefix of) those cached in ``path``."""
    cts: list[Ciphertext] = []
    if path.is_file():
        d = np.load(path)
        # per-ciphertext model fingerprints; "" for ciphertexts made before the field existed
        fps = [str(f) for f in d["model_fp"]] if "model_fp" in d else [""] * len(d["px"])
        if str(d["classifier"]) == ric.classifier.ident and str(d["model"]) == ric.model_id \
                and set(fps) <= {"", ric.fingerprint}:
            cts = [Ciphertext(p, ric.model_id, bytes(n), int(t), key.key_id, bytes(g), ric.classifier.ident, f)
                   for p, n, t, g, f in zip(d["px"], d["nonce"], d["target"], d["tag"], fps, strict=True)][:len(x)]
    if len(cts) < len(x):
        log(f"encrypting {len(x) - len(cts)} images (cached in {path})")
    step = 32
    for i in range(len(cts), len(x), step):
        res = ric.encrypt(x[i:i + step], key)
        failed = [r for r in res if r.ciphertext is None]
        if failed:
            raise RuntimeError(f"{len(failed)} images failed to encrypt")
        cts += [r.ciphertext for r in res]
        if len(cts) % 512 < step or len(cts) == len(x):
            log(f"  {len(cts)}/{len(x)}")
            np.savez(path, px=np.stack([c.pixels for c in cts]),
                     nonce=np.stack([np.frombuffer(c.nonce, np.uint8) for c in cts]),
                     target=np.array([c.target for c in cts]),
                     tag=np.stack([np.frombuffer(c.tag, np.uint8) for c in cts]),
                     classifier=np.array(ric.classifier.ident), model=np.array(ric.model_id),
                     model_fp=np.array([c.model_fp for c in cts]))
    return cts


def decrypt_pairs(ric: RIC, pairs: list[tuple[SecretKey, Ciphertext]]) -> torch.Tensor:
    """Decrypt each ciphertext with its own key (tag check off), batching the NAE work across keys."""
    shape = (pairs[0][1].pixels.shape[2], *pairs[0][1].pixels.shape[:2])
    z0 = torch.stack([random_noise_image(k, ct.nonce, shape) for k, ct in pairs])
    z = ric.nae_from_rni(z0, torch.tensor([ct.target for _, ct in pairs]))
    perm = (torch.cat([ric.perms(k, [ct.nonce], shape) for k, ct in pairs]) if ric.scramble else None)
    return ric.decode_with(as_tensor([ct for _, ct in pairs]), z, perm)


def _histogram(ps_rand, ps_bits, right: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.hist(ps_rand, bins=30, alpha=0.7, label=f"random wrong keys (n={len(ps_rand)})")
    ax.hist(ps_bits, bins=30, alpha=0.7, label=f"one bit away (n={len(ps_bits)})")
    ax.axvline(right, color="k", ls="--", label=f"right key (mean {right:.1f} dB)")
    ax.set_xlabel("PSNR to the plaintext (dB)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _brute_force(ric: RIC, key: SecretKey, cts_eval, x_eval, right, sz: dict, figs: Path, model: str,
                 log: Callable) -> tuple[dict, np.ndarray, np.ndarray]:
    """Random and one-bit-away wrong keys: (result, PSNRs of random keys, PSNRs of one-bit keys)."""
    n_bf = min(sz["n_bf"], len(cts_eval))
    kpc = sz["keys_per_ct"]
    log(f"[{clock()}] brute force: {n_bf} ciphertexts x {kpc} random keys; {sz['n_bits']} one-bit-away keys")
    rng = np.random.default_rng(0)
    rand_pairs = [(SecretKey.generate(), cts_eval[i]) for i in range(n_bf) for _ in range(kpc)]
    bits = sorted(rng.choice(256, size=sz["n_bits"], replace=False).tolist())
    bit_pairs = [(key.flip_bit(b), cts_eval[j % n_bf]) for j, b in enumerate(bits)]
    xr = torch.cat([decrypt_pairs(ric, rand_pairs[i:i + 64]) for i in range(0, len(rand_pairs), 64)])
    ps_rand = psnr(xr, torch.stack([x_eval[i] for i in range(n_bf) for _ in range(kpc)])).numpy()
    xb = torch.cat([decrypt_pairs(ric, bit_pairs[i:i + 64]) for i in range(0, len(bit_pairs), 64)])
    ps_bits = psnr(xb, torch.stack([x_eval[j % n_bf] for j in range(len(bits))])).numpy()
    right_bf = psnr(right[:n_bf], x_eval[:n_bf]).mean().item()

    def summary(p):
        return {"mean": float(p.mean()), "min": float(p.min()), "max": float(p.max())}

    res = {"ciphertexts": n_bf, "random_keys": len(rand_pairs), "random_key_psnr_db": summary(ps_rand),
           "one_bit_keys": len(bits), "one_bit_psnr_db": summary(ps_bits), "right_key_psnr_db": right_bf}
    k8 = min(8, n_bf)
    save_image(torch.cat([x_eval[:k8], xr[:k8 * kpc:kpc], xb[:k8], right[:k8]]), figs / f"{model}_brute_force.png",
               nrow=k8)
    try:
        _histogram(ps_rand, ps_bits, right_bf, figs / f"{model}_brute_force_hist.png")
    except ImportError:
        log("matplotlib not installed (pip install -e '.[security]'): no histogram")
    return res, ps_rand, ps_bits


def _theorem61(ric: RIC, key: SecretKey, cts_eval, d: int, max_wrong: float, sz: dict, log: Callable) -> dict:
    log(f"[{clock()}] Theorem 6.1: NES gradient norms on {sz['nes_cts']} ciphertexts x {sz['nes_dirs']} directions")
    norms = torch.stack([nes_pixel_gradient_norms(ric, cts_eval[i], key, sz["nes_dirs"], seed=i)
                         for i in range(sz["nes_cts"])])
    return {"ciphertexts": sz["nes_cts"], "directions": sz["nes_dirs"], "sigma": 1e-3,
            "grad_norm_max": float(norms.max()), "grad_norm_mean": float(norms.mean()),
            "at_measured_max": theorem61_heuristic(float(norms.max()), d, max_wrong),
            "at_30db": theorem61_heuristic(float(norms.max()), d, 30.0), "measured_max_wrong_key_psnr_db": max_wrong}


def _kpa_plain(c_kpa, x_kpa, c_eval, x_eval, y_eval, predict: Callable, n: int, sz: dict, log: Callable) -> dict:
    log(f"[{clock()}] the plain U-Net baseline, N = {n}, for comparison")
    t0 = time.time()
    ep = kpa_epochs(n, sz["plain_epochs"])
    crop = sz.get("kpa_crop")
    rec = known_plaintext_attack(c_kpa[:n], x_kpa[:n], c_eval, epochs=ep, width=sz.get("kpa_width", 32), crop=crop,
                                 batch_size=32 if crop else 64, plain=True)
    truth = plaintext_stats(to_pixels(x_eval))
    return {**score(rec, x_eval), "pairs": n, "epochs": ep, "seconds": time.time() - t0,
            "classifier_accuracy_on_reconstructions": (predict(rec) == y_eval).float().mean().item(),
            "stats_reconstruction": stat_correlations(plaintext_stats(to_pixels(rec)), truth)}


def evaluate_model(model: str, quick: bool, run: Path, figs: Path, data_root=None, log: Callable = print) -> dict:
    """All four threat models on one shipped model; figures go to ``figs`` as ``<model>_*.png``."""
    dataset = bundles.dataset_of(model)
    sz = SIZES[(dataset, quick)]
    torch.manual_seed(0)
    ric = RIC.load(model)
    cfg = bundles.read_config(bundles.resolve(model, "ric"))
    run.mkdir(parents=True, exist_ok=True)
    key = load_or_make_key(run / f"{model}-victim.key")
    data = attack_data(dataset, sz, data_root)
    x_eval, y_eval, x_kpa = data.x_eval, data.y_eval, data.x_kpa
    t_start = time.time()
    log(f"[{clock()}] {model}: encrypting {len(x_eval)} test and {len(x_kpa)} train images")
    cts_eval = encrypt_cached(ric, key, x_eval, run / f"{model}-eval.npz", log)
    cts_kpa = encrypt_cached(ric, key, x_kpa, run / f"{model}-train.npz", log)
    c_eval, c_kpa = as_tensor(cts_eval), as_tensor(cts_kpa)
    # the keyless attacker's calibration pairs: public images encrypted with the public model under a key the
    # attacker made itself (not the victim's)
    akey = load_or_make_key(run / f"{model}-attacker.key")
    log(f"[{clock()}] {model}: encrypting {len(data.x_cal)} calibration images under the attacker's own key")
    cts_cal = encrypt_cached(ric, akey, data.x_cal, run / f"{model}-attacker.npz", log)
    right = ric.decrypt(cts_eval, key)
    res: dict = {"model": model, "dataset": dataset, "weights_sha256": cfg.get("weights_sha256") or
                 cfg.get("codec_weights_sha256"), "quick": quick, "data": data.description,
                 "right_key_psnr_db": psnr(right, x_eval).mean().item(),
                 "plaintext_accuracy": (ric.predict(x_eval) == y_eval).float().mean().item(),
                 "majority_class_share": majority_share(y_eval.numpy())}
    # 1. brute force, key sensitivity, tags, Theorem 6.1
    res["brute_force"], ps_rand, ps_bits = _brute_force(ric, key, cts_eval, x_eval, right, sz, figs, model, log)
    n_bf = res["brute_force"]["ciphertexts"]
    res["tags"] = tag_rejection(cts_eval[:n_bf], key, [SecretKey.generate() for _ in range(1000)])
    res["file_edits"] = file_edit_rejection(cts_eval[:n_bf], key, run / "edits")
    res["theorem61"] = _theorem61(ric, key, cts_eval, int(c_eval[0].numel()),
                                  float(max(ps_rand.max(), ps_bits.max())), sz, log)
    # 0. what the ciphertext alone reveals
    log(f"[{clock()}] keyless estimator of brightness and value histogram")
    res["keyless"] = leak_correlations(np.stack([ct.pixels for ct in cts_eval]), to_pixels(x_eval), ric.alpha,
                                       np.stack([ct.pixels for ct in cts_cal]), to_pixels(data.x_cal))
    # 2. blind attacks
    log(f"[{clock()}] blind attacks")
    res["blind"], res["blind_best"], _ = blind_section(c_eval, x_eval, ric.alpha, figs / f"{model}_blind_best.png")
    # 3. known-plaintext attack (KPANet at every N, the plain U-Net baseline at the largest)
    res["kpa"], recs = kpa_section(c_kpa, x_kpa, c_eval, x_eval, y_eval, ric.predict, data.kpa_sizes, sz,
                                   ric.alpha, log)
    res["kpa_plain"] = _kpa_plain(c_kpa, x_kpa, c_eval, x_eval, y_eval, ric.predict, data.kpa_sizes[-1], sz, log)
    save_image(torch.cat([x_eval[:8], c_eval[:8], *(r[:8] for r in recs.values())]), figs / f"{model}_kpa.png",
               nrow=min(8, len(x_eval)))
    # 4. curious cloud (unpaired real images of the domain: never paired with their ciphertexts)
    res["cloud"], _ = cloud_section(ric.classifier, ric.predict, c_kpa, x_kpa, c_eval, x_eval, y_eval, sz,
                                    figs / f"{model}_cloud.png", log)
    res["seconds"] = time.time() - t_start
    return res


def result_key(model: str, quick: bool) -> dict:
    """What a cached result depends on: the model's full settings fingerprint (:attr:`RIC.fingerprint`:
    codec weights, α, NAE attack, scrambling), its classifier, the sample sizes, the package version and
    :data:`RESULT_SCHEMA`. A cached result is reused only if all of them are equal."""
    ric = RIC.load(model)
    key = {"model_fp": ric.fingerprint, "classifier": ric.classifier.ident,
           "sizes": SIZES[(bundles.dataset_of(model), quick)], "version": __version__, "schema": RESULT_SCHEMA}
    return json.loads(json.dumps(key))  # as it reads back from the cache file


def run_security(models: list[str] | None, quick: bool, run: str | Path, docs: str | Path, data_root=None,
                 command: str = "", log: Callable = print,
                 fresh: bool = False) -> dict:
    """Evaluate ``models`` and write the report. A model's finished result is kept in the run folder
    (``<model>-result.json``) and reused by a rerun only while its :func:`result_key` is unchanged
    (``fresh=True`` recomputes)."""
    import platform

    models = models or list(QUICK_MODELS if quick else DEFAULT_MODELS)
    docs = Path(docs)
    sub = "security/quick" if quick else "security"
    figs = docs / sub
    figs.mkdir(parents=True, exist_ok=True)
    run = Path(str(run) + ("-quick" if quick else ""))
    report = {"command": command, "quick": quick, "models": {}, "figures": sub,
              "machine": f"{platform.machine()} cpu, torch {torch.__version__}, {torch.get_num_threads()} threads"}
    run.mkdir(parents=True, exist_ok=True)
    for m in models:
        cache = run / f"{m.replace(':', '-')}-result.json"
        rk = exact_result_key(m, quick) if is_exact(m) else result_key(m, quick)
        if cache.is_file() and not fresh:
            cached = json.loads(cache.read_text())
            if cached.get("cache_key") == rk:
                log(f"[{clock()}] {m}: reusing the finished result in {cache}")
                report["models"][m] = cached
                continue
            log(f"[{clock()}] {m}: the cached result in {cache} is for other settings, sizes or version: recomputing")
        evaluate = evaluate_exact_model if is_exact(m) else evaluate_model
        report["models"][m] = {**evaluate(m, quick, run, figs, data_root, log), "cache_key": rk}
        cache.write_text(json.dumps(report["models"][m], indent=1) + "\n")
    report["seconds"] = sum(r["seconds"] for r in report["models"].values())  # compute time, cached included
    out = docs / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"security{'_quick' if quick else ''}.json").write_text(json.dumps(report, indent=1) + "\n")
    sk = docs / "results/scramble_kpa.json"
    if sk.is_file():
        report["scramble_kpa"] = json.loads(sk.read_text())
    md = docs / f"security{'_quick' if quick else ''}.md"
    md.write_text(render(report))
    log(f"[{clock()}] wrote {md}")
    return report
