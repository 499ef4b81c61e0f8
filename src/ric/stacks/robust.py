"""The robustness set: serving variations the exact scheme's attack holds its margin over, and the verifier.

A set is a list of members, each a resizer and a crop geometry (:func:`ric.stacks.base.plan`) in front of the
unmodified network. :func:`ensemble` makes them differentiable torch callables for one classifier (Pillow and
OpenCV members reproduce the 8-bit library result, with straight-through rounding), so an attack can minimise the
margin over all of them at once. :func:`verify` then runs the real stacks (Pillow, OpenCV, ONNX Runtime fp32 /
fp16 / int8, torch fp16 / bf16, ...) and reports each image's margin on each.

Precisions are not members: their logits move by a small fraction of the attack's margin κ, so a ciphertext
that wins by κ on every resizer also wins in fp16, bf16 and int8; :func:`verify` checks that instead of paying
for it in every step.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field

import numpy as np
import torch

from ric.errors import InputError
from ric.stacks import resize as rs
from ric.stacks import runtimes
from ric.stacks.base import DECLARED, STACKS, declared, declared_resize, plan


@dataclass(frozen=True)
class Member:
    resizer: str = DECLARED
    scale: float = 1.0
    offset: tuple[int, int] = (0, 0)


_RESIZERS = (DECLARED, "torch-bilinear", "pil-bilinear", "pil-bicubic", "pil-box", "pil-lanczos", "opencv-linear",
             "opencv-area", "opencv-cubic")
_GEOMETRIES = ((1.0, (0, 0)), (1.15, (0, 0)), (1.15, (2, 2)))

#: name -> members. ``serving-v1``: every resizer of :data:`ric.stacks.STACKS` at the declared geometry, 15 %
#: larger before the same crop, and that crop moved by 2 network pixels (without this third geometry, 90-95 %
#: of SVHN ciphertexts hold on ``crop-1.15-shift2``); ``resizers-v1``: the resizers at the declared geometry.
ROBUST_SETS: dict[str, tuple[Member, ...]] = {
    "serving-v1": tuple(Member(r, s, o) for s, o in _GEOMETRIES for r in _RESIZERS),
    "resizers-v1": tuple(Member(r) for r in _RESIZERS),
}
#: the resizers that still differ on a smooth carrier (an image at the network's grid, upsampled): the declared one
#: stands for every antialiased resize (they all average the rounding error away and see the same image up to
#: their kernel), OpenCV linear for those that sample a few pixels without antialiasing (bilinear in torch and
#: TensorFlow, OpenCV cubic), which the declared resizer alone does not cover. The verifier still runs every stack;
#: the photo rows of ``benchmarks/stacks.py`` measure what holds
SMOOTH_RESIZERS = (DECLARED, "opencv-linear")
#: the exact scheme's default (``ExactScheme(robust_set=...)``, ``ric encrypt --robust-set``); chosen by
#: measurement (``benchmarks/stacks.py``, the stack table of the docs)
DEFAULT_ROBUST_SET = "serving-v1"


class Ensemble:
    """The differentiable members of a robustness set for one classifier.

    ``ens(x)`` gives the logits of the members that differ at ``x``'s size (K×N×classes), in one batched forward
    pass. Members whose network inputs can never differ by more than :data:`SAME` in any pixel count once
    (e.g. every resizer on an image already at the input size, or Pillow bilinear and the declared antialiased
    bilinear), and members that share a resize share its computation. Iterating gives one callable
    ``x -> logits`` per member."""

    def __init__(self, clf, members: tuple[Member, ...], name: str = ""):
        self.clf = clf
        self.members = tuple(members)
        self.name = name
        self._distinct: dict[tuple[int, int], list[Member]] = {}
        self._plans: dict[tuple[int, int], _Plan | None] = {}
        self._smooth: Ensemble | None = None

    def __len__(self) -> int:
        return len(self.members)

    def __iter__(self):
        return iter([lambda x, m=m: self._net(self._input(m, x)) for m in self.members])

    def _net(self, x, precision: str = "fp32"):
        if precision == "bf16":
            return runtimes.autocast_net(self.clf, x, torch.bfloat16)
        return self.clf.net((x - self.clf.mean) / self.clf.std)

    def _resized(self, m: Member, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        if m.resizer == DECLARED:
            return declared_resize(declared(self.clf), x, size)
        return rs.resize(x, size, m.resizer, quantize=not m.resizer.startswith("torch-"))

    def _input(self, m: Member, x: torch.Tensor, cache: dict | None = None) -> torch.Tensor:
        pre = declared(self.clf)
        if m.resizer == DECLARED and m.scale == 1.0 and m.offset == (0, 0):
            return pre(x) if self.clf.preprocess is not None else x
        (rh, rw), (top, left) = plan(pre, *x.shape[-2:], m.scale, m.offset)
        key = (m.resizer, rh, rw)
        if cache is None or key not in cache:
            y = self._resized(m, x, (rh, rw))
            if cache is not None:
                cache[key] = y
        y = cache[key] if cache is not None else y
        H, W = pre.size
        return y[..., top:top + H, left:left + W]

    def smooth(self) -> Ensemble:
        """The members an attack on a smooth carrier (:meth:`ric.nae.DigitAttack.smooth`) holds its margin over:
        those whose resizer is in :data:`SMOOTH_RESIZERS`, at every geometry of the set (all of them if none is)."""
        if self._smooth is None:
            kept = tuple(m for m in self.members if m.resizer in SMOOTH_RESIZERS) or self.members
            self._smooth = self if kept == self.members else Ensemble(self.clf, kept, self.name)
        return self._smooth

    def distinct(self, h: int, w: int) -> list[Member]:
        """The members that count for an h×w image (see the class notes; cached per size)."""
        if (h, w) not in self._distinct:
            kept: list[tuple[Member, tuple | None]] = []
            for m in self.members:
                mats = _matrices(declared(self.clf), m, h, w)
                if not any(_close(mats, other) for _, other in kept):
                    kept.append((m, mats))
            self._distinct[(h, w)] = [m for m, _ in kept]
        return self._distinct[(h, w)]

    def _plan(self, h: int, w: int) -> _Plan | None:
        """The stacked resize of :meth:`__call__` for h×w images (cached; ``None`` if a member has no matrices)."""
        if (h, w) not in self._plans:
            self._plans[(h, w)] = _Plan.make(declared(self.clf), self.distinct(h, w), h, w)
        return self._plans[(h, w)]

    def __call__(self, x: torch.Tensor, precision: str = "fp32") -> torch.Tensor:
        ms, p = self.distinct(*x.shape[-2:]), self._plan(*x.shape[-2:])
        if p is None:
            cache: dict = {}
            inputs = [self._input(m, x, cache) for m in ms]
        else:
            inputs = p(x)
        return self._logits(inputs, len(x), precision)

    def split(self, fixed: torch.Tensor, small: torch.Tensor, up_h: torch.Tensor, up_w: torch.Tensor,
              precision: str = "fp32") -> torch.Tensor | None:
        """The logits of :meth:`__call__` at the 8-bit images ``fixed + up_h · small · up_wᵀ``, with gradients
        through ``small`` only (:meth:`_Plan.split`): the full-size part is resized without autograd, so an
        attack on a small image pays no backward pass over the carrier. ``None`` where the members' resizes are
        not linear up to their last rounding (Pillow rounds between its passes; nearest has no matrix)."""
        p = self._plan(*fixed.shape[-2:])
        inputs = None if p is None else p.split(fixed, small, up_h, up_w)
        return None if inputs is None else self._logits(inputs, len(fixed), precision)

    def _logits(self, inputs: list[torch.Tensor], n: int, precision: str = "fp32") -> torch.Tensor:
        per = max(1, CHUNK // n)  # members per forward pass: CPU convolutions slow down on larger batches
        z = torch.cat([self._net(torch.cat(inputs[s:s + per]), precision) for s in range(0, len(inputs), per)])
        return z.view(len(inputs), n, -1)


@dataclass
class _Plan:
    """Every member's network input for h×w images in float32 matrix products: one product with the members'
    horizontal matrices stacked (the only pass over the full-size image, shared by all members), then each
    resize's vertical pass, its 8-bit rounding (straight-through: Pillow after each pass, OpenCV once) and each
    member's crop. An attack's surrogate of the libraries (float32 sums, so a tie may fall one level apart from
    :func:`ric.stacks.resize.resize`); :func:`verify` runs the libraries themselves."""

    cols: torch.Tensor  # (Σ W_r) × w: the resizes' horizontal matrices, stacked
    rows: list  # per resize: its H_r × h vertical matrix
    widths: list  # per resize: W_r
    quant: list  # per resize: "pil", "cv" or ""
    crops: list  # per member: (resize index, top, left)
    size: tuple
    composed: dict = field(default_factory=dict)  # split(): the matrices composed with an upsampling

    @classmethod
    def make(cls, pre, members, h: int, w: int) -> _Plan | None:
        keys: dict[tuple, int] = {}
        cols, rows, widths, quant, crops = [], [], [], [], []
        for m in members:
            (rh, rw), (top, left) = plan(pre, h, w, m.scale, m.offset)
            kind, q = _kind(pre, m.resizer)
            if kind is None:
                return None
            if (kind, q, rh, rw) not in keys:
                keys[(kind, q, rh, rw)] = len(rows)
                down = (h >= rh and w >= rw) if kind == "opencv-area" else None
                cols.append(_weights(kind, w, rw, down, q == "pil"))
                rows.append(_weights(kind, h, rh, down, q == "pil"))
                widths.append(rw)
                quant.append(q)
            crops.append((keys[(kind, q, rh, rw)], top, left))
        return cls(torch.cat(cols), rows, widths, quant, crops, tuple(pre.size))

    def __call__(self, x: torch.Tensor) -> list[torch.Tensor]:
        if any(self.quant):
            x = rs.round8(x * 255) / 255  # the libraries take 8-bit images (x is already one: exact but for float)
        return self._passes(x @ self.cols.to(x.device).T)

    def _passes(self, y: torch.Tensor, ys: torch.Tensor | None = None, rows: list | None = None) -> list:
        """Each resize's vertical pass over its part of the stacked horizontal product ``y`` (plus, for
        :meth:`split`, ``rows[r] @`` its part of ``ys``), its rounding, and each member's crop."""
        outs, at = [], 0
        for r, (wh, width, q) in enumerate(zip(self.rows, self.widths, self.quant, strict=True)):
            part = y[..., at:at + width]
            if q == "pil":
                part = rs.round8(part * 255) / 255
            part = wh.to(y.device) @ part
            if ys is not None:
                part = part + rows[r] @ ys[..., at:at + width]
            at += width
            outs.append(rs.round8(part * 255) / 255 if q else part)
        H, W = self.size
        return [outs[r][..., top:top + H, left:left + W] for r, top, left in self.crops]

    def split(self, fixed: torch.Tensor, small: torch.Tensor, up_h: torch.Tensor,
              up_w: torch.Tensor) -> list[torch.Tensor] | None:
        """The members' inputs for 8-bit images ``x = fixed + up_h · small · up_wᵀ`` (values /255): by linearity,
        each resize ``R x Cᵀ`` is ``R fixed Cᵀ`` (the stacked product, without autograd) plus
        ``(R up_h) small (C up_w)ᵀ`` (small matrices, with it), then its rounding and crop. ``None`` if a resize
        rounds between its passes (Pillow's)."""
        if "pil" in self.quant:
            return None
        key = (tuple(up_h.shape), tuple(up_w.shape), str(up_h.device))
        if key not in self.composed:
            self.composed.clear()  # one carrier size at a time
            self.composed[key] = (self.cols.to(up_w.device) @ up_w, [wh.to(up_h.device) @ up_h for wh in self.rows])
        cols, rows = self.composed[key]
        with torch.no_grad():  # the full-size part carries no gradient: nothing of it is kept for a backward pass
            y = fixed @ self.cols.to(fixed.device).T
        return self._passes(y, small @ cols.T, rows)


