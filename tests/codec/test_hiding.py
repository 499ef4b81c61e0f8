"""The steganography baselines of Table 2 as codecs (ric.codec.hiding): shapes at any size, the Haar transform and
the coupling blocks exactly invertible."""

import pytest
import torch

from ric.codec import make_codec
from ric.codec.hiding import haar, ihaar


def test_haar_is_orthonormal_and_invertible():
    x = torch.rand(2, 3, 8, 10)
    y = haar(x)
    assert y.shape == (2, 12, 4, 5)
    assert torch.allclose(ihaar(y), x, atol=1e-6)
    assert torch.allclose(y.pow(2).sum(), x.pow(2).sum(), rtol=1e-5)  # energy preserved


def test_coupling_blocks_invert():
    torch.manual_seed(0)
    h = make_codec({"name": "hinet", "width": 8, "depth": 1, "blocks": 2})
    cov, sec = torch.rand(1, 12, 4, 4), torch.rand(1, 12, 4, 4)
    for b in h.blocks:
        c2, s2 = b(cov, sec)
        c3, s3 = b.inverse(c2, s2)
        assert torch.allclose(c3, cov, atol=1e-5) and torch.allclose(s3, sec, atol=1e-5)


@pytest.mark.parametrize("name", ["ddh", "hinet"])
@pytest.mark.parametrize("size", [(32, 32), (28, 28), (15, 17)])
def test_shapes_at_any_size(name, size):
    c = make_codec({"name": name, "width": 8, "depth": 1})
    x, z = torch.rand(2, 3, *size), torch.rand(2, 3, *size)
    e = c.encode(x, z)
    assert e.shape == x.shape and c.decode(e).shape == x.shape
