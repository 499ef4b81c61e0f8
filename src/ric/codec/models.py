"""Codec networks: feature extractor F, encoder E and decoder D (the registry :data:`CODECS`).

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

from ric.codec.layers import MultiKernelBlock
from ric.errors import UnknownNameError
from ric.registry import registrar

CODECS: dict[str, type] = {}


register_codec = registrar(CODECS, "codec_name")


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
