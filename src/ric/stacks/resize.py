"""Resizers of the serving libraries, in torch (differentiable), and the libraries themselves.

Every resizer here is separable: one weight matrix per axis (``out × in``), so a resize is two matrix products
and gradients flow through it. The matrices follow the libraries' own sources:

* ``pil-*``: Pillow's ``Image.resize`` (``Resample.c``): the filter is stretched by the scale when downscaling
  (antialiasing), weights are renormalised at the borders; bilinear (support 1), bicubic (a = −0.5, support 2),
  box (support ½) and Lanczos (3 lobes). Pillow resizes horizontally first and rounds to 8 bits after each pass;
  ``quantize=True`` reproduces that (straight-through: the forward value is rounded, the gradient is not).
* ``opencv-*``: OpenCV's ``cv2.resize``: ``INTER_LINEAR`` and ``INTER_CUBIC`` (a = −0.75) sample at half-pixel
  centres with replicated borders and no antialiasing; ``INTER_AREA`` averages the source area each output pixel
  covers (its upscaling rule when either axis grows). One rounding to 8 bits at the end.
* ``torch-bilinear-aa`` / ``torch-bilinear``: ``torch.nn.functional.interpolate`` (torchvision's tensor resize)
  with and without antialiasing; float, as ``ric`` itself runs the declared preprocessing.

Measured against the real libraries in ``tests/stacks/test_resize.py`` (random and natural images, up and down):
Pillow's float filters to 1e-5 (mode ``F``) and its 8-bit results bit for bit; OpenCV's 8-bit results within
one level (1/255), on at most 13 % of the pixels (its fixed-point coefficients and SIMD shortcuts, which also
differ between CPU builds).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

PIL_FILTERS = {"bilinear": 1.0, "bicubic": 2.0, "box": 0.5, "lanczos": 3.0}  # support of each Pillow filter
OPENCV = ("linear", "area", "cubic")
RESIZERS = ("torch-bilinear-aa", "torch-bilinear", *(f"pil-{k}" for k in PIL_FILTERS),
            *(f"opencv-{k}" for k in OPENCV))


def _pil_filter(kind: str, x: np.ndarray) -> np.ndarray:
    ax = np.abs(x)
    if kind == "box":
        return ((x > -0.5) & (x <= 0.5)).astype(np.float64)
    if kind == "bilinear":
        return np.where(ax < 1, 1 - ax, 0.0)
    if kind == "bicubic":
        a = -0.5
        near = ((a + 2) * ax - (a + 3)) * ax * ax + 1
        far = (((ax - 5) * ax + 8) * ax - 4) * a
        return np.where(ax < 1, near, np.where(ax < 2, far, 0.0))
    return np.where((x >= -3) & (x < 3), np.sinc(x) * np.sinc(x / 3), 0.0)  # lanczos


def pil_weights(n_in: int, n_out: int, kind: str, fixed: bool = False) -> np.ndarray:
    """Pillow's ``precompute_coeffs`` as an ``n_out × n_in`` matrix (float64, rows sum to 1); ``fixed``: rounded
    to the 22 fractional bits Pillow's 8-bit path uses (``normalize_coeffs_8bpc``)."""
    scale = n_in / n_out
    fscale = max(scale, 1.0)
    support = PIL_FILTERS[kind] * fscale
    w = np.zeros((n_out, n_in))
    for o in range(n_out):
        centre = (o + 0.5) * scale
        lo = max(int(centre - support + 0.5), 0)
        hi = min(int(centre + support + 0.5), n_in)
        taps = _pil_filter(kind, (np.arange(lo, hi) - centre + 0.5) / fscale)
        if taps.sum() != 0:
            taps = taps / taps.sum()
        w[o, lo:hi] = taps
    if fixed:
        w = np.trunc(w * (1 << 22) + np.copysign(0.5, w)) / (1 << 22)
    return w


def _cubic(fx: float) -> list[float]:
    a = -0.75
    c0 = ((a * (fx + 1) - 5 * a) * (fx + 1) + 8 * a) * (fx + 1) - 4 * a
    c1 = ((a + 2) * fx - (a + 3)) * fx * fx + 1
    c2 = ((a + 2) * (1 - fx) - (a + 3)) * (1 - fx) * (1 - fx) + 1
    return [c0, c1, c2, 1 - c0 - c1 - c2]


def _area_down(n_in: int, n_out: int) -> np.ndarray:
    """OpenCV's ``computeResizeAreaTab``: the share of each source pixel in an output cell."""
    scale = n_in / n_out
    w = np.zeros((n_out, n_in))
    for o in range(n_out):
        f1 = o * scale
        f2 = f1 + scale
        cell = min(scale, n_in - f1)
        s2 = min(math.floor(f2), n_in - 1)
        s1 = min(math.ceil(f1), s2)
        if s1 - f1 > 1e-3:
            w[o, s1 - 1] += (s1 - f1) / cell
        w[o, s1:s2] += 1 / cell
        if f2 - s2 > 1e-3:
            w[o, s2] += min(f2 - s2, 1.0, cell) / cell
    return w


