"""The ``exact`` scheme: bit-exact recovery, ciphertexts that reveal the label and the size only.

Every 8-bit sub-pixel of a ciphertext is split into two digits, ``c = 2^b·q + m``:

* ``m`` (the ``b`` low bits) carries the plaintext: compressed losslessly (:mod:`ric.schemes.lossless`),
  length-prefixed, padded to the full capacity and sealed with ChaCha20-Poly1305 under
  ``HKDF(key, "ric/exact/aead" ‖ nonce)``. The low digit of sub-pixel 0 holds ``b`` (3 bits); the next
  sub-pixels hold a public header (magic ``RX``, version, key id, nonce) followed by the sealed payload, whose
  associated data binds the header, ``b`` and the shape. So the pixels alone decrypt: stripping the PNG's text
  chunks or re-encoding the image losslessly (PNG optimisers, WebP lossless, TIFF) loses nothing.
* ``q`` (the ``8 − b`` high bits) is the noise-like adversarial example: keyed random digits moved by a
  targeted C&W margin attack (relaxed to reals, straight-through rounding) until the unmodified classifier
  labels the ciphertext ``t = C(x)`` with a margin of at least ``κ`` logits. On a carrier the classifier's
  declared preprocessing downsamples (a photo's), ``q`` is instead the rounding of a keyed random image at the
  network's grid, upsampled, and the attack moves that image (:meth:`ric.nae.DigitAttack.smooth`).

Decryption reads ``m = c mod 2^b``, opens the payload and decompresses it: no classifier, no noise to
regenerate, bit-exact. What a ciphertext reveals without the key: the label (by design), the image size,
``b``, the key id and that it is a RIC ciphertext. ``m`` is AEAD output and ``q`` depends on the plaintext only
through ``t`` and ``m``, so a ciphertext can be simulated from the label alone (``docs/security.md``).
"""

from __future__ import annotations

import math
import os
import struct
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from ric.container import Ciphertext, SchemeFields, register_bare_reader
from ric.errors import AuthenticationError, CapacityError, CiphertextError, InputError, RICError, quote
from ric.imageio import to_tensor
from ric.keys import NONCE_BYTES, SecretKey, keystream, new_nonce
from ric.nae import DigitAttack
from ric.schemes import carrier, filecodec, lossless
from ric.schemes.base import (
    EncryptResult,
    Scheme,
    SchemeOptions,
    SealedFile,
    channel_view,
    register_scheme,
    retry_loop,
)
from ric.stacks import DEFAULT_ROBUST_SET, check_robust_set, ensemble, smooth_grid, verify

MAGIC = b"RX"
VERSION = 1  # pixel payload: the plaintext's own grid carries it (dataset images, the API's arrays)
FILE_VERSION = 2  # file payload: a photo's own bytes in a compact carrier of a size class (schemes.carrier)
VERSIONS = (VERSION, FILE_VERSION)
BITS = (3, 4, 5, 6, 7)
DEFAULT_BITS = 6
HEADER = struct.Struct(">2sB8s16s")  # magic, version, key id, nonce
_PREFIX = struct.Struct(">BBIII")  # codec id, plaintext channels, height, width, compressed length
_FILE_PREFIX = struct.Struct(">BBHI")  # file codec id, flags, name length (UTF-8 bytes), payload length
_TAG = 16
OVERHEAD_BYTES = HEADER.size + _TAG + _PREFIX.size
FLAG_STRIPPED = 1  # file payload: metadata was stripped before encryption (ric encrypt --strip-metadata)
MAX_NAME_BYTES = 255
ATTACK_SUBPIXELS = 1 << 20  # photo carriers attacked together: at most this many sub-pixels (one if larger)
ROBUST_STEPS = 200  # attack steps with a robustness set (the median image stops far earlier: benchmarks/stacks.py)


# ---------------------------------------------------------------------------------------- digits
def _group(bits: int) -> tuple[int, int, type]:
    """(digits, bytes, word type) of the smallest run of whole digits that is whole bytes: lcm(bits, 8) bits, ≤ 56,
    held in one unsigned machine word."""
    span = bits * 8 // math.gcd(bits, 8)
    return span // bits, span // 8, (np.uint32 if span <= 32 else np.uint64)


