"""Classifier architectures, registered by name in :data:`ARCHITECTURES` (a bundle's ``config["arch"]``).

``cnn7`` (SVHN), ``cnn5`` (MNIST), ``resnet18`` (CIFAR-10, faces, Tiny-ImageNet) and ``dlib-face`` (dlib's
face-recognition ResNet with a linear head). Every factory takes ``num_classes`` and ``in_channels``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ric.errors import InputError
from ric.registry import registrar

ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {}


register_arch = registrar(ARCHITECTURES)


def _cbr(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


@register_arch("cnn7")
def cnn7(num_classes: int = 10, in_channels: int = 3, width: int = 32) -> nn.Module:
    """SVHN classifier of the paper: 7 convolutional layers and 1 fully connected layer."""
    w = width
    layers = (_cbr(in_channels, w) + _cbr(w, w) + [nn.MaxPool2d(2)]
              + _cbr(w, 2 * w) + _cbr(2 * w, 2 * w) + [nn.MaxPool2d(2)]
              + _cbr(2 * w, 4 * w) + _cbr(4 * w, 4 * w) + [nn.MaxPool2d(2)]
              + _cbr(4 * w, 8 * w) + [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.3),
                                      nn.Linear(8 * w, num_classes)])
    return nn.Sequential(*layers)


@register_arch("cnn5")
def cnn5(num_classes: int = 10, in_channels: int = 1, width: int = 32) -> nn.Module:
    """MNIST classifier of the paper: 5 convolutional layers and 1 fully connected layer."""
    w = width
    layers = (_cbr(in_channels, w) + _cbr(w, w) + [nn.MaxPool2d(2)]
              + _cbr(w, 2 * w) + _cbr(2 * w, 2 * w) + [nn.MaxPool2d(2)]
              + _cbr(2 * w, 4 * w) + [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.3),
                                      nn.Linear(4 * w, num_classes)])
    return nn.Sequential(*layers)


class _Basic(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout),
                                  nn.ReLU(inplace=True), nn.Conv2d(cout, cout, 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(cout))
        self.short = (nn.Identity() if stride == 1 and cin == cout else
                      nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)))

    def forward(self, x):
        return torch.relu(self.body(x) + self.short(x))


class ResNet18(nn.Module):
    """ResNet-18 (4 stages × 2 basic blocks). ``stem="cifar"``: 3×3 conv, no pooling (32×32 inputs);
    ``stem="imagenet"``: 7×7/2 conv + 3×3/2 max-pool (large inputs). ``width`` is the first stage's
    channel count (64 in the original; the zoo uses 32 to keep shipped weights compact).
    ``stem="s2"``: 3×3/2 conv (e.g. 64×64 inputs at the cost of a CIFAR net). ``input_size``: the net first
    resizes its input (bilinear, antialiased, differentiable) to ``input_size``², so a classifier for large
    images can run at a lower internal resolution."""

    def __init__(self, num_classes: int = 10, in_channels: int = 3, width: int = 64, stem: str = "cifar",
                 input_size: int | None = None, flip_tta: bool = False):
        super().__init__()
        w = width
        self.input_size = input_size
        self.flip_tta = flip_tta
        if stem in ("cifar", "s2"):
            self.stem = nn.Sequential(nn.Conv2d(in_channels, w, 3, 1 if stem == "cifar" else 2, 1, bias=False),
                                      nn.BatchNorm2d(w), nn.ReLU(inplace=True))
        elif stem == "imagenet":
            self.stem = nn.Sequential(nn.Conv2d(in_channels, w, 7, 2, 3, bias=False), nn.BatchNorm2d(w),
                                      nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1))
        else:
            raise InputError(f"unknown ResNet stem {stem!r}; known: cifar, s2, imagenet")
        blocks, c = [], w
        for i, cout in enumerate((w, 2 * w, 4 * w, 8 * w)):
            blocks += [_Basic(c, cout, 1 if i == 0 else 2), _Basic(cout, cout, 1)]
            c = cout
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, num_classes))

    def forward(self, x):
        if self.input_size and tuple(x.shape[-2:]) != (self.input_size, self.input_size):
            x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False,
                              antialias=True)
        if self.flip_tta and not self.training:  # average the logits of the image and its mirror image
            return 0.5 * (self.head(self.blocks(self.stem(x))) + self.head(self.blocks(self.stem(x.flip(3)))))
        return self.head(self.blocks(self.stem(x)))


@register_arch("resnet18")
def resnet18(num_classes: int = 10, in_channels: int = 3, width: int = 64, stem: str = "cifar",
             input_size: int | None = None, flip_tta: bool = False) -> nn.Module:
    return ResNet18(num_classes, in_channels, width, stem, input_size, flip_tta)


@register_arch("dlib-face")
def dlib_face(num_classes: int = 0, in_channels: int = 3, **kw) -> nn.Module:
    """dlib's pretrained face-embedding ResNet (29 convolutions, 128-d) + a linear head
    (:mod:`ric.classifiers.dlib_face`)."""
    from ric.classifiers.dlib_face import DlibFaceNet

    return DlibFaceNet(num_classes, in_channels, **kw)
