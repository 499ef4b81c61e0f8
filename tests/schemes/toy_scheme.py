"""A tiny scheme, in one file, that proves the interface: adding a scheme is one module like this one.

``xor``: the ciphertext is the image XOR a ChaCha20 keystream under ``HKDF(key, "ric/xor" ‖ nonce)``, with the
container's tag over it. It is a test fixture, not a scheme to use: the cloud's label on an XOR ciphertext is not
the plaintext's (there is no adversarial digit), so the target it carries is the plaintext's label as computed by
the data owner. ``docs/layout.md`` walks through it."""

from __future__ import annotations

import numpy as np

from ric.classifiers import load_classifier
from ric.container import Ciphertext, SchemeFields
from ric.errors import CiphertextError, InputError
from ric.imageio import to_tensor
from ric.keys import keystream, new_nonce
from ric.schemes.base import EncryptResult, Scheme, SchemeOptions, channel_view
from ric.zoo.bundles import DEFAULT_CLASSIFIER


class XorScheme(Scheme):  # registered by the test's fixture: register_scheme("xor")(XorScheme)
    fields = SchemeFields(required=frozenset({"scheme", "classifier", "nonce", "target", "key-id", "tag"}),
                          optional=frozenset({"plain-mac", "name-id"}))
    declines = {"model": "the xor scheme takes -c/--classifier"}

    def __init__(self, classifier=None):
        self.classifier = classifier

    @classmethod
    def from_options(cls, opts: SchemeOptions) -> XorScheme:
        return cls(load_classifier(opts.classifier or DEFAULT_CLASSIFIER, opts.device, opts.classifier_config))

    @classmethod
    def for_decryption(cls, decrypter_key: str, opts: SchemeOptions) -> XorScheme:
        return cls()  # the key is all it needs

    @property
    def channels(self) -> int:
        return int(self.classifier.input_shape[0])

    def check_shape(self, shape) -> None:
        if self.classifier.preprocess is None and tuple(shape[:2]) != tuple(self.classifier.input_shape[1:]):
            raise InputError(f"the xor scheme takes {self.classifier.input_shape[1:]} images, got {shape[:2]}")

    def check_ciphertext(self, ct) -> None:
        if ct.scheme_name != self.name or ct.classifier != self.classifier.ident:
            raise CiphertextError(f"not an xor-scheme ciphertext for {self.classifier.ident}")

    @staticmethod
    def _mask(key, nonce: bytes, shape) -> np.ndarray:
        n = int(np.prod(shape))
        return np.frombuffer(keystream(key, nonce, n, b"ric/xor"), dtype=np.uint8).reshape(shape)

    def encrypt(self, images, key, progress=None) -> list[EncryptResult]:
        out = []
        for a in images:
            self.check_shape(a.shape)
            t = int(self.classifier.predict(to_tensor(channel_view(a, self.channels)[None]))[0])
            nonce = new_nonce()
            ct = Ciphertext(a ^ self._mask(key, nonce, a.shape), "", nonce, t, key.key_id,
                            classifier=self.classifier.ident, scheme=self.name)
            out.append(EncryptResult(ct.sign(key), t, 1))
        return out

    def decrypt(self, cts, key, verify: bool = True) -> list[np.ndarray]:
        out = []
        for ct in cts:
            if verify:
                ct.verify(key)
            out.append(ct.pixels ^ self._mask(key, ct.nonce, ct.pixels.shape))
        return out
