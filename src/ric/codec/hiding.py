"""Steganography baselines as codecs (Table 2): the paper compares RIC with hiding networks that use the NAE as
the cover. Both plug into the same composition (``c = (1−α)·E(x, z) + α·z``, rounding, ``D(r)``) and the same
trainer, so they are trained and measured exactly like the RIC codec.

* ``ddh``: a DDH-style pair (Baluja, "Hiding images in plain sight", 2017): a preparation network on the secret
  ``x``, a hiding network on (prepared ``x`` ‖ cover ``z``) that outputs the container, a reveal network.
* ``hinet``: a HiNet-style invertible network (Jing et al., 2021): both images in the Haar wavelet domain, affine
  coupling blocks between the cover branch and the secret branch; the container is the cover branch mapped back,
  and revealing runs the same blocks backwards with a zero "lost" secret branch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ric.codec.models import register_codec


def _stack(cin: int, cout: int, width: int, depth: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    c = cin
    for _ in range(depth):
        layers += [nn.Conv2d(c, width, 3, padding=1), nn.ReLU(inplace=True)]
        c = width
    return nn.Sequential(*layers, nn.Conv2d(c, cout, 3, padding=1))


@register_codec("ddh")
class DeepHidingCodec(nn.Module):
    """Preparation P, hiding H and reveal R networks (plain convolution stacks)."""

    def __init__(self, channels: int = 3, width: int = 16, depth: int = 2, prep: int = 16):
        super().__init__()
        self.channels = channels
        self.prep = _stack(channels, prep, width, depth)
        self.hide = _stack(prep + channels, channels, width, depth)
        self.reveal = _stack(channels, channels, width, depth)

    def encode(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.hide(torch.cat([self.prep(x), z], 1)))

    def decode(self, r: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.reveal(r))


def haar(x: torch.Tensor) -> torch.Tensor:
    """Orthonormal 2-D Haar transform: N×C×H×W (even H, W) → N×4C×H/2×W/2 (LL, LH, HL, HH per channel)."""
    a, b = x[:, :, 0::2, 0::2], x[:, :, 0::2, 1::2]
    c, d = x[:, :, 1::2, 0::2], x[:, :, 1::2, 1::2]
    return torch.cat([a + b + c + d, a - b + c - d, a + b - c - d, a - b - c + d], 1) / 2


def ihaar(y: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`haar`."""
    ll, lh, hl, hh = y.chunk(4, 1)
    n, c, h, w = ll.shape
    x = y.new_empty(n, c, 2 * h, 2 * w)
    x[:, :, 0::2, 0::2] = (ll + lh + hl + hh) / 2
    x[:, :, 0::2, 1::2] = (ll - lh + hl - hh) / 2
    x[:, :, 1::2, 0::2] = (ll + lh - hl - hh) / 2
    x[:, :, 1::2, 1::2] = (ll - lh - hl + hh) / 2
    return x


class _Coupling(nn.Module):
    """HiNet's block: ``c' = c + φ(s)``; ``s' = s·exp(clamp·tanh(ρ(c'))) + η(c')``; exactly invertible."""

    def __init__(self, ch: int, width: int, depth: int, clamp: float = 2.0):
        super().__init__()
        self.phi, self.rho, self.eta = (_stack(ch, ch, width, depth) for _ in range(3))
        self.clamp = clamp

    def forward(self, cov: torch.Tensor, sec: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cov = cov + self.phi(sec)
        return cov, sec * torch.exp(self.clamp * torch.tanh(self.rho(cov))) + self.eta(cov)

    def inverse(self, cov: torch.Tensor, sec: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        sec = (sec - self.eta(cov)) * torch.exp(-self.clamp * torch.tanh(self.rho(cov)))
        return cov - self.phi(sec), sec


@register_codec("hinet")
class InvertibleHidingCodec(nn.Module):
    """Coupling blocks on the Haar coefficients of cover (the NAE) and secret (the image). Odd sides are padded
    by one pixel (replicate) and cropped back."""

    def __init__(self, channels: int = 3, width: int = 16, depth: int = 2, blocks: int = 4):
        super().__init__()
        self.channels = channels
        self.blocks = nn.ModuleList(_Coupling(4 * channels, width, depth) for _ in range(blocks))

    @staticmethod
    def _pad(x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, (0, x.shape[-1] % 2, 0, x.shape[-2] % 2), mode="replicate")

    def encode(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        cov, sec = haar(self._pad(z)), haar(self._pad(x))
        for b in self.blocks:
            cov, sec = b(cov, sec)
        return ihaar(cov)[..., :x.shape[-2], :x.shape[-1]]

    def decode(self, r: torch.Tensor) -> torch.Tensor:
        cov = haar(self._pad(r))
        sec = torch.zeros_like(cov)  # the "lost" branch: its expected value
        for b in reversed(self.blocks):
            cov, sec = b.inverse(cov, sec)
        return ihaar(sec)[..., :r.shape[-2], :r.shape[-1]]
