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
