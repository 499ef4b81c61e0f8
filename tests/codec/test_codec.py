import pytest
import torch

from ric.codec import CODECS, make_codec, quantize, srl_mix, srl_unmix
from ric.errors import UnknownNameError


@pytest.mark.parametrize("name", ["ric-paper", "ric-residual"])
@pytest.mark.parametrize("hw", [(32, 32), (28, 20), (45, 33)])
def test_fully_convolutional(name, hw):
    c = make_codec({"name": name, "width": 8, "depth": 1, "se_blocks": 1, "feat": 4})
    x = torch.rand(2, 3, *hw)
    e = c.encode(x, torch.rand_like(x))
    assert e.shape == x.shape and e.min() >= 0 and e.max() <= 1
    assert c.decode(e).shape == x.shape


def test_residual_codec_starts_at_identity():
    c = make_codec({"name": "ric-residual", "width": 8, "depth": 1, "se_blocks": 0})
    x = torch.rand(1, 3, 16, 16).clamp(0.01, 0.99)
    assert torch.allclose(c.encode(x, torch.rand_like(x)), x, atol=1e-5)
    assert torch.equal(c.decode(x), x)


def test_srl_inverse_and_quantize():
    e, z = torch.rand(4, 3, 8, 8), torch.rand(4, 3, 8, 8)
    for alpha in (0.0, 0.6, 0.8):
        assert torch.allclose(srl_unmix(srl_mix(e, z, alpha), z, alpha), e, atol=1e-5)
    c = srl_mix(e, z, 0.8)
    q = quantize(c, training=False)
    assert torch.equal(q * 255, torch.round(q * 255)) and (q - c).abs().max() <= 0.5 / 255 + 1e-7
    qt = quantize(c, training=True)
    assert (qt - c).abs().max() <= 0.5 / 255 + 1e-6 and not torch.equal(qt * 255, torch.round(qt * 255))


def test_identity_codec_and_registry():
    assert {"ric-paper", "ric-residual", "identity"} <= set(CODECS)
    c = make_codec({"name": "identity"})
    x = torch.rand(1, 3, 4, 4)
    assert torch.equal(c.decode(c.encode(x, None)), x)
    with pytest.raises(UnknownNameError):
        make_codec({"name": "nope"})
