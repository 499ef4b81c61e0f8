"""The attack code on tiny data: it must be able to succeed where there is a leak, so that a failure on
real ciphertexts means something."""

import numpy as np
import pytest
import torch

from ric.container import Ciphertext
from ric.eval.metrics import psnr
from ric.imageio import to_pixels
from ric.keys import SecretKey, new_nonce
from ric.security import (
    blind_attacks,
    known_plaintext_attack,
    mean_colour_baseline,
    score,
    tag_rejection,
    wrong_key_psnr,
)


def smooth_images(n, size, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.nn.functional.interpolate(torch.rand(n, 3, 4, 4, generator=g), size=size, mode="bilinear",
                                           align_corners=False)


def test_tag_rejection(key):
    rng = np.random.default_rng(0)
    cts = [Ciphertext(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8), "m", new_nonce(), 1, "").sign(key)
           for _ in range(5)]
    r = tag_rejection(cts, key, [SecretKey.generate() for _ in range(3)])
    assert r["right_key_accepted"] == 1.0 and r["wrong_keys_rejected"] == 1.0 and r["wrong_key_trials"] == 15
    assert all(v == 1.0 for v in r["tampered_rejected"].values())


def test_blind_attacks_find_a_leaky_cipher():
    torch.manual_seed(0)
    x = smooth_images(4, 32)
    leaky = (0.8 * torch.rand_like(x) + 0.2 * x)  # plaintext added under uniform noise
    out = blind_attacks(leaky)
    assert all(v.shape == x.shape and torch.isfinite(v).all() for v in out.values())
    ref = score(mean_colour_baseline(x), x)
    best = max(score(v, x)["ssim_fit"] for v in out.values())
    assert best > ref["ssim_fit"] + 0.1  # a low-pass filter exposes an additive leak
    assert score(x, x)["psnr_db"] > 90


from ric.security.blind import median_filter  # noqa: E402


def test_median_filter():
    c = torch.arange(25.0).view(1, 1, 5, 5)
    m = median_filter(c, 3)
    assert m.shape == c.shape and m[0, 0, 2, 2] == 12


def test_known_plaintext_attack_learns_a_simple_cipher():
    torch.manual_seed(0)
    x = smooth_images(160, 16)
    c = 1 - x  # invertible, keyless "cipher"
    rec = known_plaintext_attack(c[:128], x[:128], c[128:], epochs=20, width=8, batch_size=16)
    assert psnr(rec, x[128:]).mean() > psnr(mean_colour_baseline(x[128:]), x[128:]).mean() + 3


def test_wrong_key_psnr_shape(tiny_ric, samples, key):
    x = samples[1][:2]
    cts = [r.ciphertext for r in tiny_ric.encrypt(x, key)]
    ok = [i for i, c in enumerate(cts) if c is not None]
    assert ok, "no ciphertext to decrypt: the shape check below would be vacuous"
    out = wrong_key_psnr(tiny_ric, [cts[i] for i in ok], x[ok], [SecretKey.generate(), key])
    assert out.shape == (2, len(ok))
    assert (out[1] > out[0] + 5).all()  # the right key (row 1) beats a random key (row 0), even untrained


def test_nes_gradient_norm_matches_a_known_decryption():
    """With no attack (NAE = RNI) and the identity codec, x̂ = (c − αz)/(1−α): every pixel's gradient with
    respect to the RNI has norm α/(1−α) = 4 exactly; the estimate must find it."""
    from ric.classifiers import load_classifier
    from ric.codec import make_codec
    from ric.keys import random_noise_image
    from ric.schemes.paper import RIC
    from ric.security import nes_pixel_gradient_norms

    key = SecretKey(bytes(range(32)))
    ric = RIC(make_codec({"name": "identity"}), load_classifier("svhn-cnn7"), alpha=0.8, attack={"name": "none"})
    nonce = new_nonce()
    z = random_noise_image(key, nonce, (3, 8, 8))
    c = (0.8 * z + 0.2 * 0.5).permute(1, 2, 0).numpy()  # recovered image = 0.5 everywhere (no clamping)
    ct = Ciphertext(np.round(c * 255).astype(np.uint8), "m", nonce, 1, key.key_id)
    n = nes_pixel_gradient_norms(ric, ct, key, directions=256, sigma=1e-3)
    assert n.shape == (3 * 8 * 8,)
    assert abs(n.median().item() - 4.0) < 0.4 and (n - 4.0).abs().max() < 1.5


