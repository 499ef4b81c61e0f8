"""The exact scheme's file payload: a photo's own bytes, optionally in a byte-reversible transcoding.

A photo is sealed as the file the user gave (JPEG, PNG, WebP, TIFF, BMP, PPM/PGM, HEIC), so decryption returns
it byte for byte, EXIF and ICC profile included. A transcoding replaces the bytes only when it is
*byte-reversible* (its decoder gives back the original bytes exactly, checked before it is used) and smaller:

* ``raw`` (id 0): the bytes as given;
* ``zlib`` (id 1): DEFLATE, for formats that store pixels uncompressed (BMP, PPM/PGM, uncompressed TIFF);
* ``jpegxl-jpeg`` (id 2): JPEG XL's lossless JPEG recompression (libjxl through ``imagecodecs``), which
  reconstructs the original JPEG file bit for bit and is about 20 % smaller.

The codec id is stored inside the sealed payload, so the id a decryptor acts on has been authenticated, and it
can only select among :data:`CODECS`. :func:`strip_metadata` (``ric encrypt --strip-metadata``) drops EXIF
(with GPS), XMP, IPTC and comments from JPEG, PNG and WebP files without touching the coded image.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from ric.errors import CiphertextError, InputError


# ------------------------------------------------------------------------------------------ formats
def sniff(data: bytes) -> str:
    """The file format from its first bytes (Pillow's format names), or ``""`` if it is none ric reads."""
    if data[:3] == b"\xff\xd8\xff":
        return "JPEG"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "PNG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    if data[:2] == b"BM":
        return "BMP"
    if data[:2] in (b"P5", b"P6"):
        return "PPM"
    if data[4:8] == b"ftyp" and data[8:12] in (b"heic", b"heix", b"mif1", b"msf1", b"heim", b"heis", b"hevc"):
        return "HEIF"
    return ""


UNCOMPRESSED = ("BMP", "PPM", "TIFF")  # formats whose pixels may be stored raw: DEFLATE is tried on them


# ------------------------------------------------------------------------------------------ codecs
@dataclass(frozen=True)
class FileCodec:
    id: int
    name: str
    encode: Callable[[bytes], bytes]
    decode: Callable[[bytes], bytes]
    applies: Callable[[str], bool]
    available: Callable[[], bool] = lambda: True


def _jxl_jpeg_available() -> bool:
    try:
        import imagecodecs

        return bool(imagecodecs.JPEGXL.available) and hasattr(imagecodecs, "jpegxl_encode_jpeg")
    except (ImportError, AttributeError):
        return False


def _jxl_encode_jpeg(data: bytes) -> bytes:
    import imagecodecs

    return bytes(imagecodecs.jpegxl_encode_jpeg(data))


def _jxl_decode_jpeg(data: bytes) -> bytes:
    if not _jxl_jpeg_available():
        raise CiphertextError("this ciphertext's photo is a JPEG recompressed with JPEG XL: install imagecodecs "
                              "with JPEG XL to decrypt it")
    import imagecodecs

    return bytes(imagecodecs.jpegxl_decode_jpeg(data))


CODECS: dict[int, FileCodec] = {c.id: c for c in (
    FileCodec(0, "raw", bytes, bytes, lambda fmt: True),
    FileCodec(1, "zlib", lambda d: zlib.compress(d, 6), zlib.decompress, lambda fmt: fmt in UNCOMPRESSED),
    FileCodec(2, "jpegxl-jpeg", _jxl_encode_jpeg, _jxl_decode_jpeg, lambda fmt: fmt == "JPEG",
              _jxl_jpeg_available),
)}
BY_NAME = {c.name: c for c in CODECS.values()}
# tried on every photo, each kept only where it is smaller. JPEG XL's JPEG recompression (about 20-27 % smaller
# JPEGs) is opt-in: it costs several times a classification per photo to encode and check, and more than one to
# decode (benchmarks/photos.py measures both), against the speed targets of a photo library.
DEFAULT_TRANSCODE = ("zlib",)


def parse_transcode(text: str) -> tuple[str, ...]:
    """``ric encrypt --transcode``: comma-separated codec names (``zlib,jpegxl-jpeg``), or ``none``."""
    if text.strip().lower() == "none":
        return ()
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in BY_NAME or n == "raw"]
    if unknown or not names:
        known = ", ".join(n for n in BY_NAME if n != "raw")
        raise InputError(f"--transcode: unknown codec {', '.join(unknown) or repr(text)} (known: {known}, or none)")
    return names


