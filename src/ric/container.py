"""The ciphertext file: an ordinary 8-bit PNG with RIC metadata in tEXt chunks.

Chunks: ``ric:format`` (``RIC-1``), ``ric:model`` (model id), ``ric:classifier`` (``name@fingerprint`` of
the classifier whose NAE is inside), ``ric:nonce`` (32 hex digits),
``ric:target`` (NAE target label), ``ric:key-id`` (public key fingerprint), ``ric:model-fp`` (fingerprint of
everything decryption regenerates from: codec weights, α, NAE attack settings, scrambling; files written
before this field existed lack it and are still read), ``ric:plain-mac`` (optional: a keyed hash of the
plaintext, see :func:`plain_mac`; lets an interrupted ``encrypt`` skip only outputs made from the same input),
``ric:name-id`` (optional: :func:`keyed_name_id` of the file name the ciphertext was written under, so that a
server that swaps two files' names is caught at decryption without learning the names),
``ric:scheme`` (optional, ``paper`` when absent), ``ric:robust-set`` (exact scheme, optional: the name of the
robustness set the attack held its margin over, :data:`ric.stacks.ROBUST_SETS`; absent when none; informational:
it never selects code) and ``ric:tag``: HMAC-SHA256, keyed by the key's MAC sub-key,
over the format, every other metadata field, the image shape and the raw pixels. Any classifier reads the file
as a normal image.

Reading is strict (:func:`read_ciphertext`): the PNG's chunks are walked and checked (CRCs, chunk order, one
zlib stream of exactly the image's size, nothing after ``IEND``), 8-bit grey or RGB, not interlaced; every
``ric:*`` field appears once, in a tEXt chunk, is known to the file's scheme and equals its canonical text
(:data:`FIELDS`). The tag is checked by the caller (:meth:`Ciphertext.verify`) before any semantic check (model,
classifier, target range).

The container knows no scheme: each scheme declares the fields its ciphertexts carry (a :class:`SchemeFields`)
and registers them with :func:`register_fields` (``ric.schemes.base.register_scheme`` does it), and a scheme whose
ciphertexts can be read from their pixels alone registers that reader with :func:`register_bare_reader`. Adding a
field is one entry in :data:`FIELDS` (text check, parse, format, attribute, default) plus its name in the
``required``/``optional`` set of each scheme that allows it.
"""

from __future__ import annotations

import hashlib
import hmac as _hmac
import io
import json
import re
import struct
import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as chmac

from ric import imageio
from ric.errors import AuthenticationError, CiphertextError, InputError, NotACiphertextError, quote
from ric.files import atomic_write_bytes
from ric.imageio import PNG_SIGNATURE, unfiltered_png
from ric.keys import NONCE_BYTES, SecretKey

FORMAT = "RIC-1"
# zlib settings of ciphertext PNGs (ric.imageio.unfiltered_png: no row filters). The low digits are noise, which
# nothing compresses, but a photo's carrier has smooth high digits (ric.nae.DigitAttack.smooth): Huffman coding
# alone (zlib strategy Z_HUFFMAN_ONLY, no string matching) takes their share off in a fraction of the time LZ77
# levels spend without doing better (benchmarks/photos.py measures the writers on a real carrier)
ZLIB_LEVEL = 1
ZLIB_STRATEGY = 2  # Z_HUFFMAN_ONLY
MAX_FILE_BYTES = 1 << 28  # a ciphertext PNG larger than this is refused before it is read
# The fewest incompressible bits a ciphertext carries per sub-pixel: the exact scheme's low digits are AEAD output
# (b >= 3 bits), the paper scheme's sub-pixels are ~8 bits of noise. So no lossless file of n bytes holds a
# ciphertext of more than 8n / MIN_SEALED_BITS sub-pixels; a header that declares more is refused before decoding.
MIN_SEALED_BITS = 3


def max_subpixels(nbytes: int, min_bits: float = MIN_SEALED_BITS) -> int:
    """The most sub-pixels a ciphertext file of ``nbytes`` can hold (see :data:`MIN_SEALED_BITS`)."""
    return int(8 * nbytes / min_bits) if min_bits > 0 else 1 << 62