def _kind(pre, resizer: str) -> tuple[str | None, str]:
    """(weights name, rounding) of a member's resizer: the library's own weights and rounding (``"pil"``,
    ``"cv"``) for ``pil-*`` and ``opencv-*``, float weights and no rounding for torch's resizes and the declared
    one (``None``: nearest, no matrix)."""
    if resizer == DECLARED:
        if pre.interpolation == "nearest":
            return None, ""
        if pre.antialias:
            return f"pil-{pre.interpolation}", ""
        return {"bilinear": "opencv-linear", "bicubic": "opencv-cubic"}[pre.interpolation], ""
    if resizer.startswith("torch-"):
        return {"torch-bilinear-aa": "pil-bilinear", "torch-bilinear": "opencv-linear"}[resizer], ""
    return resizer, ("pil" if resizer.startswith("pil-") else "cv")


def _weights(kind: str, n: int, size: int, down, fixed: bool) -> torch.Tensor:
    if n == size:
        return torch.eye(n)
    return rs.weights(kind, n, size, down, fixed).float()


#: images per forward pass of the ensemble (measured on CPU: 832 at once cost 1.4-2x per image what 64-128 do)
CHUNK = 128
#: members whose network inputs differ by at most this much in every pixel, for every image, count once
SAME = 1 / 255


