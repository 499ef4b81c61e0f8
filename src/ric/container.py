"""The ciphertext file: an ordinary 8-bit PNG with RIC metadata in tEXt chunks.

Chunks: ``ric:format`` (``RIC-1``), ``ric:model`` (model id), ``ric:classifier`` (``name@fingerprint`` of
the classifier whose NAE is inside), ``ric:nonce`` (32 hex digits),
``ric:target`` (NAE target label), ``ric:key-id`` (public key fingerprint), ``ric:model-fp`` (fingerprint of
everything decryption regenerates from: codec weights, α, NAE attack settings, scrambling; files written
before this field existed lack it and are still read) and ``ric:tag``: HMAC-SHA256, keyed by the key's MAC
sub-key, over the format, every other metadata field, the image shape and the raw pixels. Any classifier
reads the file as a normal image.
"""

from __future__ import annotations

import hmac as _hmac
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as chmac

from .errors import AuthenticationError, CiphertextError, InputError
from .imageio import open_image, png_bytes, write_png
from .keys import NONCE_BYTES, SecretKey

FORMAT = "RIC-1"
FIELDS = ("model", "classifier", "nonce", "target", "key-id")


@dataclass
class Ciphertext:
    pixels: np.ndarray  # uint8 H×W×C
    model: str
    nonce: bytes
    target: int
    key_id: str
    tag: bytes = b""
    classifier: str = ""
    model_fp: str = ""  # RIC.fingerprint of the model that encrypted it ("" in files older than the field)

    def meta(self) -> dict[str, str]:
        m = {"model": self.model, "classifier": self.classifier, "nonce": self.nonce.hex(),
             "target": str(self.target), "key-id": self.key_id}
        if self.model_fp:  # authenticated when present: removing it breaks the tag
            m["model-fp"] = self.model_fp
        return m

    def message(self) -> bytes:
        head = json.dumps({"format": FORMAT, **self.meta(), "shape": list(self.pixels.shape)},
                          sort_keys=True, separators=(",", ":")).encode()
        return head + b"\x00" + np.ascontiguousarray(self.pixels, dtype=np.uint8).tobytes()

    def compute_tag(self, key: SecretKey) -> bytes:
        h = chmac.HMAC(key.mac_key, hashes.SHA256())
        h.update(self.message())
        return h.finalize()

    def sign(self, key: SecretKey) -> Ciphertext:
        self.key_id = key.key_id
        self.tag = self.compute_tag(key)
        return self

    def verify(self, key: SecretKey, source: str = "ciphertext") -> None:
        """Raise :class:`AuthenticationError` unless the tag verifies under ``key``."""
        if not _hmac.compare_digest(self.compute_tag(key), self.tag):
            if self.key_id != key.key_id:
                raise AuthenticationError(f"{source}: wrong key (file was encrypted under key id {self.key_id}, "
                                          f"this key is {key.key_id})")
            raise AuthenticationError(f"{source}: authentication failed: pixels or metadata were modified")

    def text_chunks(self) -> dict[str, str]:
        return {"ric:format": FORMAT, **{f"ric:{k}": v for k, v in self.meta().items()}, "ric:tag": self.tag.hex()}

    def to_png(self) -> bytes:
        return png_bytes(self.pixels, self.text_chunks())

    def save(self, path: str | Path) -> Path:
        return write_png(path, self.pixels, self.text_chunks())


def read_ciphertext(path: str | Path) -> Ciphertext:
    """Parse a ciphertext PNG; raise :class:`CiphertextError` for anything malformed."""
    try:
        img = open_image(path)
    except InputError as e:
        raise CiphertextError(str(e)) from None
    text = getattr(img, "text", None) or {}
    if img.format != "PNG" or text.get("ric:format") is None:
        raise CiphertextError(f"{path}: not a RIC ciphertext (no RIC metadata in the PNG)")
    if text["ric:format"] != FORMAT:
        raise CiphertextError(f"{path}: unsupported ciphertext format {text['ric:format']!r} (this is {FORMAT})")
    missing = [k for k in (*FIELDS, "tag") if f"ric:{k}" not in text]
    if missing:
        raise CiphertextError(f"{path}: ciphertext metadata is missing {', '.join(missing)}")
    try:
        nonce = bytes.fromhex(text["ric:nonce"])
        tag = bytes.fromhex(text["ric:tag"])
        target = int(text["ric:target"])
    except ValueError:
        raise CiphertextError(f"{path}: malformed ciphertext metadata") from None
    if len(nonce) != NONCE_BYTES or len(tag) != 32 or target < 0:
        raise CiphertextError(f"{path}: malformed ciphertext metadata (nonce, tag or target)")
    if img.mode not in ("L", "RGB"):
        raise CiphertextError(f"{path}: ciphertext must be 8-bit grey or RGB, got mode {img.mode}")
    a = np.array(img, dtype=np.uint8)
    a = a[:, :, None] if a.ndim == 2 else a
    return Ciphertext(pixels=a, model=text["ric:model"], nonce=nonce, target=target,
                      key_id=text["ric:key-id"], tag=tag, classifier=text["ric:classifier"],
                      model_fp=text.get("ric:model-fp", ""))
