"""Encryption schemes behind one interface (:class:`ric.schemes.base.Scheme`).

* ``exact`` (default): bit-exact recovery; the ciphertext reveals the label and the size only.
* ``paper``: the paper's noise-like adversarial example + learned codec + symmetric residual blend.
"""

from ric.schemes import exact, paper  # noqa: F401  (registers both in ric.schemes.base.SCHEMES)
from ric.schemes.base import DEFAULT_SCHEME, SCHEMES, EncryptResult, Scheme

__all__ = ["DEFAULT_SCHEME", "SCHEMES", "EncryptResult", "Scheme"]