def _axis(pre, resizer: str, n: int, size: int, down: bool | None) -> np.ndarray | None:
    """One axis's resize matrix (float64) as ``resizer`` computes it, ``None`` where there is none (nearest)."""
    if n == size:
        return np.eye(n)
    kind, _ = _kind(pre, resizer)
    return None if kind is None else rs.weights(kind, n, size, down).numpy()


def _matrices(pre, m: Member, h: int, w: int) -> tuple | None:
    """(rows, columns) matrices that map an h×w image to member ``m``'s network input (crop included)."""
    (rh, rw), (top, left) = plan(pre, h, w, m.scale, m.offset)
    down = (h >= rh and w >= rw) if m.resizer == "opencv-area" else None
    a, b = _axis(pre, m.resizer, h, rh, down), _axis(pre, m.resizer, w, rw, down)
    if a is None or b is None:
        return None
    H, W = pre.size
    return a[top:top + H], b[left:left + W]


def _close(p: tuple | None, q: tuple | None) -> bool:
    """Whether two members' outputs differ by at most :data:`SAME` on every image in [0,1]: the bound
    ‖A−A'‖·‖B‖ + ‖A'‖·‖B−B'‖ with ‖·‖ the largest row sum of absolute values."""
    if p is None or q is None or p[0].shape != q[0].shape or p[1].shape != q[1].shape:
        return False
    norm = lambda a: np.abs(a).sum(1).max()  # noqa: E731
    return norm(p[0] - q[0]) * norm(p[1]) + norm(q[0]) * norm(p[1] - q[1]) <= SAME


