"""Building blocks of the paper's codec networks (Fig. 3 of the paper): squeeze-excitation residual blocks and
the multi-kernel block (three parallel convolution stacks with kernels 3, 4 and 5, a fusion convolution, SE blocks).
All convolutions use 'same' padding, so every network built from them works at any H×W."""

from __future__ import annotations

import torch
from torch import nn


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
