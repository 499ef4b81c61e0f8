"""Baselines measured beside the trained codec.

* identity codec (``ric.codec.IdentityCodec``): E(x) = x, D(r) = r with SRL: the 8-bit floor;
* LSB steganography with an NAE container (the paper's "LSB 4-bit"): the ciphertext keeps the NAE's
  high bits and carries the plaintext's high bits in its low bits.
"""

from __future__ import annotations

import torch


def lsb_hide(x: torch.Tensor, z: torch.Tensor, bits: int = 4) -> torch.Tensor:
    """Ciphertext pixels in [0,1]: the top ``8−bits`` bits of the NAE ``z`` and the top ``bits`` of ``x``."""
    x8 = torch.round(x.clamp(0, 1) * 255).to(torch.int32)
    z8 = torch.round(z.clamp(0, 1) * 255).to(torch.int32)
    high = z8 & (0xFF ^ ((1 << bits) - 1))
    return (high | (x8 >> (8 - bits))).float() / 255


def lsb_reveal(c: torch.Tensor, bits: int = 4) -> torch.Tensor:
    """Recovered plaintext: the hidden bits, with the missing low bits set to their midpoint."""
    c8 = torch.round(c.clamp(0, 1) * 255).to(torch.int32)
    low = c8 & ((1 << bits) - 1)
    return ((low << (8 - bits)) | (1 << (7 - bits))).float() / 255
