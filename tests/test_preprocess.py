"""The classifier's declared preprocessing: kinds, odd sizes, one-pixel-off crops, gradients."""

import pytest
import torch

from ric.errors import InputError
from ric.preprocess import Preprocess

CROP = {"kind": "resize-crop", "resize": 32, "size": [32, 32]}
RESIZE = {"kind": "resize", "size": [28, 28], "interpolation": "bicubic"}


@pytest.mark.parametrize("cfg", [CROP, RESIZE])
@pytest.mark.parametrize("hw", [(32, 32), (28, 28), (33, 32), (32, 33), (31, 32), (250, 250), (300, 451), (451, 300),
                                (17, 9)])
def test_output_size_and_gradient(cfg, hw):
    pre = Preprocess.from_config(cfg)
    x = torch.rand(2, 3, *hw, requires_grad=True)
    y = pre(x)
    assert y.shape == (2, 3, *pre.size)
    y.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


@pytest.mark.parametrize("cfg", [CROP, RESIZE])
def test_identity_at_input_size(cfg):
    pre = Preprocess.from_config(cfg)
    x = torch.rand(1, 1, *pre.size)
    assert pre(x) is x


def test_one_pixel_off_crop_takes_the_centre():
    pre = Preprocess.from_config(CROP)
    x = torch.arange(33 * 32, dtype=torch.float32).view(1, 1, 33, 32)
    y = pre(x)  # the shorter side is already 32: no resize; the crop starts at row round(0.5) = 0 (torchvision)
    assert torch.equal(y, x[:, :, 0:32])
    x3 = torch.arange(34 * 32, dtype=torch.float32).view(1, 1, 34, 32)
    assert torch.equal(pre(x3), x3[:, :, 1:33])  # two rows off: one dropped on each side
    x2 = torch.rand(1, 3, 31, 32)  # shorter side 31: resized to 32x33, then cropped
    assert pre(x2).shape == (1, 3, 32, 32)


def test_resize_crop_keeps_aspect_ratio():
    pre = Preprocess.from_config({"kind": "resize-crop", "resize": 40, "size": [32, 32], "interpolation": "nearest"})
    x = torch.zeros(1, 1, 100, 200)
    x[:, :, :, :100] = 1  # left half white: after the centre crop, the left half of the crop is white
    y = pre(x)
    assert y[0, 0, :, :15].min() == 1 and y[0, 0, :, 17:].max() == 0


@pytest.mark.parametrize("bad", [{"kind": "warp", "size": [3, 3]}, {"kind": "resize"},
                                 {"kind": "resize", "size": [0, 4]},
                                 {"kind": "resize-crop", "resize": 8, "size": [32, 32]},
                                 {"kind": "resize", "size": [4, 4], "interpolation": "lanczos9"}])
def test_malformed_declarations(bad):
    with pytest.raises(InputError):
        Preprocess.from_config(bad)


def test_tiny_images_refused():
    with pytest.raises(InputError, match="smaller than"):
        Preprocess.from_config(CROP).check(4, 100)
    assert Preprocess.from_config(None) is None