def to_digits(data: bytes, bits: int, count: int) -> np.ndarray:
    """``count`` ``bits``-bit digits (MSB first) holding ``data``; the bits after it are random. Computed a group of
    whole bytes at a time in 64-bit words (:func:`_group`), not bit by bit."""
    if len(data) * 8 > count * bits:
        raise AssertionError("digit stream longer than its room")
    per, nbytes, u = _group(bits)
    groups = -(-count // per)
    room = groups * nbytes
    raw = np.frombuffer(data + np.random.default_rng().bytes(room - len(data)), dtype=np.uint8)
    span = 8 * nbytes
    word = np.zeros(groups, dtype=u)
    for j, col in enumerate(raw.reshape(groups, nbytes).T):
        word |= col.astype(u) << u(span - 8 * (j + 1))
    out = np.stack([((word >> u(span - bits * (i + 1))) & u((1 << bits) - 1)).astype(np.uint8) for i in range(per)],
                   1)
    return out.reshape(-1)[:count]


def from_digits(digits: np.ndarray, bits: int, piece: int = 1 << 20) -> bytes:
    """Inverse of :func:`to_digits`: the whole bytes the digits hold, a group of whole bytes at a time in 64-bit
    words, ``piece`` digits at a time (so the words never take more than ``piece`` bytes)."""
    per, nbytes, u = _group(bits)
    span = 8 * nbytes
    piece = max(per, piece - piece % per)  # whole groups per piece
    digits = np.asarray(digits, dtype=np.uint8).reshape(-1)
    out = []
    for s in range(0, len(digits), piece):
        part = digits[s:s + piece]
        full = len(part) // per * per
        d = (part[:full] & np.uint8((1 << bits) - 1)).reshape(-1, per).astype(u)
        word = np.zeros(len(d), dtype=u)
        for i in range(per):
            word |= d[:, i] << u(span - bits * (i + 1))
        out.append(np.stack([(word >> u(span - 8 * (j + 1))).astype(np.uint8) for j in range(nbytes)], 1).tobytes())
        if full < len(part):  # the last digits, fewer than a group: their whole bytes, bit by bit
            bitstream = ((part[full:, None] >> np.arange(bits - 1, -1, -1, dtype=np.uint8)) & 1).reshape(-1)
            out.append(np.packbits(bitstream[: len(bitstream) // 8 * 8]).tobytes())
    return b"".join(out)


def capacity_bytes(shape: tuple[int, int, int], bits: int) -> int:
    """Bytes the low digits of an H×W×C ciphertext hold after sub-pixel 0 (which holds ``bits``)."""
    h, w, c = shape
    return (h * w * c - 1) * bits // 8


def room_bytes(shape: tuple[int, int, int], bits: int) -> int:
    """Largest compressed plaintext that fits an H×W×C ciphertext with ``bits`` low bits."""
    return capacity_bytes(shape, bits) - OVERHEAD_BYTES


def capacity_error(shape: tuple[int, int, int], bits: int, nbytes: int) -> CapacityError:
    """The error for a compressed image of ``nbytes`` that does not fit: it names the bits needed and held."""
    need = 8 * (nbytes + OVERHEAD_BYTES) + bits
    have = (shape[0] * shape[1] * shape[2]) * bits
    return CapacityError(f"the image needs {need} bits compressed, a {shape[0]}x{shape[1]}x{shape[2]} "
                         f"ciphertext holds {have} at {bits} bits per sub-pixel (try --bits {min(bits + 1, 7)}"
                         f"{'' if bits < 7 else ', or a classifier with larger inputs'})")


def _aad(header: bytes, bits: int, shape: tuple[int, int, int]) -> bytes:
    return header + struct.pack(">BIIB", bits, *shape)


def _aead(key: SecretKey, nonce: bytes) -> ChaCha20Poly1305:
    # one sub-key per image nonce, so the fixed AEAD nonce is never reused under a key
    return ChaCha20Poly1305(key.subkey(b"ric/exact/aead" + nonce))


def _seal_stream(key: SecretKey, nonce: bytes, bits: int, shape: tuple[int, int, int], version: int,
                 body: bytes) -> np.ndarray:
    """Low digits (uint8 H×W×C) holding ``bits``, the public header and ``body`` (padded to the capacity with
    zeros) sealed with ChaCha20-Poly1305; the associated data binds the header, ``bits`` and the shape."""
    if bits not in BITS:
        raise InputError(f"bits must be one of {BITS}, got {bits}")
    header = HEADER.pack(MAGIC, version, bytes.fromhex(key.key_id), nonce)
    room = capacity_bytes(shape, bits) - HEADER.size - _TAG
    if len(body) > room:
        raise AssertionError("sealed body longer than its room")
    sealed = _aead(key, nonce).encrypt(b"\x00" * 12, body + bytes(room - len(body)), _aad(header, bits, shape))
    n = shape[0] * shape[1] * shape[2]
    digits = np.concatenate([[bits], to_digits(header + sealed, bits, n - 1)]).astype(np.uint8)
    return digits.reshape(shape)


def seal(key: SecretKey, nonce: bytes, bits: int, shape: tuple[int, int, int], plain: np.ndarray,
         packed: tuple[int, bytes] | None = None) -> np.ndarray:
    """Low digits (uint8 H×W×C, values < 2^bits) carrying ``plain`` (uint8 h×w×c, any size that fits), format
    version 1."""
    if bits not in BITS:
        raise InputError(f"bits must be one of {BITS}, got {bits}")
    codec_id, data = packed or lossless.compress(plain)
    if len(data) > room_bytes(shape, bits):
        raise capacity_error(shape, bits, len(data))
    body = _PREFIX.pack(codec_id, plain.shape[2], plain.shape[0], plain.shape[1], len(data)) + data
    return _seal_stream(key, nonce, bits, shape, VERSION, body)


def file_room(shape: tuple[int, int, int], bits: int) -> int:
    """Bytes of (file codec output + UTF-8 name) that a format-2 carrier of ``shape`` holds."""
    return capacity_bytes(shape, bits) - HEADER.size - _TAG - _FILE_PREFIX.size


def file_body(name: str, codec_id: int, data: bytes, flags: int = 0) -> bytes:
    """The plaintext of a format-2 payload: prefix, the file's name (UTF-8) and its (transcoded) bytes."""
    raw = name.encode("utf-8")
    if len(raw) > MAX_NAME_BYTES:
        raise InputError(f"file name {quote(name)} is longer than {MAX_NAME_BYTES} bytes")
    return _FILE_PREFIX.pack(codec_id, flags, len(raw), len(data)) + raw + data


def seal_file(key: SecretKey, nonce: bytes, bits: int, shape: tuple[int, int, int], body: bytes) -> np.ndarray:
    """Low digits of a format-2 carrier holding ``body`` (:func:`file_body`)."""
    return _seal_stream(key, nonce, bits, shape, FILE_VERSION, body)


def _open_file_body(body: bytes) -> SealedFile:
    codec_id, flags, n_name, length = _FILE_PREFIX.unpack_from(body)
    start = _FILE_PREFIX.size
    if start + n_name + length > len(body):
        raise CiphertextError("malformed payload")
    try:
        name = body[start:start + n_name].decode("utf-8")
    except UnicodeDecodeError:
        raise CiphertextError("malformed payload (file name is not UTF-8)") from None
    data = filecodec.unpack(codec_id, body[start + n_name:start + n_name + length])
    return SealedFile(name, data, bool(flags & FLAG_STRIPPED))


@dataclass(frozen=True)
class Header:
    """What the pixels say in the clear: digit width, key id and nonce."""

    bits: int
    key_id: str
    nonce: bytes
    version: int = VERSION


def read_header(pixels: np.ndarray) -> Header:
    """Parse the public header from a ciphertext's pixels (no key needed)."""
    flat = np.ascontiguousarray(pixels, dtype=np.uint8).reshape(-1)
    bits = int(flat[0] & 7)
    if bits not in BITS or len(flat) * bits < 8 * (OVERHEAD_BYTES + 8):
        raise CiphertextError("not an exact-scheme ciphertext (no RIC header in the pixels)")
    need = -(-8 * HEADER.size // bits)
    head = from_digits(flat[1:1 + need] & ((1 << bits) - 1), bits)[:HEADER.size]
    magic, version, key_id, nonce = HEADER.unpack(head)
    if magic != MAGIC:
        raise CiphertextError("not an exact-scheme ciphertext (no RIC header in the pixels)")
    if version not in VERSIONS:
        raise CiphertextError(f"unsupported exact-scheme version {version} (this version reads {VERSIONS})")
    return Header(bits, key_id.hex(), nonce, version)


def open_sealed(key: SecretKey, pixels: np.ndarray) -> np.ndarray | SealedFile:
    """Authenticate and decrypt the low digits of ``pixels`` (uint8 H×W×C): the plaintext, bit-exact (format 1),
    or the sealed photo file (format 2, a :class:`SealedFile`)."""
    pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
    shape = tuple(int(s) for s in pixels.shape)
    hd = read_header(pixels)
    if hd.version == FILE_VERSION and not carrier.is_size_class(shape):
        raise CiphertextError(f"a {shape[0]}x{shape[1]} carrier is not one of the exact scheme's size classes")
    if hd.key_id != key.key_id:  # the public key id says it all: refused before the payload is unpacked
        raise AuthenticationError(f"wrong key (the image was encrypted under key id {hd.key_id}, "
                                  f"this key is {key.key_id})")
    digits = pixels.reshape(-1)[1:] & ((1 << hd.bits) - 1)
    stream = from_digits(digits, hd.bits)[:capacity_bytes(shape, hd.bits)]
    header, sealed = stream[:HEADER.size], stream[HEADER.size:]
    try:
        body = _aead(key, hd.nonce).decrypt(b"\x00" * 12, sealed, _aad(header, hd.bits, shape))
    except InvalidTag:
        raise AuthenticationError("authentication failed: the pixels were modified") from None
    if hd.version == FILE_VERSION:
        return _open_file_body(body)
    codec_id, channels, h, w, length = _PREFIX.unpack_from(body)
    if channels not in (1, 3) or length > len(body) - _PREFIX.size:
        raise CiphertextError("malformed payload")
    return lossless.decompress(codec_id, body[_PREFIX.size:_PREFIX.size + length], (h, w, channels))


def keyed_digits(key: SecretKey, nonce: bytes, shape: tuple[int, int, int], bits: int) -> tuple[np.ndarray, np.ndarray]:
    """The attack's start for one image: random high digits and offsets in (−½, ½), from ChaCha20 under
    ``HKDF(key, "ric/exact/q" ‖ nonce)`` (independent of the payload's key)."""
    if len(nonce) != NONCE_BYTES:
        raise InputError(f"nonce must be {NONCE_BYTES} bytes")
    n = shape[0] * shape[1] * shape[2]
    raw = np.frombuffer(keystream(key, nonce, 2 * n, b"ric/exact/q"), dtype=np.uint8).reshape(2, n)
    q0 = (raw[0] >> bits).reshape(shape)
    offset = ((raw[1].astype(np.float32) + 0.5) / 256 - 0.5).reshape(shape)
    return q0, offset


def keyed_image(key: SecretKey, nonce: bytes, shape: tuple[int, int, int]) -> np.ndarray:
    """The start of the attack on a smooth carrier (:meth:`ric.nae.DigitAttack.smooth`): an h×w×c image of
    values in [¼, ¾] (float32), from the keystream of :func:`keyed_digits` (a carrier uses one start or the other).
    Like that start, it is never regenerated: decryption needs the low digits only."""
    if len(nonce) != NONCE_BYTES:
        raise InputError(f"nonce must be {NONCE_BYTES} bytes")
    raw = np.frombuffer(keystream(key, nonce, shape[0] * shape[1] * shape[2], b"ric/exact/q"), dtype=np.uint8)
    return (0.25 + (raw.astype(np.float32) + 0.5) / 512).reshape(shape)


# ---------------------------------------------------------------------------------------- scheme
@dataclass
class Photo:
    """A photo as the exact scheme seals it: its file ``name``, the file's bytes ``data`` as given (or with its
    metadata stripped), its ``format`` (:func:`ric.schemes.filecodec.sniff`) and its decoded uint8 pixels (for
    the label only)."""

    name: str
    data: bytes
    format: str
    pixels: np.ndarray
    stripped: bool = False


def default_bits(classifier) -> int:
    """The classifier's declared ``exact_bits`` (its bundle config or bring-your-own JSON), else
    :data:`DEFAULT_BITS`. Measured per set by ``benchmarks/exact.py --bits-sweep``."""
    return int(getattr(classifier, "exact_bits", 0) or DEFAULT_BITS)


@register_scheme("exact")
class ExactScheme(Scheme):
    """Bit-exact scheme for a frozen classifier (hazmat: the safe calls are ``ric.encrypt_files`` and
    ``ric encrypt``, which also write the authenticated container).

    ``bits``: low bits per sub-pixel that carry the sealed image (the rest is the adversarial digit);
    ``attack``: :class:`DigitAttack` settings; ``max_retries``: fresh-nonce retries for a missed label;
    ``transcode``: the byte-reversible file codecs (:mod:`ric.schemes.filecodec`) tried on photos.

    ``robust_set``: the robustness set (:data:`ric.stacks.ROBUST_SETS`, default
    :data:`ric.stacks.DEFAULT_ROBUST_SET`; ``None``: ric's own torch path only) whose members the attack holds its
    margin over; every ciphertext is then checked by :func:`ric.stacks.verify` on the real serving stacks that are
    installed, and one that does not hold on each of them is retried with a fresh nonce like a missed label. The
    stacks it could not check (OpenCV or ONNX Runtime not installed) are listed in the result's ``unchecked``."""

    fields = SchemeFields(required=frozenset({"scheme", "bits", "classifier", "nonce", "target", "key-id", "tag"}),
                          optional=frozenset({"plain-mac", "name-id", "robust-set"}))
    owns = {"bits": "--bits", "transcode": "--transcode", "robust_set": "--robust-set"}
    declines = {"model": "the exact scheme takes -c/--classifier",
                "resize": "the exact scheme encrypts images at their own size when the classifier declares its "
                          "preprocessing"}

    def __init__(self, classifier=None, bits: int | None = None, attack: dict | None = None, max_retries: int = 3,
                 batch_size: int = 64, device: str | torch.device = "cpu",
                 transcode: tuple[str, ...] = filecodec.DEFAULT_TRANSCODE,
                 robust_set: str | None = DEFAULT_ROBUST_SET):
        self.device = torch.device(device)
        self.classifier = None  # ExactScheme() decrypts: decryption needs the key only
        self.bits = 0
        self.robust_set = None if robust_set is None else check_robust_set(robust_set)
        settings = {k: v for k, v in (attack or {}).items() if k != "name"}
        if self.robust_set is not None:
            settings = {"steps": ROBUST_STEPS, **settings}
        self.attack = DigitAttack(**settings)
        if classifier is not None:
            bits = default_bits(classifier) if bits is None else bits
            if bits not in BITS:
                raise InputError(f"bits must be one of {BITS}, got {bits}")
            self.classifier = classifier.to(self.device).eval().requires_grad_(False)
            self.bits = int(bits)
            if self.robust_set is not None and self.attack.ensemble is None:
                self.attack.ensemble = ensemble(self.classifier, self.robust_set)  # made once: its merges are cached
        self.max_retries = int(max_retries)
        self.batch_size = int(batch_size)
        self.transcode = tuple(transcode)

    @classmethod
    def from_options(cls, opts: SchemeOptions) -> ExactScheme:
        from ric.classifiers import load_classifier
        from ric.zoo.bundles import DEFAULT_CLASSIFIER

        if opts.robust_set is not None:
            check_robust_set(opts.robust_set)  # an unknown name stops the job before the classifier is loaded
        clf = load_classifier(opts.classifier or DEFAULT_CLASSIFIER, opts.device, opts.classifier_config)
        transcode = filecodec.DEFAULT_TRANSCODE if opts.transcode is None else tuple(opts.transcode)
        return cls(clf, bits=opts.bits, max_retries=opts.max_retries, batch_size=opts.batch_size, device=opts.device,
                   transcode=transcode, robust_set=opts.robust_set)

    @classmethod
    def for_decryption(cls, decrypter_key: str, opts: SchemeOptions) -> ExactScheme:
        return cls()  # no classifier: the key is all an exact-scheme ciphertext needs

    @classmethod
    def authenticate(cls, ct, key: SecretKey, source: str = "ciphertext") -> None:
        """The container's tag, or for a file without metadata the sealed payload in its pixels."""
        if ct.tag:
            ct.verify(key, source=source)
            return
        try:
            open_sealed(key, ct.pixels)
        except RICError as e:
            raise type(e)(f"{source}: {e}") from None

    @classmethod
    def sealed_file(cls, ct, key: SecretKey) -> SealedFile | None:
        return sealed_file_of(ct, key)

    def demo_checks(self, cts: list, plain, wrong_key) -> dict:
        """The sealed payload refuses a wrong key: there is nothing to look at."""
        refused = []
        for ct in cts:
            try:
                open_sealed(wrong_key, ct.pixels)
                refused.append(False)
            except AuthenticationError:
                refused.append(True)
        return {"wrong_key_refused": float(np.mean(refused)) if refused else 0.0}

    @property
    def channels(self) -> int:
        return int(self.classifier.input_shape[0])

    def check_shape(self, shape: tuple[int, int, int]) -> None:
        """``shape`` is (H, W, C) of a plaintext; the classifier must accept it (in its own channels)."""
        self.classifier.check_input((self.channels, shape[0], shape[1]))

    def check_ciphertext(self, ct) -> None:
        """Raise :class:`CiphertextError` unless ``ct`` is an exact-scheme ciphertext of these settings."""
        if ct.scheme_name != self.name:
            raise CiphertextError(f"not an exact-scheme ciphertext (scheme {ct.scheme_name})")
        if ct.bits != self.bits or ct.classifier != self.classifier.ident:
            raise CiphertextError(f"ciphertext was made for classifier {quote(ct.classifier)} at {ct.bits} bits, "
                                  f"not {self.classifier.ident} at {self.bits}")
        if ct.robust_set != (self.robust_set or ""):
            raise CiphertextError(f"ciphertext was made with robustness set {quote(ct.robust_set or 'none')}, "
                                  f"not {self.robust_set or 'none'}")

    def _predict(self, c: np.ndarray) -> torch.Tensor:
        x = to_tensor(c).to(self.device)
        return self.classifier.predict(x).cpu()

    def encrypt(self, images: list[np.ndarray], key: SecretKey, progress=None) -> list[EncryptResult]:
        """Encrypt uint8 H×W×C plaintexts (C = 1 or 3; a grey plaintext for an RGB classifier is seen by it
        replicated, and comes back grey). One result per image, in order."""
        if self.classifier is None:
            raise InputError("this ExactScheme decrypts only: give it a classifier to encrypt")
        out: list[EncryptResult | None] = [None] * len(images)
        groups: dict[tuple, list[int]] = {}
        for i, a in enumerate(images):
            self.check_shape(a.shape)
            groups.setdefault(a.shape[:2], []).append(i)
        for idx in groups.values():
            for s in range(0, len(idx), self.batch_size):
                part = idx[s:s + self.batch_size]
                for i, r in zip(part, self._encrypt_batch([images[i] for i in part], key), strict=True):
                    out[i] = r
                if progress:
                    progress(len(part))
        return out  # type: ignore[return-value]

    def _encrypt_batch(self, plains: list[np.ndarray], key: SecretKey) -> list[EncryptResult]:
        views = np.stack([channel_view(a, self.channels) for a in plains])
        shape = views.shape[1:]
        t = self._predict(views)
        res = [EncryptResult(None, int(t[i]), 0) for i in range(len(plains))]
        packed: dict[int, tuple[int, bytes]] = {}
        room = room_bytes(shape, self.bits)
        for i, a in enumerate(plains):
            packed[i] = lossless.compress(a, room=room)
            if len(packed[i][1]) > room:
                res[i].error = str(capacity_error(shape, self.bits, len(packed[i][1])))
        makers = {i: (lambda nonce, i=i: seal(key, nonce, self.bits, shape, plains[i], packed[i])) for i in packed}
        self._run_attempts([i for i in range(len(plains)) if not res[i].error], makers, t, shape, key, res)
        return res

    def _run_attempts(self, items, makers, t, shape, key, res) -> None:
        """The retry loop over ``items`` (all of one carrier ``shape``); ``makers[i](nonce)`` seals item i's low
        digits under a fresh nonce. Fills ``res`` (ciphertext, attempts, steps, or the error of a miss)."""
        missed: dict[int, list[str]] = {}  # item -> the stacks its last attempt did not hold on
        attempts, failed = retry_loop(items, lambda pending: self._attempt(pending, makers, t, shape, key, res,
                                                                           missed), self.max_retries)
        for i, n in attempts.items():
            res[i].attempts = n
        for i in failed:
            where = f" on serving stack(s) {', '.join(missed[i])}" if missed.get(i) else ""
            res[i].error = (f"classifier does not label the ciphertext as {res[i].target}{where} after "
                            f"{res[i].attempts} attempts")

    def _attempt(self, pending, makers, t, shape, key, res, missed) -> list[int]:
        nonces = [new_nonce() for _ in pending]
        m = np.stack([makers[i](n) for n, i in zip(nonces, pending, strict=True)])
        q, steps = self.adversarial_digits(m, nonces, t[pending].to(self.device), shape, key)
        c = ((q.cpu().permute(0, 2, 3, 1).numpy().astype(np.uint8) << self.bits) | m).astype(np.uint8)
        # ric's own label; with a robustness set, the verifier's first stack (torch) is that check
        lab = self._predict(c) if self.robust_set is None else t[pending]
        hits = [j for j, i in enumerate(pending) if int(lab[j]) == res[i].target and int(steps[j]) >= 0]
        missed.update({i: [] for i in pending})  # a miss of ric's own label names no stack
        held, unchecked = self._verified(c, hits, [res[pending[j]].target for j in hits], pending, missed)
        still = []
        for j, i in enumerate(pending):
            if j in held:
                res[i].ciphertext = Ciphertext(c[j], "", nonces[j], res[i].target, key.key_id,
                                               classifier=self.classifier.ident, scheme=self.name,
                                               bits=self.bits, robust_set=self.robust_set or "").sign(key)
                res[i].steps, res[i].unchecked = int(steps[j]), unchecked
            else:
                still.append(i)
        return still

    def adversarial_digits(self, m: np.ndarray, nonces: list[bytes], target: torch.Tensor, shape, key: SecretKey):
        """The attack's high digits (N×c×h×w) and steps for low digits ``m`` (uint8 N×h×w×c) of carriers of
        ``shape``, started from ``key`` and each nonce: on a smooth image at the network's grid for a carrier the
        declared preprocessing downsamples (:func:`ric.stacks.smooth_grid`), else on each sub-pixel from keyed
        random digits."""
        to = lambda a: torch.from_numpy(np.stack(a)).permute(0, 3, 1, 2).to(self.device)  # noqa: E731
        low = torch.from_numpy(m).permute(0, 3, 1, 2).to(self.device)
        grid = smooth_grid(self.classifier, shape[0], shape[1])
        if grid is not None:
            v0 = [keyed_image(key, n, (*grid, shape[2])) for n in nonces]
            return self.attack.smooth(self.classifier, low, to(v0), target, self.bits)
        starts = [keyed_digits(key, n, shape, self.bits) for n in nonces]
        return self.attack(self.classifier, low, to([s[0] for s in starts]), to([s[1] for s in starts]), target,
                           self.bits)

    def holds(self, c: np.ndarray, target: torch.Tensor, steps: torch.Tensor) -> np.ndarray:
        """Whether each carrier ``c`` (uint8 N×h×w×c) passes this scheme's checks for ``target``: the attack reached
        its margin (``steps`` ≥ 0) and ric's own label is the target, or with a robustness set every installed
        serving stack keeps it (what encryption asks before it writes a ciphertext)."""
        if self.robust_set is None:
            ok = self._predict(c) == target.cpu()
        else:
            ok = verify(self.classifier, to_tensor(c).to(self.device), target.cpu(), pixels=c).ok
        return (ok & (steps.cpu() >= 0)).numpy()

    def _verified(self, c: np.ndarray, hits: list[int], targets: list[int], pending, missed
                  ) -> tuple[set[int], tuple[str, ...]]:
        """The ciphertexts among ``hits`` (indices into ``c``) that hold on every installed serving stack
        (:func:`ric.stacks.verify`; all of them without a robustness set), and the stacks it could not run.
        A rejected one's failing stacks go to ``missed``."""
        if self.robust_set is None or not hits:
            return set(hits), ()
        c = c[hits]
        v = verify(self.classifier, to_tensor(c).to(self.device), torch.tensor(targets), pixels=c)
        for k, j in enumerate(hits):
            missed[pending[j]] = v.failing(k)
        return {j for k, j in enumerate(hits) if bool(v.ok[k])}, tuple(v.skipped)

    # ------------------------------------------------------------------------------------ photos
    def takes_file(self, h: int, w: int) -> bool:
        """True if an h×w image file is sealed as its file in a compact carrier (format 2): the classifier declares
        its preprocessing and the image is not at the network's input size (which keeps its own grid)."""
        return self.classifier.preprocess is not None and (h, w) != tuple(self.classifier.input_shape[1:])

    def carrier_shape(self, h: int, w: int, nbytes: int) -> tuple[int, int, int]:
        """The size class of an h×w photo whose payload (transcoded file + name) has ``nbytes``."""
        try:
            return carrier.smallest_class(h, w, self.channels, lambda s: file_room(s, self.bits) >= nbytes)
        except ValueError:
            raise CapacityError(f"a {nbytes}-byte photo is larger than the largest carrier") from None

    def encrypt_photos(self, photos: list[Photo], key: SecretKey) -> list[EncryptResult]:
        """Encrypt photos: each file (transcoded when that is smaller and byte-reversible) and name sealed in the low
        digits of the smallest carrier of its size class, labelled ``C(photo)`` through the classifier's declared
        preprocessing. The decoded pixels are used for the label only. Photos are labelled in one pass per pixel
        shape while the transcoder (libjxl, no GIL) runs in threads beside it, and the photos that share a carrier
        size class share their attack's forward passes. One result per photo, in order; a photo too large for the
        largest carrier fails alone."""
        if self.classifier is None:
            raise InputError("this ExactScheme decrypts only: give it a classifier to encrypt")
        with ThreadPoolExecutor(max(1, min(len(photos), os.cpu_count() or 1))) as pool:
            packing = [pool.submit(filecodec.pack, p.data, p.format, self.transcode) for p in photos]
            t = self._labels([p.pixels for p in photos])
            packed = [f.result() for f in packing]
        res = [EncryptResult(None, int(t[i]), 0) for i in range(len(photos))]
        groups: dict[tuple, list[int]] = {}
        makers = {}
        for i, (photo, (codec_id, data)) in enumerate(zip(photos, packed, strict=True)):
            body = file_body(photo.name, codec_id, data, FLAG_STRIPPED if photo.stripped else 0)
            try:
                shape = self.carrier_shape(*photo.pixels.shape[:2], len(body) - _FILE_PREFIX.size)
                self.classifier.check_input((self.channels, shape[0], shape[1]))
            except RICError as e:
                res[i].error, res[i].code = str(e), e.exit_code
                continue
            groups.setdefault(shape, []).append(i)
            makers[i] = lambda nonce, shape=shape, body=body: seal_file(key, nonce, self.bits, shape, body)
        for shape, idx in groups.items():  # the attack's memory grows with carriers x members: bounded per batch
            step = max(1, min(self.batch_size, ATTACK_SUBPIXELS // (shape[0] * shape[1] * shape[2])))
            for s in range(0, len(idx), step):
                self._run_attempts(idx[s:s + step], makers, t, shape, key, res)
        return res

    def _labels(self, images: list[np.ndarray]) -> torch.Tensor:
        """``C(x)`` of images of any sizes: one batched pass per shape."""
        t = torch.zeros(len(images), dtype=torch.long)
        groups: dict[tuple, list[int]] = {}
        for i, a in enumerate(images):
            groups.setdefault(a.shape, []).append(i)
        for idx in groups.values():
            for s in range(0, len(idx), self.batch_size):
                part = idx[s:s + self.batch_size]
                t[part] = self._predict(np.stack([channel_view(images[i], self.channels) for i in part]))
        return t

    def decrypt(self, cts: list, key: SecretKey, verify: bool = True) -> list[np.ndarray]:
        """The plaintexts of ``cts`` (:class:`~ric.container.Ciphertext` objects or bare uint8 pixels),
        bit-exact. The payload's own tag is always checked; with ``verify`` the container's tag (over metadata
        and every pixel, when the file still has it) is checked too. Needs no classifier."""
        return [decrypt_one(ct, key, verify) for ct in cts]


def decrypt_one(ct, key: SecretKey, verify: bool = True) -> np.ndarray | SealedFile:
    """One exact-scheme ciphertext (or its bare pixels) back to its plaintext; see :meth:`ExactScheme.decrypt`."""
    if isinstance(ct, np.ndarray):
        return open_sealed(key, ct)
    if ct.tag:  # the file still has its metadata: it must agree with the header in the pixels
        if verify:
            ct.verify(key)
        hd = read_header(ct.pixels)
        if (hd.bits, hd.key_id, hd.nonce) != (ct.bits, ct.key_id, ct.nonce):
            raise CiphertextError("the ciphertext's metadata and the header in its pixels disagree")
    return open_sealed(key, ct.pixels)


def sealed_file_of(ct, key: SecretKey) -> SealedFile | None:
    """The sealed photo of an (already authenticated) exact-scheme ciphertext of format 2, else ``None``."""
    if getattr(ct, "scheme_name", "") != ExactScheme.name or read_header(ct.pixels).version != FILE_VERSION:
        return None
    return decrypt_one(ct, key, verify=False)


def read_bare(path, pixels: np.ndarray) -> Ciphertext | None:
    """The exact-scheme ciphertext that a file without RIC metadata holds in its pixels (its text chunks were
    stripped, or it was re-encoded losslessly), or None. The public header gives ``bits``, the key id and the nonce;
    there is no container tag (``tag`` is empty, ``target`` is -1): the sealed payload's own tag authenticates what
    decryption returns. A grey ciphertext saved as RGB is read as grey."""
    a = pixels
    views = [a] + ([a[:, :, :1]] if a.shape[2] == 3 and (a == a[:, :, :1]).all() else [])
    for v in views:
        try:
            hd = read_header(v)
        except CiphertextError:
            continue
        return Ciphertext(pixels=np.ascontiguousarray(v), model="", nonce=hd.nonce, target=-1, key_id=hd.key_id,
                          scheme=ExactScheme.name, bits=hd.bits)
    return None


register_bare_reader(read_bare)