# ------------------------------------------------------------------------------------------ field table
def _regex(pattern: str) -> Callable[[str], bool]:
    rx = re.compile(pattern, re.ASCII)
    return lambda s: rx.fullmatch(s) is not None


def _hex(n: int) -> Callable[[str], bool]:
    """Exactly ``n`` lowercase hex digits."""
    return _regex(f"[0-9a-f]{{{n}}}")


@dataclass(frozen=True)
class Field:
    """One ``ric:<name>`` field: ``attr`` of :class:`Ciphertext`, ``check`` (is the text canonical?),
    ``parse`` (text → value), ``text`` (value → text, the inverse) and ``default`` (value when absent)."""

    attr: str
    check: Callable[[str], bool]
    parse: Callable[[str], Any] = str
    text: Callable[[Any], str] = str
    default: Any = ""


@dataclass(frozen=True)
class SchemeFields:
    """Which fields a scheme's ciphertexts must carry (``required``) and may carry (``optional``);
    ``format`` is implicit and required for every scheme."""

    required: frozenset
    optional: frozenset


# Model ids are bundle names; classifier ids ``name@fingerprint`` (name: printable ASCII, which covers paths and
# ``module:factory`` specs of the operator's own classifiers; fingerprint: 16 lowercase hex digits).
MODEL_NAME = r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}"
CLASSIFIER_IDENT = r"[!-~](?:[ -~]{0,198}[!-~])?@[0-9a-f]{16}"
ROBUST_SET_NAME = r"[a-z0-9][a-z0-9.-]{0,63}"  # a robustness set's name (only ever shown, never looked up as code)
TARGET = r"0|[1-9][0-9]{0,8}"  # canonical non-negative decimal: no sign, leading zero, space or underscore

FIELD_SETS: dict[str, SchemeFields] = {}  # scheme name -> its fields (register_fields)
_IMPLICIT: list[str] = []  # the scheme of files without ric:scheme (written before the field existed)


def register_fields(name: str, fields: SchemeFields, implicit: bool = False) -> None:
    """Declare the fields of scheme ``name``'s ciphertexts (its allowed value of ``ric:scheme`` is ``name``);
    ``implicit``: files without ``ric:scheme`` are this scheme's (at most one scheme says so)."""
    if name in FIELD_SETS:
        raise ValueError(f"ciphertext fields of scheme {name!r} are already registered")
    if implicit and _IMPLICIT:
        raise ValueError(f"scheme {_IMPLICIT[0]!r} already owns ciphertexts without ric:scheme")
    FIELD_SETS[name] = fields
    if implicit:
        _IMPLICIT.append(name)


def implicit_scheme() -> str:
    """The scheme of a ciphertext without ``ric:scheme`` ("" when no registered scheme claims them)."""
    return _IMPLICIT[0] if _IMPLICIT else ""


def _field_set(name: str, source: str) -> SchemeFields:
    if name not in FIELD_SETS:
        known = ", ".join(sorted(FIELD_SETS)) or "none registered: import ric.schemes"
        raise CiphertextError(f"{source}: unknown ciphertext scheme {quote(name)} (known: {known})")
    return FIELD_SETS[name]


FIELDS: dict[str, Field] = {
    "scheme": Field("scheme", lambda s: s in FIELD_SETS),
    "bits": Field("bits", _regex("[3-7]"), int, str, 0),
    "model": Field("model", _regex(MODEL_NAME)),
    "classifier": Field("classifier", _regex(CLASSIFIER_IDENT)),
    "nonce": Field("nonce", _hex(2 * NONCE_BYTES), bytes.fromhex, bytes.hex, b""),
    "target": Field("target", _regex(TARGET), int, str, 0),
    "key-id": Field("key_id", _hex(16)),
    "model-fp": Field("model_fp", _hex(16)),
    "plain-mac": Field("plain_mac", _hex(64)),
    "name-id": Field("name_id", _hex(32)),
    "robust-set": Field("robust_set", _regex(ROBUST_SET_NAME)),
    "tag": Field("tag", _hex(64), bytes.fromhex, bytes.hex, b""),
}


