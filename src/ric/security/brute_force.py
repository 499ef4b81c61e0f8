"""Brute force and key sensitivity of the paper scheme: recovery under random and one-bit-off keys, and the
heuristic of the paper's Theorem 6.1 (NES estimate of the recovery's pixel gradient, volume of the key ball).

Everything works on tensors in [0,1] (N×C×H×W) or uint8 pixels, so the tests run it on tiny data;
:mod:`ric.security.report` runs it on the shipped models (``ric security``)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from ric.container import Ciphertext
from ric.eval.metrics import psnr
from ric.imageio import to_tensor
from ric.keys import SecretKey


def as_tensor(cts: list[Ciphertext]) -> torch.Tensor:
    """Ciphertext pixels as N×C×H×W in [0,1]."""
    return to_tensor(np.stack([ct.pixels for ct in cts]))


# ------------------------------------------------------------------------------------------ brute force
def wrong_key_psnr(ric, cts: list[Ciphertext], x: torch.Tensor, keys: list[SecretKey],
                   progress: Callable | None = None) -> np.ndarray:
    """PSNR (dB) of every ciphertext decrypted with every key (tag check off): array keys × images."""
    out = np.zeros((len(keys), len(cts)), dtype=np.float32)
    for i, k in enumerate(keys):
        out[i] = psnr(ric.decrypt(cts, k, verify=False), x).numpy()
        if progress:
            progress(len(cts))
    return out


# ------------------------------------------------------------------------------------------ Theorem 6.1
def nes_pixel_gradient_norms(ric, ct: Ciphertext, key: SecretKey, directions: int = 32,
                             sigma: float = 1e-3, seed: int = 0) -> torch.Tensor:
    """Gradient norm of every recovered pixel with respect to the RNI, ‖∇_z x̂_i(z)‖, at the right key's RNI
    (a local slope at one point: a heuristic input to :func:`theorem61_heuristic`, not a Lipschitz constant).

    Appendix A of the paper estimates this gradient with NES (Gaussian directions and antithetic finite
    differences). We use the unbiased form for the *norm*: for u ~ N(0, I), E[(u·∇f)²] = ‖∇f‖², so
    ‖∇f_i‖² ≈ mean_k ((f_i(z+σu_k) − f_i(z−σu_k)) / 2σ)². f is the whole decryption: NAE attack on the
    RNI, SRL un-mixing and the decoder, on a fixed ciphertext. Pixels in [0,1]; returns one value per pixel."""
    from ric.keys import random_noise_image

    shape = (ct.pixels.shape[2], *ct.pixels.shape[:2])
    z = random_noise_image(key, ct.nonce, shape)
    g = torch.Generator().manual_seed(seed)
    u = torch.randn((directions, *shape), generator=g)
    zs = torch.cat([z + sigma * u, z - sigma * u])
    t = torch.full((len(zs),), ct.target, dtype=torch.long)
    c = as_tensor([ct]).expand(len(zs), -1, -1, -1)
    perm = ric.perms(key, [ct.nonce], shape)  # the right key's scrambling (None without): only z varies here
    perm = None if perm is None else perm.expand(len(zs), -1)
    f = ric.decode_with(c, ric.nae_from_rni(zs, t), perm).flatten(1)  # 2n × pixels
    dd = (f[:directions] - f[directions:]) / (2 * sigma)
    return dd.pow(2).mean(0).sqrt()


def ball_log10_volume(radius: float, d: int) -> float:
    """log10 of the volume of a d-ball of ``radius`` (the largest share of the unit cube [0,1]^d it can cover)."""
    import math

    if radius <= 0:
        return float("-inf")
    return (d / 2 * math.log(math.pi) + d * math.log(radius) - math.lgamma(d / 2 + 1)) / math.log(10)


def theorem61_heuristic(grad_norm: float, d: int, tau_db: float) -> dict:
    """A heuristic reading of Theorem 6.1, *not* a bound. ``grad_norm`` is a finite-difference estimate of
    the largest gradient norm of a recovered pixel at one point (the right key's RNI); it is not a Lipschitz
    constant, since the slope elsewhere is unknown. If it held everywhere, every recovered pixel would move
    by about L·r when the RNI moves by r, so a wrong key would need its RNI within about
    r(τ) = 10^(−τ/20)/L of the right one to reach PSNR τ; ``log10_ball_volume`` is the log10 volume of that
    ball (the share of the unit cube it covers). ``tau_unit_ball_db`` is the PSNR the same reading gives at
    the radius of a unit-volume ball (the analogue of the paper's 5.64 dB)."""
    import math

    r = 10 ** (-tau_db / 20) / grad_norm
    r1 = math.exp(math.lgamma(d / 2 + 1) / d) / math.sqrt(math.pi)
    return {"gradient_norm": grad_norm, "d": d, "tau_db": tau_db, "radius": r,
            "log10_ball_volume": ball_log10_volume(r, d),
            "unit_ball_radius": r1, "tau_unit_ball_db": -20 * math.log10(grad_norm * r1)}
