"""Noise-like adversarial examples (NAE): targeted attacks that start from the RNI.

The default, ``cw-margin``, is the paper's: minimise ``c · max(max_{i≠t} Z_i − Z_t, −κ)`` over
``z = (tanh(w) + 1) / 2`` with Adam, starting from ``w0 = atanh(2·z0 − 1)``, no distance term.
Adam is written out here (not ``torch.optim``) so that the arithmetic is fixed by this file and the
loss is a per-image sum: an image's NAE does not depend on which batch it was computed in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch

from .errors import UnknownNameError
from .registry import registrar

ATTACKS: dict[str, type] = {}


register_attack = registrar(ATTACKS, "name")


def margin(logits: torch.Tensor, target: torch.Tensor, kappa: float) -> torch.Tensor:
    """C&W margin per image: ``max(max_{i≠t} Z_i − Z_t, −κ)`` (≤ 0 once the target wins by κ)."""
    zt = logits.gather(1, target.view(-1, 1)).squeeze(1)
    other = logits.masked_fill(torch.nn.functional.one_hot(target, logits.shape[1]).bool(), float("-inf"))
    return torch.clamp(other.max(1).values - zt, min=-kappa)


@register_attack("cw-margin")
@dataclass
class CWMarginAttack:
    steps: int = 100
    lr: float = 0.01
    c: float = 10.0
    kappa: float = 5.0
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8

    def config(self) -> dict:
        return {"name": self.name, **asdict(self)}

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


def make_attack(config: dict | None = None):
    """Build an attack from ``{"name": ..., **settings}`` (default: the paper's cw-margin)."""
    config = dict(config or {})
    name = config.pop("name", "cw-margin")
    if name not in ATTACKS:
        raise UnknownNameError(f"unknown attack {name!r}; known: {', '.join(ATTACKS)}")
    return ATTACKS[name](**config)


@register_attack("none")
@dataclass
class NoAttack:
    """Ablation: use the random noise image itself (RNI instead of NAE)."""

    def config(self) -> dict:
        return {"name": self.name}

    def __call__(self, model: Callable, z0: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return z0.clone()