def check_field(name: str, value: Any, error: type = CiphertextError) -> str:
    """The canonical text of field ``name`` for ``value``; raise ``error`` if it is not one (used before
    writing, so no file is written that could not be read back)."""
    f = FIELDS[name]
    text = f.text(value) if not isinstance(value, str) else value
    if not f.check(text):
        raise error(f"ciphertext field ric:{name} cannot hold {quote(text)}")
    return text


def _absent(v: Any, f: Field) -> bool:
    return v is None or (type(v) is type(f.default) and v == f.default)


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
    plain_mac: str = ""  # plain_mac(key, nonce, plaintext) ("" in files older than the field)
    name_id: str = ""  # keyed_name_id(key, the file name it was written under) ("" in older files)
    scheme: str = ""  # "" = absent: the implicit scheme (:func:`implicit_scheme`)
    bits: int = 0  # exact scheme: low bits per sub-pixel that carry the sealed image
    robust_set: str = ""  # exact scheme: the robustness set the attack held its margin over ("" = none / older)

    @property
    def scheme_name(self) -> str:
        return self.scheme or implicit_scheme()

    def meta(self) -> dict[str, str]:
        """The authenticated fields (all but format and tag) as text: required ones always, optional ones when
        set."""
        spec = _field_set(self.scheme_name, "ciphertext")
        m = {}
        for name, f in FIELDS.items():
            if name == "tag":
                continue
            v = getattr(self, f.attr)
            if name in spec.required or (name in spec.optional and not _absent(v, f)):
                m[name] = f.text(v)
            elif not _absent(v, f):
                raise CiphertextError(f"field ric:{name} is not part of a {self.scheme_name}-scheme ciphertext")
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
                raise AuthenticationError(f"{source}: wrong key (file was encrypted under key id "
                                          f"{quote(self.key_id)}, this key is {key.key_id})")
            raise AuthenticationError(f"{source}: authentication failed: pixels or metadata were modified")

    def text_chunks(self) -> dict[str, str]:
        chunks = {"ric:format": FORMAT, **{f"ric:{k}": v for k, v in self.meta().items()}, "ric:tag": self.tag.hex()}
        for k, v in chunks.items():
            if k != "ric:format":
                check_field(k[4:], v)
        return chunks

    def to_png(self) -> bytes:
        return unfiltered_png(self.pixels, self.text_chunks(), ZLIB_LEVEL, ZLIB_STRATEGY)

    def save(self, path: str | Path) -> Path:
        atomic_write_bytes(path, self.to_png())
        return Path(path)


# ------------------------------------------------------------------------------------------ keyed hashes
def _mac(key: SecretKey, label: bytes, *parts: bytes) -> str:
    h = _hmac.new(key.subkey(label), digestmod=hashlib.sha256)
    for p in parts:
        h.update(p)
    return h.hexdigest()


def _shape_bytes(pixels: np.ndarray) -> bytes:
    a = pixels if pixels.ndim == 3 else pixels[:, :, None]
    return struct.pack(">III", *a.shape)


def plain_mac(key: SecretKey, nonce: bytes, pixels: np.ndarray) -> str:
    """HMAC-SHA256 under the sub-key ``ric/plain-mac`` over nonce ‖ shape (3 × uint32 BE) ‖ the plaintext's
    uint8 pixels (as encrypted, after the channel policy). Stored in the ciphertext (authenticated), so a rerun
    of ``encrypt`` skips an output only if it was made from the same image; binding the nonce keeps two
    ciphertexts of one image unlinkable."""
    if len(nonce) != NONCE_BYTES:
        raise InputError(f"nonce must be {NONCE_BYTES} bytes")
    a = np.ascontiguousarray(pixels, dtype=np.uint8)
    return _mac(key, b"ric/plain-mac", nonce, _shape_bytes(a), a.tobytes())


