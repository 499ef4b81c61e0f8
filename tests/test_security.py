"""The attack code on tiny data: it must be able to succeed where there is a leak, so that a failure on
real ciphertexts means something."""

import numpy as np
import torch

from ric.container import Ciphertext
from ric.keys import SecretKey, new_nonce
from ric.metrics import psnr
from ric.security import (
    _median,
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


def test_median_filter():
    c = torch.arange(25.0).view(1, 1, 5, 5)
    m = _median(c, 3)
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
    cts = [c for c in cts if c is not None]
    out = wrong_key_psnr(tiny_ric, cts, x[:len(cts)], [SecretKey.generate(), key])
    assert out.shape == (2, len(cts))


def test_nes_gradient_norm_matches_a_known_decryption():
    """With no attack (NAE = RNI) and the identity codec, x̂ = (c − αz)/(1−α): every pixel's gradient with
    respect to the RNI has norm α/(1−α) = 4 exactly; the estimate must find it."""
    from ric.classifiers import load_classifier
    from ric.codec import make_codec
    from ric.keys import random_noise_image
    from ric.pipeline import RIC
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


def test_theorem61_ball_bound():
    import math

    from ric.security import ball_log10_probability, theorem61_bound

    assert abs(ball_log10_probability(1 / math.sqrt(math.pi), 2)) < 1e-9  # unit-area disc
    b = theorem61_bound(lipschitz=2.0, d=3072, tau_db=20.0)
    assert abs(b["radius"] - 0.05) < 1e-12 and b["log10_probability_bound"] < -1000
    assert abs(ball_log10_probability(b["unit_ball_radius"], 3072)) < 1e-6


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


def _fake_result(kpa_ssim):
    sc = {"psnr_db": 18.0, "ssim": 0.27, "psnr_fit_db": 18.0, "ssim_fit": 0.27}
    bound = {"lipschitz": 10.0, "d": 3072, "tau_db": 6.0, "radius": 0.05, "log10_probability_bound": -5000.0,
             "unit_ball_radius": 13.4, "tau_unit_ball_db": -40.0}
    return {"model": "m", "dataset": "svhn", "data": "d", "weights_sha256": "ab", "seconds": 60, "quick": True,
            "right_key_psnr_db": 41.0, "plaintext_accuracy": 0.9,
            "brute_force": {"ciphertexts": 2, "random_keys": 4, "one_bit_keys": 2, "right_key_psnr_db": 41.0,
                            "random_key_psnr_db": {"mean": 6, "min": 5, "max": 6.5},
                            "one_bit_psnr_db": {"mean": 6, "min": 5, "max": 6.5}},
            "tags": {"right_key_accepted": 1.0, "wrong_keys_rejected": 1.0, "wrong_key_trials": 8,
                     "tampered_rejected": {"pixel bit": 1.0}, "tamper_trials": 2},
            "theorem61": {"ciphertexts": 1, "directions": 8, "grad_norm_max": 10.0, "grad_norm_mean": 5.0,
                          "at_measured_max": bound, "at_30db": bound, "measured_max_wrong_key_psnr_db": 6.5},
            "blind": {"median 3×3": dict(sc), "reference: mean colour of the plaintext (oracle)": dict(sc)},
            "blind_best": "median 3×3",
            "kpa": {"100": {**sc, "ssim": kpa_ssim, "classifier_accuracy_on_reconstructions": 0.2, "epochs": 5}},
            "cloud": {**sc, "ciphertexts": 10, "epochs": 1, "size": 32, "classifier_accuracy_on_reconstructions": 0.1}}


def test_report_puts_a_leak_first():
    from ric.security_report import render

    quiet = render({"command": "c", "machine": "x", "quick": True, "seconds": 60, "models": {"m": _fake_result(0.28)}})
    assert "Findings first" not in quiet and "no structure recovered" in quiet
    leaky = render({"command": "c", "machine": "x", "quick": True, "seconds": 60, "models": {"m": _fake_result(0.40)}})
    assert leaky.index("Findings first") < leaky.index("## Summary")
    assert "N = 100 pairs: SSIM 0.400" in leaky and "permutation" in leaky
    based = render({"command": "c", "machine": "x", "quick": True, "seconds": 60,
                    "models": {"m": {**_fake_result(0.40), "majority_class_share": 0.245}}})
    assert "always answering the most common class: 24.5 %" in based


def test_ciphertext_cache_reloads_with_valid_tags(shipped_ric, samples, key, tmp_path):
    """encrypt_cached keeps each ciphertext's model fingerprint, so reloaded ciphertexts still verify; another
    model version's cache is not used; a cache written before the field existed (no model_fp) still loads."""
    from ric.pipeline import RIC
    from ric.security_report import encrypt_cached

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
