import torch

from ric.eval.baselines import lsb_hide, lsb_reveal
from ric.eval.metrics import psnr


def test_lsb_roundtrip_and_container():
    x, z = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    c = lsb_hide(x, z)
    assert torch.equal(torch.round(c * 255), c * 255)  # valid 8-bit image
    assert (torch.round(c * 255).int() >> 4).equal(torch.round(z * 255).int() >> 4)  # NAE's high bits kept
    xh = lsb_reveal(c)
    assert (xh - x).abs().max() <= 9 / 255  # 4 bits: at most half a 16-level step (+ rounding)
    assert 28 < psnr(xh, x).mean() < 36