def test_theorem61_heuristic_ball():
    import math

    from ric.security import ball_log10_volume, theorem61_heuristic

    assert abs(ball_log10_volume(1 / math.sqrt(math.pi), 2)) < 1e-9  # unit-area disc
    b = theorem61_heuristic(grad_norm=2.0, d=3072, tau_db=20.0)
    assert abs(b["radius"] - 0.05) < 1e-12 and b["log10_ball_volume"] < -1000
    assert abs(ball_log10_volume(b["unit_ball_radius"], 3072)) < 1e-6


def test_curious_cloud_attack_learns_the_class():
    """On a toy domain where the class is the image's brightness, the generator learns to produce images
    the classifier puts in the ciphertext's class (the part of Appendix B's objective that must work)."""
    from ric.security import curious_cloud_attack

    torch.manual_seed(0)

    class Bright(torch.nn.Module):
        def forward(self, x):
            m = x.mean((1, 2, 3))
            return torch.stack([(0.5 - m) * 20, (m - 0.5) * 20], 1)

    clf = Bright()
    y = torch.arange(96) % 2
    real = (0.25 + 0.5 * y.float()).view(-1, 1, 1, 1) + 0.05 * torch.randn(96, 3, 16, 16)
    c = real.clamp(0, 1)  # a leaky "cipher" whose class is visible
    gen = curious_cloud_attack(clf, c[:64], real.clamp(0, 1), c[64:], size=16, width=8, latent=16, epochs=15,
                               batch_size=16, lr=1e-3)
    assert gen.shape == c[64:].shape and torch.isfinite(gen).all()
    assert (clf(gen).argmax(1) == y[64:]).float().mean() >= 0.9


def test_known_plaintext_attack_on_patches_reconstructs_whole_images():
    torch.manual_seed(0)
    x = smooth_images(96, 24)
    c = 1 - x
    rec = known_plaintext_attack(c[:64], x[:64], c[64:], epochs=25, width=8, batch_size=16, crop=12)
    assert rec.shape == x[64:].shape
    assert psnr(rec, x[64:]).mean() > psnr(mean_colour_baseline(x[64:]), x[64:]).mean() + 3


def _fake_result(kpa_ssim, keyless=True):
    sc = {"psnr_db": 18.0, "ssim": 0.27, "psnr_fit_db": 18.0, "ssim_fit": 0.27}
    bound = {"gradient_norm": 10.0, "d": 3072, "tau_db": 6.0, "radius": 0.05, "log10_ball_volume": -5000.0,
             "unit_ball_radius": 13.4, "tau_unit_ball_db": -40.0}
    corr = {"mean": 0.997, "std": 0.79, "dark": 0.987, "bright": 0.98}
    r = {"model": "m", "dataset": "svhn", "data": "d", "weights_sha256": "ab", "seconds": 60, "quick": True,
         "right_key_psnr_db": 41.0, "plaintext_accuracy": 0.9,
         "brute_force": {"ciphertexts": 2, "random_keys": 4, "one_bit_keys": 2, "right_key_psnr_db": 41.0,
                         "random_key_psnr_db": {"mean": 6, "min": 5, "max": 6.5},
                         "one_bit_psnr_db": {"mean": 6, "min": 5, "max": 6.5}},
         "tags": {"right_key_accepted": 1.0, "wrong_keys_rejected": 1.0, "wrong_key_trials": 8,
                  "tampered_rejected": {"pixel bit": 1.0}, "tamper_trials": 2},
         "theorem61": {"ciphertexts": 1, "directions": 8, "grad_norm_max": 10.0, "grad_norm_mean": 5.0,
                       "at_measured_max": bound, "at_30db": bound, "measured_max_wrong_key_psnr_db": 6.5},
         "blind": {"median 3×3": dict(sc), "oracle: the plaintext's own mean colour": dict(sc)},
         "blind_best": "median 3×3",
         "kpa": {"100": {**sc, "ssim": kpa_ssim, "classifier_accuracy_on_reconstructions": 0.2, "epochs": 5,
                         "stats_reconstruction": dict(corr), "stats_head": dict(corr)}},
         "kpa_plain": {**sc, "pairs": 100, "epochs": 5, "classifier_accuracy_on_reconstructions": 0.1,
                       "stats_reconstruction": dict(corr)},
         "cloud": {**sc, "ciphertexts": 10, "epochs": 1, "size": 32, "classifier_accuracy_on_reconstructions": 0.1},
         "file_edits": {"files": 2, "lossless_reencode_accepted": 1.0,
                        "edits": {"key-id edited": {"files": 2, "rejected": 2, "by": {"AuthenticationError": 2}}}}}
    if keyless:
        r["keyless"] = {"n": 64, "noise_band_95": 0.245, "alpha": 0.8, "analytic": dict(corr),
                        "calibrated": dict(corr), "calibrated_mae": dict(corr), "truth_spread": dict(corr),
                        "fit_pairs": 128, "histogram": {"cdf_mae": 0.04, "cdf_mae_population": 0.18},
                        "above_noise": {k: True for k in corr}}
    return r