def check_robust_set(name: str) -> str:
    """``name`` if it is a set of :data:`ROBUST_SETS`, else :class:`UnknownNameError` (exit 2) listing them."""
    if name not in ROBUST_SETS:
        from ric.errors import UnknownNameError

        raise UnknownNameError(f"unknown robustness set {name!r}; known: {', '.join(ROBUST_SETS)}, or none")
    return name


def smooth_grid(clf, h: int, w: int) -> tuple[int, int] | None:
    """The grid of a smooth carrier (:meth:`ric.nae.DigitAttack.smooth`) for an h×w carrier and classifier
    ``clf``: the size its declared preprocessing resizes it to, capped at the carrier's own; ``None`` where that is
    the carrier's size (nothing is downsampled: a dataset-size image, or a carrier the network upsamples)."""
    if clf.preprocess is None:
        return None
    (rh, rw), _ = plan(declared(clf), h, w)
    grid = (min(h, rh), min(w, rw))
    return None if grid == (h, w) else grid


def ensemble(clf, name: str = DEFAULT_ROBUST_SET) -> Ensemble:
    """The differentiable robustness set ``name`` (:data:`ROBUST_SETS`) for classifier ``clf``."""
    return Ensemble(clf, ROBUST_SETS[check_robust_set(name)], name)


