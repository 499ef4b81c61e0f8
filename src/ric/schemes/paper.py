"""The paper's scheme behind the :class:`~ric.schemes.base.Scheme` interface.

The work is done by :class:`ric.pipeline.RIC` (noise-like adversarial example from the key, learned codec,
symmetric residual blend, 8-bit rounding; recovery regenerates the same noise and decodes). This adapter
takes and returns uint8 images, applies the grey policy (a grey plaintext of a grey model is replicated to RGB
inside and comes back grey), and with ``resize`` encrypts a copy resized to the classifier's input (recovery
then returns the resized image, not the original).
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import CiphertextError, InputError
from ..preprocess import Preprocess
from .base import EncryptResult, Scheme, channel_view, register_scheme  # noqa: F401 (EncryptResult: API)


@register_scheme("paper")
class PaperScheme(Scheme):
    """``model``: a RIC model bundle (name or folder); the other arguments go to :meth:`ric.pipeline.RIC.load`."""

    def __init__(self, ric, resize: bool = False):
        self.ric = ric
        self.model = ric.model_id
        self.resize = bool(resize)

    @classmethod
    def load(cls, model: str, resize: bool = False, **kw) -> PaperScheme:
        from ..pipeline import RIC

        return cls(RIC.load(model, **kw), resize=resize)

    @property
    def classifier(self):
        return self.ric.classifier

    @property
    def channels(self) -> int:
        return int(self.ric.plaintext_channels)

    def _public(self) -> dict:
        return {"model": self.model, "resize": self.resize, "fingerprint": self.ric.fingerprint}

    def check_shape(self, shape: tuple[int, int, int]) -> None:
        """``shape`` is (H, W, C) of a plaintext; the model takes only its classifier's input size unless
        ``resize``."""
        c, h, w = self.ric.input_shape
        if self.resize:
            Preprocess("resize", (h, w)).check(shape[0], shape[1])
        elif (h, w) != tuple(shape[:2]):
            raise InputError(f"model {self.model} takes {h}x{w} images, got {shape[0]}x{shape[1]}: the paper "
                             "scheme recovers only what it encrypts; pass --resize to encrypt a resized copy "
                             "(recovery then returns the resized image), or use --scheme exact (full size, "
                             "bit-exact)")

    def check_ciphertext(self, ct) -> None:
        if ct.scheme_name != "paper":
            raise CiphertextError(f"not a paper-scheme ciphertext (scheme {ct.scheme_name})")
        self.ric.check_ciphertext(ct)

    def _tensor(self, a: np.ndarray) -> torch.Tensor:
        c, h, w = self.ric.input_shape
        x = torch.from_numpy(channel_view(a, c).copy()).permute(2, 0, 1)[None].float() / 255
        if tuple(x.shape[-2:]) != (h, w):
            pre = getattr(self.ric.classifier, "preprocess", None) or Preprocess("resize", (h, w))
            x = torch.round(pre(x).clamp(0, 1) * 255) / 255  # the resized copy is an 8-bit image too
        return x

    def encrypt(self, images: list[np.ndarray], key, progress=None) -> list[EncryptResult]:
        for a in images:
            self.check_shape(a.shape)
        if not images:
            return []
        x = torch.cat([self._tensor(a) for a in images])
        return self.ric.encrypt(x, key, progress)

    def decrypt(self, cts: list, key, verify: bool = True) -> list[np.ndarray]:
        """Recover a list of ciphertexts of one shape (batched: the noise is regenerated in chunks)."""
        if not cts:
            return []
        xh = self.ric.decrypt(cts, key, verify=verify)
        if self.channels == 1 and xh.shape[1] == 3:
            xh = xh.mean(1, keepdim=True)
        return [a.permute(1, 2, 0).numpy() for a in torch.round(xh * 255).to(torch.uint8)]