def _render(*results, **kw):
    from ric.security.render import render

    return render({"command": "c", "machine": "x", "quick": True, "seconds": 60,
                   "models": {f"m{i}": r for i, r in enumerate(results)}, **kw})


def test_report_puts_a_leak_first():
    quiet = _render(_fake_result(0.28, keyless=False))
    assert "Findings first" not in quiet and "no spatial structure measured" in quiet
    leaky = _render(_fake_result(0.40, keyless=False))
    assert leaky.index("Findings first") < leaky.index("## Summary")
    assert "N = 100 pairs: SSIM 0.400" in leaky and "permutation" in leaky
    based = _render({**_fake_result(0.40), "majority_class_share": 0.245})
    assert "always answering the most common class: 24.5 %" in based


def test_report_states_the_keyless_leak_and_names_oracles():
    """The keyless leak comes first (before the summary) with its measured r and noise band, and again in the
    'does not protect' section; the mean-colour rows carry their oracle name from the results."""
    md = _render(_fake_result(0.28))
    leak = md.index("brightness (mean) r = 0.997")
    assert md.index("Findings first") < leak < md.index("## Summary") and "±0.245" in md
    not_protected = md[md.index("## What RIC does not protect"):]
    assert "brightness" in not_protected.split("\n\n")[0]
    assert "oracle: the plaintext's own mean colour" in md


def test_theorem61_is_called_a_heuristic_not_a_bound():
    md = _render(_fake_result(0.28))
    th = md[md.index("**Theorem 6.1"):md.index("### 2.")]
    assert "heuristic" in th and "not a Lipschitz constant" in th
    assert "≤" not in th and "guaranteed PSNR" not in th and "bound" not in th.replace("not a bound", "")


def test_report_renders_results_without_the_newer_attacks():
    """A stored result without the file-edit, plain-KPA and statistics entries, with the oracle under its former
    name, still renders: the oracle under its current name, and the report says what was not rerun."""
    old = _fake_result(0.40, keyless=False)
    old["blind"] = {"median 3×3": old["blind"]["median 3×3"],
                    "reference: mean colour of the plaintext (oracle)": old["blind"].pop(
                        "oracle: the plaintext's own mean colour")}
    for k in ("file_edits", "kpa_plain"):
        old.pop(k)
    for v in old["kpa"].values():
        v.pop("stats_reconstruction"), v.pop("stats_head")
    old["theorem61"]["at_measured_max"] = old["theorem61"]["at_30db"] = {
        "lipschitz": 10.0, "d": 3072, "tau_db": 6.0, "radius": 0.05, "log10_probability_bound": -5000.0,
        "unit_ball_radius": 13.4, "tau_unit_ball_db": -40.0}
    md = _render(old)
    assert "Not rerun with the current attacks" in md and "oracle: the plaintext's own mean colour" in md
    assert "10^(-5,000)" in md and "plain U-Net on raw ciphertexts" in md


def _blend(x, seed=1, scramble=True, alpha=0.8):
    """The paper's blend with an identity encoder and uniform noise, optionally scrambled per image."""
    g = torch.Generator().manual_seed(seed)
    f = x.flatten(1)
    if scramble:
        f = torch.stack([r[torch.randperm(len(r), generator=g)] for r in f])
    return torch.round(255 * ((1 - alpha) * f.view_as(x) + alpha * torch.rand(x.shape, generator=g))) / 255


def _varied_images(n, size, seed=0):
    """Smooth images whose brightness and contrast vary from image to image."""
    gamma = torch.linspace(0.3, 3, n)[torch.randperm(n, generator=torch.Generator().manual_seed(seed))]
    return smooth_images(n, size, seed) ** gamma.view(-1, 1, 1, 1)