@dataclass
class Verdict:
    """Per image: ``ok`` (the target leads by more than ``min_margin`` on every checked stack), ``margin`` (the
    smallest lead over the stacks); ``margins``: stack -> leads; ``skipped``: stacks whose library is missing."""

    ok: torch.Tensor
    margin: torch.Tensor
    margins: dict
    skipped: list
    min_margin: float = 0.0

    def failing(self, j: int) -> list[str]:
        """The checked stacks on which image ``j`` does not hold."""
        return [n for n, m in self.margins.items() if not float(m[j]) > self.min_margin]


def lead(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``Z_t − max_{i≠t} Z_i`` per image (> 0: the target wins)."""
    zt = logits.gather(1, target.view(-1, 1)).squeeze(1)
    other = logits.masked_fill(torch.nn.functional.one_hot(target, logits.shape[1]).bool(), float("-inf"))
    return zt - other.max(1).values


_CANNOT_RUN: set[tuple[str, str]] = set()  # (classifier ident, stack) pairs that raised: not tried again


def _batched(clf, inputs: dict, target: torch.Tensor) -> dict:
    """stack -> leads of the fp32 torch stacks whose network ``inputs`` are given, a few stacks per forward pass
    (at most :data:`CHUNK` images); stacks whose inputs are equal (every resizer, on an image already at the
    network's size) share one."""
    same: dict[str, str] = {}
    for n in inputs:
        same[n] = next((k for k in dict.fromkeys(same.values()) if torch.equal(inputs[k], inputs[n])), n)
    names, out = list(dict.fromkeys(same.values())), {}
    per = max(1, CHUNK // len(target))
    for s in range(0, len(names), per):
        part = names[s:s + per]
        z = runtimes.run("torch", clf, torch.cat([inputs[n] for n in part])).cpu()
        out.update({n: lead(zk, target) for n, zk in zip(part, z.split(len(target)), strict=True)})
    return {n: out[same[n]] for n in inputs}


def verify(clf, x: torch.Tensor, target: torch.Tensor, stacks=None, min_margin: float = 0.0,
           pixels: np.ndarray | None = None) -> Verdict:
    """Check images ``x`` (N×C×h×w, 8-bit values /255, one size) against the real stacks ``stacks`` (names;
    default every stack in :data:`ric.stacks.STACKS` whose libraries are installed). A stack whose library is
    missing, or that cannot run this classifier (no ONNX export of its network), is listed in ``skipped``.
    ``pixels``: the same images as the uint8 N×h×w×C array, where the caller has it (the libraries' resizers take
    it as it is instead of converting ``x`` back)."""
    names = list(stacks or STACKS)
    if len(x) == 0:
        return Verdict(torch.ones(0, dtype=torch.bool), torch.zeros(0), {}, [])
    skipped = [n for n in names if any(importlib.util.find_spec(m) is None for m in STACKS[n].modules)]
    target = target.to(torch.long).cpu()
    margins, fp32 = {}, {}
    cache = {} if pixels is None else {"uint8": np.ascontiguousarray(pixels).reshape(len(x), *pixels.shape[-3:])}
    for n in names:
        if n in skipped:
            continue
        if (clf.ident, n) in _CANNOT_RUN:
            skipped.append(n)
            continue
        s = STACKS[n]
        try:
            if s.runtime == "torch":  # the fp32 torch stacks differ in their inputs only: batched together below
                fp32[n] = s.inputs(clf, x, cache)
            else:
                margins[n] = lead(s.logits(clf, x, cache).cpu(), target)
        except InputError:  # this classifier cannot run on that stack (e.g. its network has no ONNX export)
            _CANNOT_RUN.add((clf.ident, n))
            skipped.append(n)
    margins.update(_batched(clf, fp32, target))
    margins = {n: margins[n] for n in names if n in margins}  # in the order of the stacks
    worst = torch.stack(list(margins.values())).min(0).values if margins else torch.full((len(x),), float("inf"))
    return Verdict(worst > min_margin, worst, margins, skipped, min_margin)