def file_mac(key: SecretKey, nonce: bytes, data: bytes) -> str:
    """HMAC-SHA256 under the sub-key ``ric/file-mac`` over nonce ‖ the photo file's bytes as sealed: the
    ``ric:plain-mac`` of a file-payload (format 2) ciphertext, so that a rerun skips an output only if it was made
    from the same file."""
    if len(nonce) != NONCE_BYTES:
        raise InputError(f"nonce must be {NONCE_BYTES} bytes")
    return _mac(key, b"ric/file-mac", nonce, data)


def keyed_name_id(key: SecretKey, name: str) -> str:
    """The opaque name of a photo's ciphertext (and, for every ciphertext, ``ric:name-id`` of its own file name):
    32 hex digits of HMAC-SHA256 under the sub-key ``ric/name-id`` over
    the photo's file name (UTF-8). The same name under the same key gives the same id (a rerun finds its outputs);
    the id reveals only that two ciphertexts came from files of one name."""
    return _mac(key, b"ric/name-id", name.encode("utf-8", "surrogatepass"))[:32]


RECOVERED_MAC_FIELD = "ric:recovered-mac"
RECOVERED_FROM_FIELD = "ric:recovered-from"  # hex SHA-256 of the ciphertext message that the MAC is bound to


def recovered_mac(key: SecretKey, ct_digest: bytes, pixels: np.ndarray) -> str:
    """HMAC-SHA256 under the sub-key ``ric/recovered-mac`` over SHA-256(ciphertext message) ‖ shape ‖ the
    recovered pixels. ``decrypt`` stores it in each recovered PNG (tEXt ``ric:recovered-mac``); a rerun skips
    an existing output only if it verifies for the same ciphertext and key (one HMAC instead of a decryption)."""
    a = np.ascontiguousarray(pixels, dtype=np.uint8)
    return _mac(key, b"ric/recovered-mac", ct_digest, _shape_bytes(a), a.tobytes())


def message_digest(ct: Ciphertext) -> bytes:
    return hashlib.sha256(ct.message()).digest()


# ------------------------------------------------------------------------------------------ strict reader
_TEXT_CHUNKS = (b"tEXt", b"zTXt", b"iTXt")
_CRITICAL_OK = (b"IHDR", b"IDAT", b"IEND")
_ANIMATION = (b"acTL", b"fcTL", b"fdAT")  # APNG: frames ric would not read, which a viewer might show


@dataclass
class PngLayout:
    width: int
    height: int
    channels: int
    texts: list  # (keyword, value or None, chunk type)
    pixels: np.ndarray | None = None  # with keep=True and every row unfiltered (ric's writer): the image itself