def test_keyless_estimator_reads_brightness_and_histogram_of_the_blend():
    from ric.security import keyless_estimates, leak_correlations, plaintext_stats

    x = _varied_images(96, 32)
    xu, cu = to_pixels(x), to_pixels(_blend(x))
    r = leak_correlations(cu[:64], xu[:64], 0.8, cu[64:], xu[64:])
    assert r["n"] == 64 and abs(r["noise_band_95"] - 1.96 / 8) < 1e-12
    assert r["analytic"]["mean"] > 0.98 and r["analytic"]["dark"] > 0.9 and r["analytic"]["bright"] > 0.9
    assert r["analytic"]["std"] > 0.5 and r["calibrated"]["mean"] > 0.98 and all(r["above_noise"].values())
    assert r["histogram"]["cdf_mae"] < r["histogram"]["cdf_mae_population"] / 2
    est, truth = keyless_estimates(cu), plaintext_stats(xu)
    assert np.abs(est["mean"] - truth["mean"]).mean() < 0.03  # absolute values too, not only correlations
    # per-image arrays of any shapes (photos of different sizes) give the same numbers
    as_list = leak_correlations(list(cu[:64]), list(xu[:64]))
    assert as_list["analytic"] == leak_correlations(cu[:64], xu[:64])["analytic"]
    mixed = leak_correlations([a[:24] if i % 2 else a for i, a in enumerate(cu[:64])],
                              [a[:24] if i % 2 else a for i, a in enumerate(xu[:64])])
    assert mixed["n"] == 64 and mixed["analytic"]["mean"] > 0.95
    # ciphertexts that carry nothing about the plaintexts: correlations at noise level
    noise = np.random.default_rng(0).integers(0, 256, cu.shape, dtype=np.uint8)
    z = leak_correlations(noise[:64], xu[:64], 0.8, noise[64:], xu[64:])
    assert all(abs(v) < 2 * z["noise_band_95"] for m in ("analytic", "calibrated") for v in z[m].values())


def test_kpa_reaches_the_keyless_estimator_on_brightness():
    """On a scrambled blend (no spatial structure to learn) the known-plaintext network must still get the
    brightness as well as the keyless estimator; the earlier plain U-Net did not."""
    from ric.security import leak_correlations, plaintext_stats, stat_correlations

    torch.manual_seed(0)
    x = _varied_images(192, 16)
    c = _blend(x)
    truth = plaintext_stats(to_pixels(x[128:]))
    est = leak_correlations(to_pixels(c[128:]), to_pixels(x[128:]))["analytic"]["mean"]
    rec, head = known_plaintext_attack(c[:128], x[:128], c[128:], epochs=15, width=8, batch_size=16,
                                       return_stats=True)
    assert stat_correlations(plaintext_stats(to_pixels(rec)), truth)["mean"] >= est - 0.03
    assert stat_correlations(head, truth)["mean"] >= est - 0.03
    plain = known_plaintext_attack(c[:128], x[:128], c[128:], epochs=15, width=8, batch_size=16, plain=True)
    assert stat_correlations(plaintext_stats(to_pixels(plain)), truth)["mean"] < est - 0.05


def test_result_cache_key_covers_fingerprint_sizes_and_version(tmp_path, monkeypatch):
    """A cached model result is reused only for the same model fingerprint, sample sizes and package version."""
    import json

    from ric.schemes.paper import RIC
    from ric.security import report as sr

    calls = []

    def fake_eval(model, quick, run, figs, data_root=None, log=print):
        calls.append(model)
        return {**_fake_result(0.28), "model": model}

    monkeypatch.setattr(sr, "evaluate_model", fake_eval)

    def run():
        sr.run_security(["svhn-ric-v2"], True, tmp_path / "run", tmp_path / "docs", log=lambda *_: None)
        return len(calls)

    assert run() == 1 and run() == 1  # reused
    cached = json.loads((tmp_path / "run-quick/svhn-ric-v2-result.json").read_text())
    assert cached["cache_key"]["model_fp"] == RIC.load("svhn-ric-v2").fingerprint
    monkeypatch.setattr(sr, "__version__", "9.9.9")
    assert run() == 2 and run() == 2
    monkeypatch.setitem(sr.SIZES, ("svhn", True), {**sr.SIZES[("svhn", True)], "n_eval": 65})
    assert run() == 3
    monkeypatch.setattr(RIC, "fingerprint", property(lambda self: "0123456789abcdef"))
    assert run() == 4 and run() == 4


