"""The paper's NAE: a targeted C&W margin attack that starts from the random noise image (RNI).

Minimise ``c · max(max_{i≠t} Z_i − Z_t, −κ)`` over ``z = (tanh(w) + 1) / 2`` with Adam, starting from
``w0 = atanh(2·z0 − 1)``, no distance term. Adam is written out here (not ``torch.optim``) so that the arithmetic
is fixed by this file and the loss is a per-image sum: an image's NAE does not depend on which batch it was
computed in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from ric.nae.base import Attack, margin, register_attack


@register_attack("cw-margin")
@dataclass(repr=False)
class CWMarginAttack(Attack):
    steps: int = 100
    lr: float = 0.01
    c: float = 10.0
    kappa: float = 5.0
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8

    def __call__(self, model: Callable, z0: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Return the NAE for RNIs ``z0`` (N×C×H×W in [0,1)) and targets (N,)."""
        with torch.no_grad():
            w = torch.atanh((2 * z0 - 1).clamp(-1 + 1e-6, 1 - 1e-6))
        m = torch.zeros_like(w)
        v = torch.zeros_like(w)
        for step in range(1, self.steps + 1):
            w.requires_grad_(True)
            z = (torch.tanh(w) + 1) / 2
            loss = (self.c * margin(model(z), target, self.kappa)).sum()
            (g,) = torch.autograd.grad(loss, w)
            with torch.no_grad():
                w = w.detach()
                m.mul_(self.beta1).add_(g, alpha=1 - self.beta1)
                v.mul_(self.beta2).addcmul_(g, g, value=1 - self.beta2)
                mhat = m / (1 - self.beta1 ** step)
                vhat = v / (1 - self.beta2 ** step)
                w -= self.lr * mhat / (vhat.sqrt() + self.eps)
        with torch.no_grad():
            return (torch.tanh(w) + 1) / 2