def parse_png(data: bytes, name: str, max_pixels: int | None = None, keep: bool = False) -> PngLayout:
    """Walk a ciphertext PNG's chunks and check its structure without decoding pixels; raise
    :class:`CiphertextError` for anything a RIC writer would not produce. The image size in the header is
    checked against ``max_pixels`` (default and upper bound :data:`ric.imageio.MAX_PIXELS`) before any image
    data is decompressed. ``keep``: when no row of the image data is filtered (as ric writes ciphertexts), the
    inflated rows are the pixels, returned in ``pixels`` so that nothing is decoded twice."""
    limit = imageio.MAX_PIXELS if max_pixels is None else min(max_pixels, imageio.MAX_PIXELS)
    if not data.startswith(PNG_SIGNATURE):
        raise CiphertextError(f"{name}: not a PNG file (not an image, or another image format): "
                              "not a RIC ciphertext")
    pos, chunks = len(PNG_SIGNATURE), []
    while True:
        if pos + 12 > len(data):
            raise CiphertextError(f"{name}: truncated PNG (ends inside a chunk, no IEND)")
        n, typ = struct.unpack(">I4s", data[pos:pos + 8])
        if n > 0x7FFFFFFF or pos + 12 + n > len(data):
            raise CiphertextError(f"{name}: truncated PNG (chunk {quote(typ.decode('latin-1'))} runs past the end)")
        body = data[pos + 8:pos + 8 + n]
        (crc,) = struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])
        if not typ.isalpha():
            raise CiphertextError(f"{name}: corrupt PNG (bad chunk type {quote(typ.decode('latin-1'))})")
        if zlib.crc32(typ + body) != crc:
            raise CiphertextError(f"{name}: corrupt PNG (CRC mismatch in a {typ.decode('ascii')} chunk)")
        chunks.append((typ, body))
        pos += 12 + n
        if typ == b"IEND":
            break
    if pos != len(data):
        raise CiphertextError(f"{name}: {len(data) - pos} bytes after the end of the PNG (IEND)")
    if chunks[0][0] != b"IHDR" or len(chunks[0][1]) != 13:
        raise CiphertextError(f"{name}: corrupt PNG (no IHDR header first)")
    types = [t for t, _ in chunks]
    for t in set(types):
        if (t[:1].isupper() and t not in _CRITICAL_OK) or t in _ANIMATION:
            raise CiphertextError(f"{name}: PNG chunk {t.decode('ascii')} is not allowed in a ciphertext "
                                  "(8-bit grey or RGB only, one frame)")
        if t in (b"IHDR", b"IEND") and types.count(t) != 1:
            raise CiphertextError(f"{name}: corrupt PNG ({types.count(t)} {t.decode('ascii')} chunks)")
    idat = [i for i, t in enumerate(types) if t == b"IDAT"]
    if not idat or idat != list(range(idat[0], idat[-1] + 1)):
        raise CiphertextError(f"{name}: corrupt PNG (image data missing or not contiguous)")
    w, h, depth, colour, comp, filt, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    if depth != 8 or colour not in (0, 2):
        raise CiphertextError(f"{name}: a ciphertext is an 8-bit grey or RGB PNG (this one has bit depth {depth}, "
                              f"colour type {colour})")
    if comp != 0 or filt != 0 or interlace != 0:
        raise CiphertextError(f"{name}: unsupported PNG encoding (compression {comp}, filter {filt}, "
                              f"interlace {interlace}); ciphertexts are not interlaced")
    if not (0 < w and 0 < h and w * h <= limit):
        raise CiphertextError(f"{name}: image size {h}x{w} is out of range (at most {limit} pixels)")
    c = 1 if colour == 0 else 3
    rows = _check_stream(b"".join(chunks[i][1] for i in idat), name, h, w, c, keep=keep)
    texts = []
    for typ, body in chunks:
        if typ in _TEXT_CHUNKS:
            key, sep, value = body.partition(b"\x00")
            if not sep:
                raise CiphertextError(f"{name}: malformed {typ.decode('ascii')} chunk")
            texts.append((key.decode("latin-1"), value.decode("latin-1") if typ == b"tEXt" else None, typ))
    pixels = None if rows is None else np.ascontiguousarray(
        np.frombuffer(rows, np.uint8).reshape(h, 1 + w * c)[:, 1:].reshape(h, w, c))
    return PngLayout(w, h, c, texts, pixels)


def _check_stream(stream: bytes, name: str, h: int, w: int, c: int, piece: int = 1 << 20,
                  keep: bool = False) -> bytearray | None:
    """The image data must be one zlib stream of exactly ``h`` rows of ``1 + w·c`` bytes, each starting with a
    filter type 0-4. Inflated ``piece`` bytes at a time and not kept (the pixels are decoded once, later), but
    with ``keep``, as long as every row is unfiltered: then the inflated rows are returned."""
    row, expect = 1 + w * c, h * (1 + w * c)
    d, done, buf = zlib.decompressobj(), 0, stream
    kept: bytearray | None = bytearray() if keep else None
    try:
        while done <= expect and not d.eof:
            out = d.decompress(buf, piece)
            buf = d.unconsumed_tail
            first = (-done) % row  # offset in ``out`` of the next row's filter byte
            filters = out[first:max(0, expect - done):row]
            if filters.translate(None, b"\x00\x01\x02\x03\x04"):
                raise CiphertextError(f"{name}: corrupt image data (bad row filter)")
            if kept is not None and filters.translate(None, b"\x00"):
                kept = None  # a filtered row: Pillow decodes the pixels later
            elif kept is not None:
                kept += out
            done += len(out)
            if not out and not buf:  # input used up before the stream's end: truncated
                break
    except zlib.error as e:
        raise CiphertextError(f"{name}: corrupt image data ({e})") from None
    if done != expect or not d.eof or d.unused_data or d.unconsumed_tail:
        raise CiphertextError(f"{name}: corrupt image data (not one zlib stream of exactly {h}x{w}x{c} pixels)")
    return kept


