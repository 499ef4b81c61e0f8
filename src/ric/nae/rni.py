"""Ablation ``none``: the random noise image (RNI) itself, with no attack (Table 4 of the paper: RNI vs NAE)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from ric.nae.base import Attack, register_attack


@register_attack("none")
@dataclass(repr=False)
class NoAttack(Attack):
    """Ablation: use the random noise image itself (RNI instead of NAE)."""

    def __call__(self, model: Callable, z0: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return z0.clone()
