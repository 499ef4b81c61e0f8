"""The scheme interface: uint8 images in, authenticated ciphertexts out, and back.

A scheme turns plaintext images (uint8 H×W×C arrays, C = 1 or 3) into :class:`ric.container.Ciphertext`
objects that the scheme's classifier labels ``t = C(x)``, and ciphertexts back into images. Encryption checks
itself: every ciphertext is classified before it is returned, a miss is retried with a fresh nonce, and what
still fails is reported per image (never written). Schemes register by name in :data:`SCHEMES`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..registry import registrar

SCHEMES: dict[str, type] = {}
register_scheme = registrar(SCHEMES, "name")
DEFAULT_SCHEME = "exact"


@dataclass
class EncryptResult:
    ciphertext: object | None  # ric.container.Ciphertext, or None when the image failed
    target: int
    attempts: int
    error: str = ""
    steps: int = -1  # attack steps of the successful attempt (exact scheme), -1 if not recorded


class Scheme:
    """Base class. Subclasses set ``name`` (by ``@register_scheme``) and implement the two methods."""

    name = "base"

    def encrypt(self, images: list[np.ndarray], key, progress=None) -> list[EncryptResult]:
        raise NotImplementedError

    def decrypt(self, cts: list, key, verify: bool = True) -> list[np.ndarray]:
        """Ciphertexts back to their uint8 H×W×C plaintexts (``verify``: check every tag first)."""
        raise NotImplementedError

    def _public(self) -> dict:
        return {k: v for k, v in vars(self).items() if not k.startswith("_") and k not in ("classifier", "device")}

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self._public().items())
        return f"{type(self).__name__}({inner})"


def luma(a: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma of uint8 RGB H×W×3, computed exactly as Pillow's ``convert("L")`` (the channel policy's
    RGB → grey)."""
    from PIL import Image

    return np.asarray(Image.fromarray(np.ascontiguousarray(a)).convert("L"), dtype=np.uint8)[:, :, None]


def channel_view(a: np.ndarray, channels: int) -> np.ndarray:
    """``a`` with ``channels`` channels: grey replicated to RGB, RGB reduced to luma."""
    if a.shape[2] == channels:
        return a
    if a.shape[2] == 1 and channels == 3:
        return np.repeat(a, 3, axis=2)
    if a.shape[2] == 3 and channels == 1:
        return luma(a)
    raise ValueError(f"cannot view a {a.shape[2]}-channel image with {channels} channels")
