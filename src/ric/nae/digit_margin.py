"""The exact scheme's adversarial digits: a targeted margin attack on the high digits of a ciphertext.

A ciphertext sub-pixel is ``c = 2^b·q + m``; the low digit ``m`` carries the sealed image and is fixed, the high
digit ``q`` is moved until the unmodified classifier labels ``c`` as the target with a lead of ``κ`` logits.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ric.nae.base import Attack, margin, register_attack


@register_attack("digit-margin")
@dataclass(repr=False)
class DigitAttack(Attack):
    """Targeted margin attack on the high digits ``q`` of ``c = 2^b·q + m`` (``m`` fixed).

    ``q`` is relaxed to ``Q·sigmoid(w) − ½`` (``Q = 2^(8−b)``) and rounded with a straight-through gradient, so
    the classifier always sees the real 8-bit ciphertext. Adam on ``w``; an image stops as soon as its rounded
    ciphertext gives the target a lead of ``kappa`` logits. Start: the keyed random digits ``q0`` plus keyed
    offsets inside their rounding cells (some digits sit near a boundary and flip at the first steps)."""

    steps: int = 100
    lr: float = 0.3
    kappa: float = 2.0

    def __call__(self, model, m: torch.Tensor, q0: torch.Tensor, offset: torch.Tensor, target: torch.Tensor,
                 bits: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(q, steps)``: digits (like ``q0``) and the steps each image took (``-1``: no success). Images that
        reach the margin leave the batch, so the cost follows the median image, not the slowest."""
        big = float(1 << (8 - bits))
        p = ((q0.float() + 0.5 + offset) / big).clamp(1e-4, 1 - 1e-4)
        w = torch.log(p / (1 - p))
        mom, var = torch.zeros_like(w), torch.zeros_like(w)
        steps = torch.full((len(w),), -1, dtype=torch.long)
        q = q0.clone()
        live = torch.arange(len(w), device=w.device)
        for step in range(self.steps + 1):
            wl = w[live].requires_grad_(True)
            soft = big * torch.sigmoid(wl) - 0.5
            hard = soft + (soft.detach().round().clamp(0, big - 1) - soft).detach()
            loss = margin(model((hard * (1 << bits) + m[live].float()) / 255), target[live], self.kappa)
            hit = loss.detach() <= -self.kappa
            q[live[hit]] = hard.detach()[hit].round().to(q.dtype)
            steps[live[hit].cpu()] = step
            if bool(hit.all()) or step == self.steps:
                break
            (g,) = torch.autograd.grad(loss.sum(), wl)
            with torch.no_grad():
                keep = ~hit
                live, g = live[keep], g[keep]
                mom[live] = 0.9 * mom[live] + 0.1 * g
                var[live] = 0.999 * var[live] + 0.001 * g * g
                mhat = mom[live] / (1 - 0.9 ** (step + 1))
                vhat = var[live] / (1 - 0.999 ** (step + 1))
                w[live] = w[live] - self.lr * mhat / (vhat.sqrt() + 1e-8)
        return q, steps