def _ric_fields(layout: PngLayout, name: str) -> dict[str, str]:
    """The ``ric:*`` fields, checked: once each, tEXt only, known to the scheme, all required present, canonical."""
    got: dict[str, str] = {}
    for k, v, typ in layout.texts:
        if not k.startswith("ric:"):
            continue  # other text (e.g. Software) is allowed; it is neither used nor authenticated
        if typ != b"tEXt":
            raise CiphertextError(f"{name}: RIC metadata {quote(k)} must be in a tEXt chunk, not {typ.decode()}")
        if k in got:
            raise CiphertextError(f"{name}: RIC metadata {quote(k)} appears more than once")
        got[k] = v
    if "ric:format" not in got:
        raise NotACiphertextError(f"{name}: not a RIC ciphertext (no RIC metadata in the PNG)")
    if got["ric:format"] != FORMAT:
        raise CiphertextError(f"{name}: unsupported ciphertext format {quote(got['ric:format'])} (this is {FORMAT})")
    scheme = got.get("ric:scheme", implicit_scheme())
    spec = _field_set(scheme, name)
    fields = {k[4:]: v for k, v in got.items() if k != "ric:format"}
    unknown = sorted(set(fields) - spec.required - spec.optional)
    if unknown:
        raise CiphertextError(f"{name}: unknown RIC metadata {', '.join(quote('ric:' + k) for k in unknown)} "
                              f"for a {scheme}-scheme ciphertext")
    missing = sorted(spec.required - set(fields))
    if missing:
        raise CiphertextError(f"{name}: ciphertext metadata is missing {', '.join(missing)}")
    for k, v in fields.items():
        if not FIELDS[k].check(v):
            raise CiphertextError(f"{name}: malformed ciphertext metadata: ric:{k} = {quote(v)} is not canonical")
    return fields


def read_ciphertext(path: str | Path, pixels: bool = True) -> Ciphertext:
    """Parse a ciphertext PNG strictly; raise :class:`CiphertextError` for anything malformed (structure and
    canonical metadata only: the caller verifies the tag, then checks model, classifier and target).

    ``pixels=False`` reads the header and metadata only: ``.pixels`` is then a read-only all-zero view of the
    right shape (no memory), on which :meth:`Ciphertext.verify` fails."""
    path = Path(path)
    name = str(path)
    try:
        if not path.is_file():
            raise CiphertextError(f"no such file: {path}")
        if path.stat().st_size > MAX_FILE_BYTES:
            raise CiphertextError(f"{name}: file too large for a ciphertext ({path.stat().st_size} bytes)")
        data = path.read_bytes()
    except OSError as e:
        raise CiphertextError(f"{name}: cannot read ({e.strerror or e})") from None
    return read_ciphertext_bytes(data, name, pixels)


def read_ciphertext_bytes(data: bytes, name: str = "ciphertext", pixels: bool = True,
                          max_pixels: int | None = None) -> Ciphertext:
    """:func:`read_ciphertext` for bytes already in memory (e.g. an upload); ``name`` is used in messages.
    ``max_pixels`` lowers the image-size limit, checked from the header before anything is decompressed."""
    if len(data) > MAX_FILE_BYTES:
        raise CiphertextError(f"{name}: too large for a ciphertext ({len(data)} bytes)")
    layout = parse_png(data, name, max_pixels, keep=pixels)
    fields = _ric_fields(layout, name)
    shape = (layout.height, layout.width, layout.channels)
    if pixels:
        a = layout.pixels if layout.pixels is not None else _decode(data, name, shape)
    else:
        a = np.broadcast_to(np.zeros((), np.uint8), shape)
    kw = {f.attr: (f.parse(fields[k]) if k in fields else f.default) for k, f in FIELDS.items()}
    return Ciphertext(pixels=a, **kw)


