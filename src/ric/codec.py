"""Codec networks: feature extractor F, encoder E and decoder D, plus symmetric residual learning.

``ric-paper`` follows the paper (Fig. 3): every network is a *multi-kernel block*, three parallel
convolution stacks with kernels 3, 4 and 5 (``width`` channels each), a fusion convolution and
squeeze-excitation residual blocks. E ends in a sigmoid so that ``(1−α)·E + α·z`` stays in [0,1]
(no clipping before quantisation); D predicts a correction added to its input ``r``. All layers are
convolutions with 'same' padding, so the codec works at any H×W.

``identity`` is the floor of DESIGN.md: ``E(x) = x`` and ``D(r) = r`` (leaks the plaintext).
"""

from __future__ import annotations

import torch
from torch import nn

from .errors import UnknownNameError
from .registry import registrar

CODECS: dict[str, type] = {}


register_codec = registrar(CODECS, "codec_name")


class SqueezeExcite(nn.Module):
    def __init__(self, ch: int, reduction: int = 4):
        super().__init__()
        self.fc = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(ch, max(4, ch // reduction), 1),
                                nn.ReLU(inplace=True), nn.Conv2d(max(4, ch // reduction), ch, 1), nn.Sigmoid())

    def forward(self, x):
        return x * self.fc(x)


class SEResBlock(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(ch, ch, 3, padding=1), nn.ReLU(inplace=True),
                                  nn.Conv2d(ch, ch, 3, padding=1), SqueezeExcite(ch))

    def forward(self, x):
        return x + self.body(x)


class MultiKernelBlock(nn.Module):
    """Three parallel conv stacks (kernels 3, 4, 5) → concat → fusion conv → SE residual blocks → out conv."""

    def __init__(self, cin: int, cout: int, width: int = 50, depth: int = 3, se_blocks: int = 2):
        super().__init__()
        self.branches = nn.ModuleList()
        for k in (3, 4, 5):
            layers: list[nn.Module] = []
            c = cin
            for _ in range(depth):
                lo, hi = (k - 1) // 2, k // 2  # 'same' padding, asymmetric for the even kernel
                layers += [nn.ZeroPad2d((lo, hi, lo, hi)), nn.Conv2d(c, width, k), nn.ReLU(inplace=True)]
                c = width
            self.branches.append(nn.Sequential(*layers))
        self.fuse = nn.Sequential(nn.Conv2d(3 * width, width, 3, padding=1), nn.ReLU(inplace=True))
        self.se = nn.Sequential(*[SEResBlock(width) for _ in range(se_blocks)])
        self.out = nn.Conv2d(width, cout, 3, padding=1)

    def forward(self, x):
        h = torch.cat([b(x) for b in self.branches], 1)
        return self.out(self.se(self.fuse(h)))


@register_codec("ric-paper")
class PaperCodec(nn.Module):
    def __init__(self, channels: int = 3, width: int = 50, depth: int = 3, se_blocks: int = 2, feat: int = 32):
        super().__init__()
        self.channels = channels
        self.features = MultiKernelBlock(channels, feat, width, depth, se_blocks)  # F
        self.encoder = MultiKernelBlock(feat + channels, channels, width, depth, se_blocks)  # E
        self.decoder = MultiKernelBlock(channels, channels, width, depth, se_blocks)  # D

    def encode(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """E(F(x) ‖ z) in (0, 1)."""
        return torch.sigmoid(self.encoder(torch.cat([self.features(x), z], 1)))

    def decode(self, r: torch.Tensor) -> torch.Tensor:
        return r + self.decoder(r)


@register_codec("identity")
class IdentityCodec(nn.Module):
    """E(x) = x, D(r) = r: the 8-bit floor of DESIGN.md. It hides nothing."""

    def __init__(self, channels: int = 3, **_):
        super().__init__()
        self.channels = channels

    def encode(self, x, z):
        return x

    def decode(self, r):
        return r


def make_codec(config: dict) -> nn.Module:
    config = dict(config)
    name = config.pop("name", "ric-paper")
    if name not in CODECS:
        raise UnknownNameError(f"unknown codec {name!r}; known: {', '.join(CODECS)}")
    return CODECS[name](**config)


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


@register_codec("ric-residual")
class ResidualCodec(PaperCodec):
    """The paper's networks with identity-initialised paths: ``E = sigmoid(logit(x) + Δ(F(x) ‖ z))``
    and ``D(r) = r + Δ'(r)``, both Δ starting at zero. Training starts at the identity floor instead of
    from scratch; E still conditions on the NAE through Δ."""

    def __init__(self, channels: int = 3, width: int = 48, depth: int = 3, se_blocks: int = 2, feat: int = 32):
        super().__init__(channels, width, depth, se_blocks, feat)
        for m in (self.encoder.out, self.decoder.out):
            nn.init.zeros_(m.weight)
            nn.init.zeros_(m.bias)

    def encode(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        xc = x.clamp(1 / 512, 1 - 1 / 512)
        return torch.sigmoid(torch.logit(xc) + self.encoder(torch.cat([self.features(x), z], 1)))