def pack(data: bytes, fmt: str, candidates: tuple[str, ...] = DEFAULT_TRANSCODE) -> tuple[int, bytes]:
    """``(codec id, bytes)``: the smallest byte-reversible encoding of ``data`` among ``raw`` and the applicable,
    available ``candidates``; a candidate is used only if decoding it gives ``data`` back exactly."""
    best = (0, data)
    for name in candidates:
        codec = BY_NAME[name]
        if not (codec.applies(fmt) and codec.available()):
            continue
        try:
            enc = codec.encode(data)
        except Exception:  # noqa: BLE001 - a transcoder that refuses this file: the bytes stay as they are
            continue
        if len(enc) < len(best[1]) and codec.decode(enc) == data:
            best = (codec.id, enc)
    return best


def unpack(codec_id: int, data: bytes) -> bytes:
    """The original file bytes of an authenticated payload."""
    codec = CODECS.get(codec_id)
    if codec is None:
        raise CiphertextError(f"unknown file codec id {codec_id} (this version knows {sorted(CODECS)})")
    try:
        return codec.decode(data)
    except CiphertextError:
        raise
    except Exception as e:  # noqa: BLE001 - any failure of an authenticated payload's decoder is one error
        raise CiphertextError(f"payload does not decode as {codec.name}: {type(e).__name__}") from None


# ------------------------------------------------------------------------------------------ metadata
_JPEG_DROP = {0xE1, 0xED, 0xFE}  # APP1 (EXIF, XMP), APP13 (IPTC), COM
_PNG_DROP = {b"eXIf", b"tEXt", b"zTXt", b"iTXt", b"tIME"}
_WEBP_DROP = {b"EXIF", b"XMP "}


def _strip_jpeg(data: bytes, name: str) -> bytes:
    out, pos = [data[:2]], 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            raise InputError(f"{name}: corrupt JPEG (no marker at byte {pos})")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xDA or 0xD0 <= marker <= 0xD9:  # start of scan (or a bare marker): the rest is image data
            out.append(data[pos:])
            return b"".join(out)
        (n,) = struct.unpack(">H", data[pos + 2:pos + 4])
        if n < 2 or pos + 2 + n > len(data):
            raise InputError(f"{name}: corrupt JPEG (segment runs past the end)")
        if marker not in _JPEG_DROP:
            out.append(data[pos:pos + 2 + n])
        pos += 2 + n
    raise InputError(f"{name}: truncated JPEG (no image data)")


def _strip_png(data: bytes, name: str) -> bytes:
    out, pos = [data[:8]], 8
    while pos + 12 <= len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        typ, end = data[pos + 4:pos + 8], pos + 12 + n
        if end > len(data):
            raise InputError(f"{name}: truncated PNG")
        if typ not in _PNG_DROP:
            out.append(data[pos:end])
        pos = end
        if typ == b"IEND":
            return b"".join(out)
    raise InputError(f"{name}: truncated PNG (no IEND)")


def _strip_webp(data: bytes, name: str) -> bytes:
    out, pos = [], 12
    while pos + 8 <= len(data):
        typ, (n,) = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])
        end = pos + 8 + n + (n & 1)
        if pos + 8 + n > len(data):
            raise InputError(f"{name}: truncated WebP")
        chunk = data[pos:min(end, len(data))]
        if typ == b"VP8X":  # clear the EXIF (0x08) and XMP (0x04) flags
            chunk = chunk[:8] + bytes([chunk[8] & ~0x0C]) + chunk[9:]
        if typ not in _WEBP_DROP:
            out.append(chunk)
        pos = end
    body = b"WEBP" + b"".join(out)
    return b"RIFF" + struct.pack("<I", len(body)) + body


_STRIPPERS = {"JPEG": _strip_jpeg, "PNG": _strip_png, "WEBP": _strip_webp}


def strip_metadata(data: bytes, fmt: str, name: str = "photo") -> bytes:
    """``data`` without EXIF/GPS, XMP, IPTC, text chunks and comments (JPEG, PNG and WebP; the coded image, the
    ICC profile and the JPEG's JFIF/Adobe segments are kept byte for byte). Other formats are refused."""
    strip = _STRIPPERS.get(fmt)
    if strip is None:
        raise InputError(f"{name}: --strip-metadata handles JPEG, PNG and WebP files; this one is "
                         f"{fmt or 'not a photo format ric reads'}")
    return strip(data, name)
