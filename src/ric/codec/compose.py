"""The paper scheme's ciphertext composition, written once: encode → scramble → mix → quantize, and its inverse.

``encrypt_pixels`` and ``recover`` are what :class:`ric.schemes.paper.RIC` runs at inference and what
``ric.training.codec`` trains through (``training=True``: additive uniform noise instead of rounding, so
gradients flow). Symmetric residual learning (SRL) blends the encoder output with the noise-like adversarial
example ``z``: ``c̃ = (1−α)·E(x, z) + α·z``; recovery inverts the blend, ``r = (c − α·z)/(1−α)``, then decodes.
"""

from __future__ import annotations

import torch


def encrypt_pixels(codec, x: torch.Tensor, z: torch.Tensor, alpha: float, perm: torch.Tensor | None = None,
                   training: bool = False) -> torch.Tensor:
    """Ciphertext pixels in [0, 1] (multiples of 1/255 unless ``training``) of plaintexts ``x`` for NAEs ``z``;
    ``perm`` (one permutation per image) scrambles the encoder's output before the blend."""
    e = codec.encode(x, z)
    if perm is not None:  # element i of the output is element perm[i] of the encoder's output
        e = scramble(e, perm)
    return quantize(srl_mix(e, z, alpha), training=training)


def recover(codec, c: torch.Tensor, z: torch.Tensor, alpha: float, perm: torch.Tensor | None = None) -> torch.Tensor:
    """The decoder's estimate of the plaintexts (not clamped) from ciphertext pixels ``c`` and the same ``z``
    (and ``perm``) that encryption used."""
    r = srl_unmix(c, z, alpha)
    if perm is not None:
        r = unscramble(r, perm)
    return codec.decode(r)


def srl_mix(e: torch.Tensor, z: torch.Tensor, alpha: float) -> torch.Tensor:
    """Symmetric residual learning, encryption side: c̃ = (1−α)·e + α·z (α = 0: no SRL, c̃ = e)."""
    return (1 - alpha) * e + alpha * z


def srl_unmix(c: torch.Tensor, z: torch.Tensor, alpha: float) -> torch.Tensor:
    """Symmetric residual learning, recovery side: r = (c − α·z)/(1−α)."""
    return (c - alpha * z) / (1 - alpha)


def scramble(e: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
    """Element ``i`` of each row's output is element ``perm[i]`` of ``e`` (one permutation per image)."""
    return e.flatten(1).gather(1, perm).view_as(e)


def unscramble(r: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`scramble` (differentiable, for training)."""
    f = r.flatten(1)
    return torch.zeros_like(f).scatter(1, perm, f).view_as(r)


def quantize(c: torch.Tensor, training: bool) -> torch.Tensor:
    """8-bit quantisation: rounding at inference; ``clamp(255·c + u, 0, 255)/255``, u~U(−½,½) in training."""
    if training:
        return torch.clamp(255 * c + torch.rand_like(c) - 0.5, 0, 255) / 255
    return torch.round(torch.clamp(c, 0, 1) * 255) / 255
