"""Noise-like adversarial examples (NAE): the attack base class, the margin loss and the registry.

An attack is a dataclass of hyper-parameters (keyword arguments, as in torchattacks) registered by name in
:data:`ATTACKS`; calling it runs it. ``make_attack({"name": ..., **settings})`` builds one from a model bundle's
config. One attack per file: ``cw_margin`` (the paper's NAE), ``rni`` (the random noise image itself, for
ablations), ``digit_margin`` (the exact scheme's adversarial digits).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict

import torch

from ric.errors import UnknownNameError
from ric.registry import registrar

ATTACKS: dict[str, type] = {}


register_attack = registrar(ATTACKS, "name")


class Attack:
    """Base class: subclasses are dataclasses registered with ``@register_attack(name)``; ``config()`` is what a
    bundle stores (and what the paper scheme's fingerprint hashes), ``repr`` shows the hyper-parameters."""

    name = "base"

    def config(self) -> dict:
        return {"name": self.name, **asdict(self)}

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in asdict(self).items())
        return f"{type(self).__name__}({inner})"

    def __call__(self, model: Callable, *args, **kwargs):
        raise NotImplementedError


def margin(logits: torch.Tensor, target: torch.Tensor, kappa: float) -> torch.Tensor:
    """C&W margin per image: ``max(max_{i≠t} Z_i − Z_t, −κ)`` (≤ 0 once the target wins by κ)."""
    zt = logits.gather(1, target.view(-1, 1)).squeeze(1)
    other = logits.masked_fill(torch.nn.functional.one_hot(target, logits.shape[1]).bool(), float("-inf"))
    return torch.clamp(other.max(1).values - zt, min=-kappa)


def make_attack(config: dict | None = None):
    """Build an attack from ``{"name": ..., **settings}`` (default: the paper's cw-margin)."""
    config = dict(config or {})
    name = config.pop("name", "cw-margin")
    if name not in ATTACKS:
        raise UnknownNameError(f"unknown attack {name!r}; known: {', '.join(ATTACKS)}")
    return ATTACKS[name](**config)


