"""The exact scheme's adversarial digits: a targeted margin attack on the high digits of a ciphertext.

A ciphertext sub-pixel is ``c = 2^b·q + m``; the low digit ``m`` carries the sealed image and is fixed, the high
digit ``q`` is moved until the unmodified classifier labels ``c`` as the target with a lead of ``κ`` logits.
With ``ensemble`` (a robustness set of :mod:`ric.stacks`, by name, or a list of callables ``x -> logits``), the
lead must hold on every member: the serving stacks a cloud may run instead of ``ric``'s own preprocessing.
On a carrier the network sees downsampled (a photo's), :meth:`DigitAttack.smooth` moves an image at the network's
grid instead of each digit, so that every resizer sees about the same image.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch

from ric.nae.base import Attack, margin, register_attack
from ric.stacks import resize as rs


@register_attack("digit-margin")
@dataclass(repr=False)
class DigitAttack(Attack):
    """Targeted margin attack on the high digits ``q`` of ``c = 2^b·q + m`` (``m`` fixed).

    ``q`` is relaxed to ``Q·sigmoid(w) − ½`` (``Q = 2^(8−b)``) and rounded with a straight-through gradient, so
    the classifier always sees the real 8-bit ciphertext. Adam on ``w``; an image stops as soon as its rounded
    ciphertext gives the target a lead of ``kappa`` logits. Start: the keyed random digits ``q0`` plus keyed
    offsets inside their rounding cells (some digits sit near a boundary and flip at the first steps).

    ``ensemble``: ``None`` (the model as given), the name of a set in :data:`ric.stacks.ROBUST_SETS`, or a list
    of callables ``x -> logits``; an image then stops once the target leads by ``kappa`` on every member, and
    ``reduce`` (``"mean"`` or ``"max"``) combines the members' clamped margins into the loss.

    ``precision``: what a robustness set's members (:class:`ric.stacks.Ensemble`) run the network in during the
    attack: ``"fp32"``, ``"bf16"`` (autocast, channels-last) or ``"auto"`` (bf16 where the device runs it natively,
    :func:`ric.stacks.runtimes.native_bf16`, else fp32). The attack is a surrogate: what decides is the check
    after it (the scheme's own label, :func:`ric.stacks.verify` on the real stacks in their own precisions), so a
    bf16 margin that does not hold in fp32 costs a retry, never a wrong ciphertext."""

    steps: int = 100
    lr: float = 0.3
    kappa: float = 2.0
    ensemble: object = None
    reduce: str = "mean"
    precision: str = "auto"

    def _settings(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        e = out["ensemble"]
        out["ensemble"] = e if e is None or isinstance(e, str) else getattr(e, "name", "") or f"{len(e)} callables"
        return out

    def config(self) -> dict:
        return {"name": self.name, **self._settings()}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self._settings().items())})"

    def precision_on(self, device: torch.device) -> str:
        """The precision the members run in on ``device`` (``"auto"`` resolved)."""
        if self.precision not in ("auto", "fp32", "bf16"):
            raise ValueError(f"precision is 'auto', 'fp32' or 'bf16', got {self.precision!r}")
        if self.precision == "auto":
            from ric.stacks.runtimes import native_bf16

            return "bf16" if native_bf16(device) else "fp32"
        return self.precision

    def _members(self, model):
        if self.reduce not in ("mean", "max"):
            raise ValueError(f"reduce is 'mean' or 'max', got {self.reduce!r}")
        if isinstance(self.ensemble, str):
            from ric.stacks import ensemble

            return ensemble(model, self.ensemble)
        return self.ensemble

    def _loss(self, model, members, x: torch.Tensor, target: torch.Tensor,
              precision: str = "fp32") -> tuple[torch.Tensor, torch.Tensor]:
        """(loss, worst margin) per image; the worst margin decides when an image is done."""
        if members is None:
            loss = margin(model(x), target, self.kappa)
            return loss, loss.detach()
        if hasattr(members, "split"):  # a robustness set (ric.stacks.Ensemble): one batched pass in ``precision``
            return self._combine(members(x, precision), target)
        return self._combine(members(x) if callable(members) else torch.stack([f(x) for f in members]), target)

    def _combine(self, z: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        per = torch.stack([margin(zk, target, self.kappa) for zk in z])
        worst = per.detach().max(0).values
        return (per.mean(0) if self.reduce == "mean" else per.max(0).values), worst

    def __call__(self, model, m: torch.Tensor, q0: torch.Tensor, offset: torch.Tensor, target: torch.Tensor,
                 bits: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(q, steps)``: digits (like ``q0``) and the steps each image took (``-1``: no success). Images that
        reach the margin leave the batch, so the cost follows the median image, not the slowest."""
        big = float(1 << (8 - bits))
        p = ((q0.float() + 0.5 + offset) / big).clamp(1e-4, 1 - 1e-4)
        members, prec = self._members(model), self.precision_on(m.device)

        def evaluate(wl: torch.Tensor, live: torch.Tensor):
            soft = big * torch.sigmoid(wl) - 0.5
            hard = soft + (soft.detach().round().clamp(0, big - 1) - soft).detach()
            x = (hard * (1 << bits) + m[live].float()) / 255
            return (*self._loss(model, members, x, target[live], prec), hard)

        return self._run(m, torch.log(p / (1 - p)), evaluate)

    def smooth(self, model, m: torch.Tensor, v0: torch.Tensor, target: torch.Tensor,
               bits: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The attack on a smooth image: ``(q, steps)`` as :meth:`__call__`, for carriers larger than the grid the
        network sees. The variable is ``v`` (N×C×gh×gw, ``v0`` in (0, 1)), an image at that grid, upsampled
        bilinearly to the carrier's size as ``u``; the high digits are ``q = round((u − m) / 2^b)``, so the
        carrier ``c = 2^b·q + m`` is ``u`` plus a rounding error below half a digit, and every reasonable
        resampler of the serving stacks sees ``u``'s own image (the error averages out under antialiasing and
        stays below 2^(b−1) levels where a resizer samples). The attack then holds its margin over the members
        of :meth:`ric.stacks.Ensemble.smooth` only, the resizers that still differ on such images. Where the
        members' resizes are linear (:meth:`ric.stacks.Ensemble.split`), the gradient flows through ``v`` and
        the resize matrices alone, never through the full-size carrier."""
        big, h, w = float(1 << (8 - bits)), *m.shape[-2:]
        up_h = rs.weights("pil-bilinear", v0.shape[-2], h).float().to(m.device)
        up_w = rs.weights("pil-bilinear", v0.shape[-1], w).float().to(m.device)
        lo = float(1 << (bits - 1))  # u stays where every low digit m can round to it without clipping
        hi = 255.0 - lo - big
        members = self._members(model)
        members = members.smooth() if hasattr(members, "smooth") else members
        if members is None and getattr(model, "preprocess", None) is not None:
            members = _own_path(model)  # the declared preprocessing as the one member: split() applies
        mf, prec = m.float(), self.precision_on(m.device)

        def evaluate(wl: torch.Tensor, live: torch.Tensor):
            v = lo + (hi - lo) * torch.sigmoid(wl)
            low = mf if len(live) == len(mf) else mf[live]
            with torch.no_grad():
                u = up_h @ v @ up_w.T
                hard = (u - low).div_(1 << bits).round_().clamp_(0, big - 1)
                fixed = (hard * (1 << bits)).add_(low).sub_(u).div_(255)  # the rounding error: c = u + error
            z = members.split(fixed, v / 255, up_h, up_w, prec) if hasattr(members, "split") else None
            if z is not None:
                return (*self._combine(z, target[live]), hard)
            u = up_h @ v @ up_w.T
            soft = (u - low) / (1 << bits)
            hard = soft + (hard - soft).detach()
            return (*self._loss(model, members, (hard * (1 << bits) + low) / 255, target[live], prec), hard)

        p = v0.float().clamp(1e-4, 1 - 1e-4)
        return self._run(m, torch.log(p / (1 - p)), evaluate)

    def _run(self, m: torch.Tensor, w: torch.Tensor, evaluate) -> tuple[torch.Tensor, torch.Tensor]:
        """Adam on the relaxed variable ``w``; ``evaluate(w[live], live)`` gives the loss and the worst margin of
        the live images and their high digits (straight-through rounded)."""
        mom, var = torch.zeros_like(w), torch.zeros_like(w)
        steps = torch.full((len(w),), -1, dtype=torch.long)
        q = torch.zeros(m.shape, dtype=torch.uint8, device=m.device)
        live = torch.arange(len(w), device=w.device)
        for step in range(self.steps + 1):
            wl = w[live].requires_grad_(True)
            loss, worst, hard = evaluate(wl, live)
            hit = worst <= -self.kappa
            q[live] = hard.detach().round().to(q.dtype)  # the last try of an image that never hits stays
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


def _own_path(model):
    """The classifier's own declared preprocessing as a one-member :class:`ric.stacks.Ensemble`, kept on the model
    itself (so it goes when the model goes)."""
    own = model.__dict__.get("_ric_own_path")
    if own is None:
        from ric.stacks.robust import Ensemble, Member

        own = model.__dict__["_ric_own_path"] = Ensemble(model, (Member(),), "")
    return own