def opencv_weights(n_in: int, n_out: int, kind: str, area_down: bool | None = None) -> np.ndarray:
    """``cv2.resize``'s weights for one axis as an ``n_out × n_in`` matrix. ``area_down``: for ``area``, whether
    OpenCV takes its averaging path (both axes shrink); otherwise it uses its upscaling rule on both axes."""
    if kind == "area" and (n_in >= n_out if area_down is None else area_down):
        return _area_down(n_in, n_out)
    inv = n_out / n_in
    scale = 1 / inv
    w = np.zeros((n_out, n_in))
    for o in range(n_out):
        if kind == "area":
            sx = math.floor(o * scale)
            fx = (o + 1) - (sx + 1) * inv
            fx = 0.0 if fx <= 0 else fx - math.floor(fx)
        else:
            fx = float(np.float32((o + 0.5) * scale - 0.5))
            sx = math.floor(fx)
            fx -= sx
        if kind == "cubic":
            taps, first = _cubic(fx), sx - 1
        else:
            if sx < 0:
                sx, fx = 0, 0.0
            if sx >= n_in - 1:
                sx, fx = n_in - 1, 0.0
            taps, first = [1 - fx, fx], sx
        for k, c in enumerate(taps):
            w[o, min(max(first + k, 0), n_in - 1)] += c
    return w


@lru_cache(maxsize=512)
def weights(method: str, n_in: int, n_out: int, area_down: bool | None = None, fixed: bool = False) -> torch.Tensor:
    """The ``n_out × n_in`` float64 matrix of a ``pil-*`` or ``opencv-*`` resizer along one axis (cached);
    ``fixed``: Pillow's 8-bit fixed-point coefficients."""
    lib, kind = method.split("-", 1)
    if lib == "pil":
        w = pil_weights(n_in, n_out, kind, fixed)
    elif lib == "opencv":
        w = opencv_weights(n_in, n_out, kind, area_down)
    else:
        raise ValueError(f"no weight matrix for resizer {method!r}")
    return torch.from_numpy(w)


def round8(v: torch.Tensor) -> torch.Tensor:
    """Round half up and clip to 0..255 (values on the 0..255 scale), with a straight-through gradient."""
    return v + (torch.floor(v + 0.5).clamp(0, 255) - v).detach()


def resize(x: torch.Tensor, size: tuple[int, int], method: str, quantize: bool = False) -> torch.Tensor:
    """Resize N×C×h×w (float, [0,1]) to ``size`` = (H, W) the way ``method`` (one of :data:`RESIZERS`) does;
    differentiable. ``quantize``: the input is taken as 8-bit and the output is rounded to 8 bits where the
    library rounds (Pillow after each pass, with its fixed-point weights, exactly; OpenCV once), computed in
    float64 so that ties fall as in the library."""
    h, w = x.shape[-2:]
    H, W = size
    if (h, w) == (H, W):
        return x
    if method.startswith("torch-"):
        return F.interpolate(x, size=(H, W), mode="bilinear", align_corners=False,
                             antialias=method.endswith("-aa"))
    down = (h >= H and w >= W) if method == "opencv-area" else None
    pil = method.startswith("pil-")
    dtype = x.dtype
    ww = weights(method, w, W, down, quantize and pil).to(x.device)
    wh = weights(method, h, H, down, quantize and pil).to(x.device)
    if quantize:
        x = round8(x.double() * 255)
    else:
        ww, wh = ww.to(dtype), wh.to(dtype)
    if w != W:  # horizontal pass first, as Pillow does
        x = x @ ww.T
        if quantize and pil:
            x = round8(x)
    if h != H:
        x = wh @ x
    return (round8(x) / 255).to(dtype) if quantize else x


# ------------------------------------------------------------------------------------ the real libraries
def library_resize(a: np.ndarray, size: tuple[int, int], method: str) -> np.ndarray:
    """Resize a uint8 H×W×C array with the real library behind ``method`` (``pil-*``: Pillow, ``opencv-*``:
    cv2). Raises ImportError when the library is not installed."""
    H, W = size
    if a.shape[:2] == (H, W):
        return a
    lib, kind = method.split("-", 1)
    if lib == "pil":
        from PIL import Image

        flt = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC,
               "box": Image.Resampling.BOX, "lanczos": Image.Resampling.LANCZOS}[kind]
        if a.shape[2] == 1:
            return np.asarray(Image.fromarray(a[:, :, 0]).resize((W, H), flt))[:, :, None]
        return np.asarray(Image.fromarray(a).resize((W, H), flt))
    if lib == "opencv":
        import cv2

        flag = {"linear": cv2.INTER_LINEAR, "area": cv2.INTER_AREA, "cubic": cv2.INTER_CUBIC}[kind]
        out = cv2.resize(np.ascontiguousarray(a), (W, H), interpolation=flag)
        return out[:, :, None] if out.ndim == 2 else out
    raise ValueError(f"resizer {method!r} has no library")
