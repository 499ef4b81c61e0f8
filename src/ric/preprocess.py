"""A classifier's own preprocessing: how an image of any size becomes the network's input.

Declared in a classifier bundle's ``config.json`` (or a bring-your-own JSON) under ``"preprocess"``:

* ``{"kind": "resize", "size": [H, W]}``: resize to H×W (aspect ratio not kept);
* ``{"kind": "resize-crop", "resize": S, "size": [H, W]}``: resize the shorter side to S (the other side
  ``int(S · long / short)``, torchvision's rule), then crop the centre H×W;
* optional ``"interpolation"`` (``bilinear`` default, ``bicubic``, ``nearest``) and ``"antialias"`` (default
  ``true``).

Implemented once, in torch (torchvision's tensor resize and centre crop), so it is differentiable: the same
function runs when the cloud classifies a ciphertext, when ``ric classify`` labels a photo, and inside the
exact scheme's attack, which optimises the full-size ciphertext through it. An image already at the network's
input size passes through unchanged. A classifier without a declaration accepts only its input size.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ric.errors import InputError

KINDS = ("resize", "resize-crop")
INTERPOLATIONS = ("bilinear", "bicubic", "nearest")
MIN_SIDE = 8  # smaller images are refused even by classifiers that resize


@dataclass(frozen=True)
class Preprocess:
    kind: str
    size: tuple[int, int]
    resize: int = 0
    interpolation: str = "bilinear"
    antialias: bool = True

    @classmethod
    def from_config(cls, cfg: dict | None) -> Preprocess | None:
        """Parse a ``"preprocess"`` declaration (``None`` when there is none); raise :class:`InputError` if it
        is malformed."""
        if not cfg:
            return None
        try:
            kind = str(cfg["kind"])
            size = tuple(int(v) for v in cfg["size"])
            pre = cls(kind, size, int(cfg.get("resize", 0)), str(cfg.get("interpolation", "bilinear")),
                      bool(cfg.get("antialias", True)))
        except (KeyError, TypeError, ValueError) as e:
            raise InputError(f"malformed preprocess declaration {cfg!r}: {e}") from None
        if kind not in KINDS or len(size) != 2 or min(size) < 1 or pre.interpolation not in INTERPOLATIONS:
            raise InputError(f"preprocess: kind is one of {KINDS}, size [H, W], interpolation one of "
                             f"{INTERPOLATIONS}; got {cfg!r}")
        if kind == "resize-crop" and pre.resize < max(size):
            raise InputError(f"preprocess resize-crop: resize ({pre.resize}) must be at least the crop {list(size)}")
        return pre

    def config(self) -> dict:
        out = {"kind": self.kind, "size": list(self.size), "interpolation": self.interpolation,
               "antialias": self.antialias}
        if self.kind == "resize-crop":
            out["resize"] = self.resize
        return out

    def check(self, h: int, w: int) -> None:
        if min(h, w) < MIN_SIDE:
            raise InputError(f"image is {h}x{w}; images smaller than {MIN_SIDE} pixels on a side are not accepted")

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """N×C×h×w → N×C×H×W (differentiable); unchanged when h×w is already the input size."""
        if tuple(x.shape[-2:]) == self.size:
            return x
        from torchvision.transforms import InterpolationMode
        from torchvision.transforms.v2 import functional as F

        mode = InterpolationMode(self.interpolation)
        anti = self.antialias and self.interpolation != "nearest"
        if self.kind == "resize":
            return F.resize(x, list(self.size), interpolation=mode, antialias=anti)
        h, w = x.shape[-2:]
        if min(h, w) != self.resize:
            x = F.resize(x, [self.resize], interpolation=mode, antialias=anti)
        return F.center_crop(x, list(self.size))