def _decode(data: bytes, name: str, shape: tuple) -> np.ndarray:
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data), formats=["PNG"]) as img:
                if img.mode != ("L" if shape[2] == 1 else "RGB") or img.size != (shape[1], shape[0]):
                    raise CiphertextError(f"{name}: ciphertext must be 8-bit grey or RGB, got mode {img.mode}")
                a = np.array(img, dtype=np.uint8)
        except CiphertextError:
            raise
        except Exception as e:  # a damaged stream that passed the structural checks
            raise CiphertextError(f"{name}: unreadable or truncated ciphertext ({imageio.one_line(e)})") from None
    a = a[:, :, None] if a.ndim == 2 else a
    if a.shape != shape:
        raise CiphertextError(f"{name}: unreadable ciphertext (decoded {a.shape}, header says {shape})")
    return a


# ------------------------------------------------------------------------------------------ bare pixels
BARE_READERS: list[Callable[[Path, np.ndarray], Ciphertext | None]] = []


def register_bare_reader(reader: Callable[[Path, np.ndarray], Ciphertext | None]) -> None:
    """Add a scheme's reader of bare pixels: ``reader(path, pixels)`` gives the ciphertext that a file without RIC
    metadata holds in its (uint8 H×W×C) pixels, or None if they hold none of that scheme's."""
    BARE_READERS.append(reader)


def read_bare(path: str | Path) -> Ciphertext:
    """A ciphertext known by its pixels only: its text chunks were stripped, or it was re-encoded losslessly (PNG
    optimiser, WebP lossless, TIFF). The registered readers (:func:`register_bare_reader`) are asked in turn; a
    file declaring more pixels than its size can hold (:func:`max_subpixels`) is refused before decoding. Raise
    :class:`CiphertextError` if no reader finds a ciphertext."""
    name = str(path)
    try:
        size = Path(path).stat().st_size
    except OSError as e:
        raise CiphertextError(f"{name}: cannot read ({e.strerror or e})") from None
    limit = min(imageio.MAX_PIXELS, max_subpixels(size))
    try:
        with imageio.open_image(path, max_pixels=limit, formats=imageio.CIPHERTEXT_FORMATS) as img:
            if img.mode not in ("L", "RGB", "P"):
                raise CiphertextError(f"{name}: not a RIC ciphertext (mode {img.mode}; ciphertexts are 8-bit grey "
                                      "or RGB)")
            a = np.array(img.convert("RGB") if img.mode == "P" else img, dtype=np.uint8)
    except InputError as e:
        why = f" (the most a ciphertext of {size} bytes can hold)" if "more than the limit" in str(e) else ""
        raise CiphertextError(f"{e}{why}") from None
    a = a[:, :, None] if a.ndim == 2 else a
    for reader in BARE_READERS:
        ct = reader(Path(path), a)
        if ct is not None:
            return ct
    raise CiphertextError(f"{name}: not a RIC ciphertext (no RIC metadata, and no ciphertext header in its "
                          "pixels)")


def read_any(path: str | Path) -> Ciphertext:
    """:func:`read_ciphertext`, or :func:`read_bare` for a file without RIC metadata (a stripped or re-encoded
    ciphertext of a scheme that can be read from its pixels)."""
    try:
        with open(path, "rb") as f:
            png = f.read(len(PNG_SIGNATURE)) == PNG_SIGNATURE
    except OSError as e:
        raise CiphertextError(f"{path}: cannot read ({e.strerror or e})") from None
    if png:
        try:
            return read_ciphertext(path)
        except NotACiphertextError:
            pass
    return read_bare(path)
