"""Lossless image codecs for the exact scheme's payload.

Each codec has a one-byte id that is stored *inside* the encrypted payload, so the id a decryptor acts on
has already been authenticated; it can only select among the codecs of :data:`CODECS`. Measured on the
shipped datasets by ``benchmarks/lossless.py`` (its report in the repository): JPEG XL (``imagecodecs``,
effort 7) is the smallest on colour images, WebP lossless (Pillow, method 4) is close and sometimes smaller
on grey digits; PNG is the fastest. Every ciphertext is padded to its full capacity, so the exact scheme asks
:func:`compress` for the *fastest* encoding that fits (PNG, then JPEG XL, then WebP); without a size to fit it keeps
the smallest. Every encoding is decoded and compared with the input before it is used.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image

from ric.errors import CiphertextError


def _pil(a: np.ndarray) -> Image.Image:
    return Image.fromarray(np.ascontiguousarray(a[:, :, 0] if a.shape[2] == 1 else a))


def _pil_bytes(a: np.ndarray, **kw) -> bytes:
    buf = io.BytesIO()
    _pil(a).save(buf, **kw)
    return buf.getvalue()


def _pil_decode(data: bytes, channels: int, fmt: str) -> np.ndarray:
    with Image.open(io.BytesIO(data), formats=[fmt]) as img:  # only the codec's own decoder
        img = img.convert("L" if channels == 1 else "RGB")  # WebP decodes grey as RGB with R = G = B
        a = np.asarray(img, dtype=np.uint8)
    return a[:, :, None] if a.ndim == 2 else a


def _jxl_encode(a: np.ndarray) -> bytes:
    import imagecodecs

    return bytes(imagecodecs.jpegxl_encode(a[:, :, 0] if a.shape[2] == 1 else a, lossless=True, effort=7))


def _jxl_decode(data: bytes, channels: int) -> np.ndarray:
    try:
        import imagecodecs
    except ImportError:
        raise CiphertextError("this ciphertext's image is JPEG XL: install imagecodecs to decrypt it") from None
    a = np.asarray(imagecodecs.jpegxl_decode(data), dtype=np.uint8)
    return a[:, :, None] if a.ndim == 2 else a


def _jxl_available() -> bool:
    try:
        import imagecodecs

        return bool(imagecodecs.JPEGXL.available)
    except (ImportError, AttributeError):
        return False


@dataclass(frozen=True)
class LosslessCodec:
    id: int
    name: str
    encode: Callable[[np.ndarray], bytes]
    decode: Callable[[bytes, int], np.ndarray]
    available: Callable[[], bool] = lambda: True


CODECS: dict[int, LosslessCodec] = {c.id: c for c in (
    LosslessCodec(1, "jpegxl", _jxl_encode, _jxl_decode, _jxl_available),
    LosslessCodec(2, "webp", lambda a: _pil_bytes(a, format="WEBP", lossless=True, quality=100, method=4,
                                                  exact=True), lambda d, c: _pil_decode(d, c, "WEBP")),
    LosslessCodec(3, "png", lambda a: _pil_bytes(a, format="PNG", optimize=True),
                  lambda d, c: _pil_decode(d, c, "PNG")),
)}
BY_NAME = {c.name: c for c in CODECS.values()}
DEFAULT_CANDIDATES = ("jpegxl", "webp")
FAST_FIRST = ("png", "jpegxl", "webp")  # fastest encoder first (benchmarks/lossless.py), JPEG XL before WebP


def _verified(name: str, a: np.ndarray) -> tuple[int, bytes] | None:
    codec = BY_NAME[name]
    if not codec.available():
        return None
    try:
        data = codec.encode(a)
    except Exception:  # noqa: BLE001 - e.g. WebP refuses sides over 16383 pixels: the next candidate serves
        return None
    return (codec.id, data) if np.array_equal(codec.decode(data, a.shape[2]), a) else None


def compress(a: np.ndarray, candidates: tuple[str, ...] = DEFAULT_CANDIDATES, room: int | None = None
             ) -> tuple[int, bytes]:
    """``(codec id, bytes)``: a lossless encoding of uint8 H×W×C ``a`` (C = 1 or 3) whose decoding equals ``a``
    exactly (PNG if no candidate's does).

    Without ``room``: the smallest among the available ``candidates``. With ``room`` (the bytes a ciphertext can
    carry; it is padded to that size whatever the encoding, so a smaller one gains nothing): the first of
    :data:`FAST_FIRST` that fits, else the smallest of all, for the capacity error to report."""
    if room is not None:
        found = []
        for name in FAST_FIRST:
            got = _verified(name, a)
            if got is not None and len(got[1]) <= room:
                return got
            found += [got] if got is not None else []
        return min(found, key=lambda g: len(g[1])) if found else (BY_NAME["png"].id, BY_NAME["png"].encode(a))
    best: tuple[int, bytes] | None = None
    for name in candidates:
        got = _verified(name, a)
        if got is not None and (best is None or len(got[1]) < len(best[1])):
            best = got
    return best if best is not None else (BY_NAME["png"].id, BY_NAME["png"].encode(a))


def decompress(codec_id: int, data: bytes, shape: tuple[int, int, int]) -> np.ndarray:
    """Decode an authenticated payload and check that it has the recorded ``shape`` (H, W, C)."""
    codec = CODECS.get(codec_id)
    if codec is None:
        raise CiphertextError(f"unknown payload codec id {codec_id} (this version knows {sorted(CODECS)})")
    try:
        a = codec.decode(data, shape[2])
    except CiphertextError:
        raise
    except Exception as e:  # noqa: BLE001 - any decoder failure of an authenticated payload is one error
        raise CiphertextError(f"payload does not decode as {codec.name}: {type(e).__name__}") from None
    if a.shape != tuple(shape):
        raise CiphertextError(f"payload decodes to {a.shape}, expected {tuple(shape)}")
    return a
