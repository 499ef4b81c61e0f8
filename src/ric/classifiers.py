"""Plaintext classifier zoo.

A :class:`Classifier` takes images in ``[0,1]`` (N×C×H×W) and returns logits; normalisation is
inside it, so the NAE attack and the ciphertext see exactly what the classifier expects.
Architectures sit in :data:`ARCHITECTURES`; trained weights ship as bundles (see :mod:`ric.bundles`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from . import bundles
from .errors import InputError

ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {}


def register_arch(name: str):
    def deco(fn):
        ARCHITECTURES[name] = fn
        return fn

    return deco


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
    channel count (64 in the original; the zoo uses 32 to keep shipped weights compact)."""

    def __init__(self, num_classes: int = 10, in_channels: int = 3, width: int = 64, stem: str = "cifar"):
        super().__init__()
        w = width
        if stem == "cifar":
            self.stem = nn.Sequential(nn.Conv2d(in_channels, w, 3, 1, 1, bias=False), nn.BatchNorm2d(w),
                                      nn.ReLU(inplace=True))
        else:
            self.stem = nn.Sequential(nn.Conv2d(in_channels, w, 7, 2, 3, bias=False), nn.BatchNorm2d(w),
                                      nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1))
        blocks, c = [], w
        for i, cout in enumerate((w, 2 * w, 4 * w, 8 * w)):
            blocks += [_Basic(c, cout, 1 if i == 0 else 2), _Basic(cout, cout, 1)]
            c = cout
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, num_classes))

    def forward(self, x):
        return self.head(self.blocks(self.stem(x)))


@register_arch("resnet18")
def resnet18(num_classes: int = 10, in_channels: int = 3, width: int = 64, stem: str = "cifar") -> nn.Module:
    return ResNet18(num_classes, in_channels, width, stem)


class Classifier(nn.Module):
    """An image classifier on ``[0,1]`` inputs with its input contract.

    ``input_shape`` is (C, H, W); H or W may be ``None`` for classifiers that accept any size.
    """

    def __init__(self, net: nn.Module, name: str, input_shape: tuple, mean, std, class_names: list[str],
                 weights_sha256: str = ""):
        super().__init__()
        self.net = net
        self.name = name
        self.input_shape = tuple(input_shape)
        self.class_names = list(class_names)
        self.weights_sha256 = weights_sha256
        c = input_shape[0]
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, c, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, c, 1, 1))
        self.eval()

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.mean) / self.std)

    def check_input(self, shape) -> None:
        """Raise :class:`InputError` unless ``shape`` (C,H,W) is what this classifier accepts."""
        c, h, w = shape
        ec, eh, ew = self.input_shape
        if c != ec:
            raise InputError(f"classifier {self.name} expects {ec}-channel images, got {c} channels")
        if (eh is not None and h != eh) or (ew is not None and w != ew):
            raise InputError(f"classifier {self.name} expects {eh}x{ew} images, got {h}x{w}")

    @torch.no_grad()
    def predict(self, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        out = [self(x[i:i + batch_size]).argmax(1) for i in range(0, len(x), batch_size)]
        return torch.cat(out) if out else torch.empty(0, dtype=torch.long)


def build(config: dict) -> Classifier:
    arch = config["arch"]
    if arch not in ARCHITECTURES:
        raise InputError(f"unknown classifier architecture {arch!r}; known: {', '.join(ARCHITECTURES)}")
    net = ARCHITECTURES[arch](num_classes=len(config["class_names"]), in_channels=config["input_shape"][0],
                              **config.get("arch_kwargs", {}))
    return Classifier(net, config["name"], config["input_shape"], config["mean"], config["std"],
                      config["class_names"], config.get("weights_sha256", ""))


def load_classifier(name_or_path: str | Path, device: str | torch.device = "cpu") -> Classifier:
    """Load a classifier bundle by shipped name or folder path; frozen, in eval mode."""
    folder = bundles.resolve(name_or_path, kind="classifier")
    cfg = bundles.read_config(folder)
    clf = build(cfg)
    state = bundles.load_weights(folder)
    clf.net.load_state_dict(state)
    clf.requires_grad_(False)
    return clf.to(device).eval()
