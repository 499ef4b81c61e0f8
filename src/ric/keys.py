"""Secret keys, per-image nonces and the random noise image (RNI).

* A key is 256 random bits, stored as one line ``ric-key-v1:<64 hex digits>`` in a 0600 file.
* Sub-keys come from HKDF-SHA256 (``cryptography``) with distinct ``info`` labels: one for the
  authentication tag, one per (image nonce) for the RNI keystream, one for a public key id.
* The RNI for an image is ChaCha20 keystream under the sub-key ``HKDF(key, "ric/rni" ‖ nonce)``:
  consecutive little-endian 32-bit words, top 24 bits each, divided by 2**24. Every value is an
  exact float32 in [0, 1), identical on every platform and torch version. Values fill the C×H×W
  tensor in C-order.
"""

from __future__ import annotations

import os
import secrets
import stat
import warnings
from pathlib import Path

import numpy as np
import torch
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ric.errors import InputError, KeyFileError, KeyPermissionWarning
from ric.files import write_private

KEY_BYTES = 32
NONCE_BYTES = 16
_PREFIX = "ric-key-v1:"
_SALT = b"ric-v1"


class SecretKey:
    """A 256-bit secret key. ``repr`` never shows the key material."""

    __slots__ = ("_raw",)

    def __init__(self, raw: bytes):
        if not isinstance(raw, bytes | bytearray) or len(raw) != KEY_BYTES:
            raise KeyFileError(f"a RIC key is {KEY_BYTES} bytes, got {len(raw) if raw is not None else 0}")
        self._raw = bytes(raw)

    @classmethod
    def generate(cls) -> SecretKey:
        return cls(secrets.token_bytes(KEY_BYTES))

    @property
    def raw(self) -> bytes:
        return self._raw

    def subkey(self, label: bytes, length: int = 32) -> bytes:
        return HKDF(algorithm=hashes.SHA256(), length=length, salt=_SALT, info=label).derive(self._raw)

    @property
    def key_id(self) -> str:
        """Public 64-bit fingerprint (tells a wrong key from a tampered file; reveals nothing else)."""
        return self.subkey(b"ric/key-id", 8).hex()

    @property
    def mac_key(self) -> bytes:
        return self.subkey(b"ric/mac")

    def flip_bit(self, bit: int) -> SecretKey:
        """The key with one bit flipped (key-sensitivity studies)."""
        b = bytearray(self._raw)
        b[bit // 8] ^= 1 << (bit % 8)
        return SecretKey(bytes(b))

    def __eq__(self, other) -> bool:
        return isinstance(other, SecretKey) and secrets.compare_digest(self._raw, other._raw)

    def __hash__(self) -> int:
        return hash(self.key_id)

    def __repr__(self) -> str:
        return f"SecretKey(id={self.key_id})"

    def to_text(self) -> str:
        return _PREFIX + self._raw.hex() + "\n"

    def save(self, path: str | Path, force: bool = False) -> Path:
        """Write the key with file mode 0600; refuse to overwrite unless ``force`` (race-free:
        :func:`ric.files.write_private`)."""
        path = Path(path)
        try:
            write_private(path, self.to_text().encode(), force)
        except FileExistsError:
            raise InputError(f"{path} exists; refusing to overwrite a key (use --force)") from None
        except OSError as e:
            raise InputError(f"cannot write key file {path}: {e.strerror or e}") from None
        return path

    @classmethod
    def load(cls, path: str | Path) -> SecretKey:
        path = Path(path)
        if not path.is_file():
            raise KeyFileError(f"key file not found: {path}")
        try:
            text = path.read_text().strip()
        except (OSError, UnicodeDecodeError) as e:
            raise KeyFileError(f"cannot read key file {path}: {e}") from None
        if not text.startswith(_PREFIX):
            raise KeyFileError(f"{path} is not a RIC key file (expected a line 'ric-key-v1:<hex>')")
        try:
            raw = bytes.fromhex(text[len(_PREFIX):])
        except ValueError:
            raise KeyFileError(f"{path}: key is not valid hex") from None
        if len(raw) != KEY_BYTES:
            raise KeyFileError(f"{path}: key has {8 * len(raw)} bits, expected {8 * KEY_BYTES}")
        warn_if_exposed(path)
        return cls(raw)


def warn_if_exposed(path: str | Path) -> bool:
    """Warn (:class:`KeyPermissionWarning`) if group or others may read or write the key file (POSIX)."""
    if os.name != "posix":
        return False
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return False
    if mode & 0o077:
        warnings.warn(f"key file {path} is accessible to group or others (mode {mode:04o}); "
                      f"keep it private: chmod 600 {path}", KeyPermissionWarning, stacklevel=3)
        return True
    return False


def new_nonce() -> bytes:
    return secrets.token_bytes(NONCE_BYTES)


def keystream(key: SecretKey, nonce: bytes, nbytes: int, label: bytes = b"ric/rni") -> bytes:
    if len(nonce) != NONCE_BYTES:
        raise InputError(f"nonce must be {NONCE_BYTES} bytes, got {len(nonce)}")
    stream_key = key.subkey(label + nonce)
    enc = Cipher(algorithms.ChaCha20(stream_key, b"\x00" * 16), mode=None).encryptor()
    return enc.update(b"\x00" * nbytes)


def random_noise_image(key: SecretKey, nonce: bytes, shape: tuple[int, int, int]) -> torch.Tensor:
    """The RNI ``z0`` for one image: float32 C×H×W, uniform on the 2**24-point grid of [0, 1)."""
    n = int(np.prod(shape))
    words = np.frombuffer(keystream(key, nonce, 4 * n), dtype="<u4")
    vals = (words >> np.uint32(8)).astype(np.float32) / np.float32(1 << 24)
    return torch.from_numpy(vals.reshape(shape).copy())


def random_noise_images(key: SecretKey, nonces: list[bytes], shape: tuple[int, int, int]) -> torch.Tensor:
    return torch.stack([random_noise_image(key, n, shape) for n in nonces]) if nonces else torch.empty(0, *shape)


def scramble_permutation(key: SecretKey, nonce: bytes, numel: int) -> torch.Tensor:
    """A secret permutation of ``numel`` positions for one image: the stable arg-sort of 64-bit words of the
    ChaCha20 keystream under ``HKDF(key, "ric/perm" ‖ nonce)`` (independent of the RNI's stream)."""
    words = np.frombuffer(keystream(key, nonce, 8 * numel, b"ric/perm"), dtype="<u8")
    return torch.from_numpy(np.argsort(words, kind="stable").astype(np.int64))


def scramble_permutations(key: SecretKey, nonces: list[bytes], numel: int) -> torch.Tensor:
    return (torch.stack([scramble_permutation(key, n, numel) for n in nonces]) if nonces
            else torch.empty(0, numel, dtype=torch.long))