def test_ciphertext_cache_reloads_with_valid_tags(shipped_ric, samples, key, tmp_path):
    """encrypt_cached keeps each ciphertext's model fingerprint, so reloaded ciphertexts still verify; another
    model version's cache is not used; a cache written before the field existed (no model_fp) still loads."""
    from ric.schemes.paper import RIC
    from ric.security.report import encrypt_cached

    x, path, quiet = samples[1][:2], tmp_path / "c.npz", (lambda *_: None)
    first = encrypt_cached(shipped_ric, key, x, path, quiet)
    again = encrypt_cached(shipped_ric, key, x, path, quiet)
    assert [c.tag for c in again] == [c.tag for c in first] and again[0].model_fp == shipped_ric.fingerprint
    for ct in again:
        ct.verify(key)
    other = RIC(shipped_ric.codec, shipped_ric.classifier, alpha=0.8,
                attack={**shipped_ric.attack.config(), "steps": 50}, nae_batch=8, model_id=shipped_ric.model_id)
    redone = encrypt_cached(other, key, x, tmp_path / "c.npz", quiet)
    assert redone[0].model_fp == other.fingerprint != shipped_ric.fingerprint
    d = dict(np.load(path))
    legacy = [Ciphertext(c.pixels, c.model, c.nonce, c.target, c.key_id, classifier=c.classifier).sign(key)
              for c in redone]
    d.pop("model_fp")
    d["tag"] = np.stack([np.frombuffer(c.tag, np.uint8) for c in legacy])
    np.savez(path, **d)
    for ct in encrypt_cached(other, key, x, path, quiet):
        assert ct.model_fp == ""
        ct.verify(key)


@pytest.fixture(scope="module")
def real_ciphertexts(tmp_path_factory):
    """Two paper-scheme ciphertext files made by `ric encrypt -m svhn-ric-v2`, and their key."""
    import shutil

    from ric.api import sample_images
    from ric.cli import main

    d = tmp_path_factory.mktemp("edits")
    (d / "in").mkdir()
    for f in sample_images()[0][:2]:
        shutil.copy(f, d / "in")
    assert main(["keygen", "-o", str(d / "k.key")]) == 0
    assert main(["encrypt", str(d / "in"), "-o", str(d / "ct"), "-k", str(d / "k.key"), "-m", "svhn-ric-v2",
                 "-q"]) == 0
    return d, sorted((d / "ct").iterdir())


def test_edited_real_files_are_refused(real_ciphertexts):
    """key-id and model-fp edits, removed and duplicated chunks and re-encodings of real ciphertext files are
    all refused (CiphertextError or AuthenticationError); a lossless re-encoding keeping every field is not."""
    from ric.container import read_ciphertext
    from ric.security import file_edit_rejection, file_edits

    d, files = real_ciphertexts
    key = SecretKey.load(d / "k.key")
    cts = [read_ciphertext(f) for f in files]
    assert all(ct.model_fp for ct in cts)
    edits = file_edits(cts[0], SecretKey.generate().key_id)
    assert {"key-id edited", "model-fp edited", "model-fp removed", "target duplicated (same value)",
            "re-encoded, metadata dropped", "re-encoded through JPEG q95, metadata kept"} <= set(edits)
    r = file_edit_rejection(cts, key, d / "work")
    for name, v in r["edits"].items():
        assert v["files"] == 2 and v["rejected_share"] == 1.0, (name, v)
        assert set(v["by"]) <= {"CiphertextError", "AuthenticationError"}, (name, v)
    assert r["lossless_reencode_accepted"] == 1.0


@pytest.mark.parametrize("edit", ["key-id edited", "model-fp edited", "model-fp removed",
                                  "target duplicated (same value)", "re-encoded through JPEG q95, metadata kept"])
def test_ric_decrypt_refuses_edited_files(real_ciphertexts, tmp_path, capsys, edit):
    """The same edits through `ric decrypt`: exit 2 or 3, one error line, nothing written."""
    from ric.cli import main
    from ric.container import read_ciphertext
    from ric.security import file_edits

    d, files = real_ciphertexts
    (tmp_path / "ct").mkdir()
    (tmp_path / "ct" / files[1].name).write_bytes(files[1].read_bytes())
    (tmp_path / "ct" / files[0].name).write_bytes(file_edits(read_ciphertext(files[0]),
                                                             SecretKey.generate().key_id)[edit])
    capsys.readouterr()
    rc = main(["decrypt", str(tmp_path / "ct"), "-o", str(tmp_path / "rec"), "-k", str(d / "k.key")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc in (2, 3) and len(err) == 1 and "error:" in err[0], (rc, err)
    assert not (tmp_path / "rec").exists() or not any((tmp_path / "rec").iterdir())
