"""The scheme interface: uint8 images in, authenticated ciphertexts out, and back.

A scheme turns plaintext images (uint8 H×W×C arrays, C = 1 or 3) into :class:`ric.container.Ciphertext`
objects that the scheme's classifier labels ``t = C(x)``, and ciphertexts back into images. Encryption checks
itself: every ciphertext is classified before it is returned, a miss is retried with a fresh nonce, and what
still fails is reported per image (never written). Schemes register by name in :data:`SCHEMES`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ric.imageio import channel_view, luma  # noqa: F401  (the channel policy, re-exported)
from ric.registry import registrar

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
    unchecked: tuple = ()  # exact scheme: serving stacks the verifier could not run (library not installed)


class Scheme:
    """Base class. Subclasses set ``name`` (by ``@register_scheme``) and implement the two methods."""

    name = "base"

    def encrypt(self, images: list[np.ndarray], key, progress=None) -> list[EncryptResult]:
        raise NotImplementedError

    def decrypt(self, cts: list, key, verify: bool = True) -> list[np.ndarray]:
        """Ciphertexts back to their uint8 H×W×C plaintexts (``verify``: check every tag first)."""
        raise NotImplementedError

    def takes_file(self, h: int, w: int) -> bool:
        """True if an h×w image file is sealed as its file (the exact scheme's photos); False: as its pixels."""
        return False

    def _public(self) -> dict:
        return {k: v for k, v in vars(self).items() if not k.startswith("_") and k not in ("classifier", "device")}

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self._public().items())
        return f"{type(self).__name__}({inner})"


def retry_loop(items: list[int], attempt: Callable[[list[int]], list[int]], max_retries: int
               ) -> tuple[dict[int, int], list[int]]:
    """The one retry loop of every scheme: ``attempt(pending)`` tries the pending items (each scheme draws a fresh
    nonce for a retried item) and returns those whose ciphertext the classifier still mislabels; it runs at most
    ``1 + max_retries`` times. Returns the attempts per item and the items that failed every time."""
    attempts = dict.fromkeys(items, 0)
    pending = list(items)
    for _ in range(1 + max_retries):
        if not pending:
            break
        for i in pending:
            attempts[i] += 1
        pending = attempt(pending)
    return attempts, pending
