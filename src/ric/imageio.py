"""Reading and writing images (PIL), with the channel policy and atomic writes."""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import torch
from PIL import Image, PngImagePlugin, UnidentifiedImageError

from ric.errors import InputError
from ric.files import atomic_write_bytes

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".heic", ".heif"}
# The only Pillow decoders that ever see a file (``Image.open(..., formats=...)``): Pillow otherwise picks the
# decoder from the content, whatever the name, and some of its plugins run programs (EPS runs Ghostscript) or parse
# rarely used formats. Photos and the images ``ric classify`` labels: PHOTO_FORMATS (HEIF only where pillow-heif is
# installed: ric.photos registers it; "PPM" is Pillow's reader of PPM and PGM; a JPEG with several pictures, as
# phones write, opens as JPEG's "MPO" variant), the default of every reader here. Ciphertexts without metadata: PNG
# and the lossless re-encodings an exact-scheme file survives (WebP lossless, TIFF, BMP, PPM). GIF, EPS and every
# other format are refused ("not an image file of a kind ric reads").
PHOTO_FORMATS = ("JPEG", "PNG", "WEBP", "TIFF", "BMP", "PPM", "HEIF")
CIPHERTEXT_FORMATS = ("PNG", "WEBP", "TIFF", "BMP", "PPM")

# Channel policy (``convert``):
#   "strict": the image must already have the classifier's channel count (default; clear error otherwise)
#   "auto":   grey → replicated to 3 channels for RGB models; RGB → ITU-R 601 luma for grey models;
#             RGBA/LA → alpha dropped (the colour channels are kept as they are, not composited).
CHANNEL_POLICIES = ("strict", "auto")


# Largest image read (width × height): far above any model's input (160×160), far below what would exhaust
# memory; Pillow's own decompression-bomb limits (warning at ~89 Mpx, error at twice that) are errors here too.
MAX_PIXELS = 1 << 26


def _high_bit_depth(img: Image.Image) -> bool:
    """True for images with more than 8 bits per sample (16-bit PNG/TIFF/PGM, 32-bit int or float)."""
    if img.mode.startswith(("I", "F")):  # I, I;16, I;16B, I;16L, I;16N, F
        return True
    for tile in getattr(img, "tile", None) or []:
        args = tile[3] if len(tile) > 3 else None
        args = args if isinstance(args, tuple) else (args,)
        raw = args[0] if args else None
        if isinstance(raw, str) and any(b in raw for b in (";16", ";32", ";48", ";64")):
            return True  # e.g. a 16-bit RGB PNG, which Pillow would silently cut to 8 bits
        if tile[0] == "ppm" and len(args) > 1 and isinstance(args[1], int) and args[1] > 255:
            return True  # PPM/PGM with maxval > 255
    return False


def check_header(img: Image.Image, name: str, size: tuple | None = None, max_pixels: int | None = None,
                 hint: str = "") -> None:
    """Check an opened (not yet decoded) image's header: pixel count, bit depth and, if given, ``size``
    (height, width; either may be ``None`` for any)."""
    w, h = img.size
    limit = MAX_PIXELS if max_pixels is None else max_pixels
    if w * h > limit:
        raise InputError(f"{name}: image is {h}x{w} pixels, more than the limit of {limit} pixels; not read")
    if _high_bit_depth(img):
        raise InputError(f"{name}: {img.mode} image with more than 8 bits per sample: 16-bit images are not "
                         "supported (they would be clipped); convert it to 8-bit first")
    if size is not None:
        eh, ew = size
        if (eh is not None and h != eh) or (ew is not None and w != ew):
            raise InputError(f"{name}: the model expects {eh}x{ew} images, got {h}x{w}{hint}")


def open_image(path: str | Path, size: tuple | None = None, max_pixels: int | None = None,
               hint: str = "", formats: tuple[str, ...] = PHOTO_FORMATS) -> Image.Image:
    """Open and decode an image, header first: its size (against ``size`` (H, W) and ``max_pixels``) and bit
    depth are checked before any pixel is decoded. Decompression bombs and every decoding failure end in
    :class:`InputError` (one line). ``formats``: the only Pillow decoders tried (default :data:`PHOTO_FORMATS`)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"no such file: {path}")
    return _open(path, str(path), size, max_pixels, hint, formats)


def open_image_bytes(data: bytes, name: str, size: tuple | None = None, max_pixels: int | None = None,
                     formats: tuple[str, ...] = PHOTO_FORMATS) -> Image.Image:
    """:func:`open_image` for a file already in memory (``name`` is used in messages)."""
    return _open(io.BytesIO(data), name, size, max_pixels, "", formats)


def probe_image(path: str | Path, max_pixels: int | None = None, formats: tuple[str, ...] = PHOTO_FORMATS
                ) -> tuple[int, int, str]:
    """``(height, width, Pillow format)`` from an image file's header (size and bit depth checked, nothing
    decoded)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"no such file: {path}")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        img = _open_header(path, str(path), formats)
        try:
            check_header(img, str(path), None, max_pixels)
            return img.size[1], img.size[0], str(img.format)
        finally:
            img.close()


def _open_header(fp, name: str, formats) -> Image.Image:
    Image.init()
    allowed = [f for f in formats if f in Image.OPEN]  # HEIF only where its plugin is installed
    if not allowed:  # never "any decoder": Image.open(formats=[]) or None would try them all
        raise InputError(f"{name}: no decoder for {', '.join(formats) or 'no format'} is installed")
    try:
        return Image.open(fp, formats=allowed)
    except UnidentifiedImageError:
        raise InputError(f"{name}: not an image file of a kind ric reads ({', '.join(allowed)})") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise InputError(f"{name}: image too large to read safely ({e})") from None
    except Exception as e:  # anything a malformed header provokes in a plugin
        raise InputError(f"{name}: unreadable image ({one_line(e)})") from None


def _open(fp, name: str, size, max_pixels, hint: str, formats) -> Image.Image:
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        img = _open_header(fp, name, formats)
        try:
            check_header(img, name, size, max_pixels, hint)
            img.load()
        except InputError:
            img.close()
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
            img.close()
            raise InputError(f"{name}: image too large to read safely ({e})") from None
        except Exception as e:  # OSError, SyntaxError, ValueError, zlib errors, ... from a damaged file
            img.close()
            raise InputError(f"{name}: unreadable or truncated image ({one_line(e)})") from None
    return img


def one_line(e: Exception) -> str:
    s = str(e).strip().splitlines()
    return (s[0] if s else type(e).__name__)[:200]


def _mode_channels(mode: str) -> int:
    return {"1": 1, "L": 1, "I;16": 1, "I": 1, "F": 1, "P": 3, "LA": 2, "RGB": 3, "RGBA": 4, "CMYK": 4,
            "YCbCr": 3}.get(mode, 3)


def to_array(img: Image.Image, channels: int, convert: str = "strict", name: str = "image") -> np.ndarray:
    """uint8 H×W×C array with ``channels`` channels under the channel policy."""
    if convert not in CHANNEL_POLICIES:
        raise InputError(f"unknown channel policy {convert!r}; use one of {CHANNEL_POLICIES}")
    have = _mode_channels(img.mode)
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
        have = _mode_channels(img.mode)
    if have != channels:
        if convert == "strict":
            what = {1: "grey", 2: "grey+alpha", 3: "RGB", 4: "RGBA"}.get(have, img.mode)
            raise InputError(f"{name}: {what} image has {have} channels, the model expects {channels} "
                             f"(use --convert auto to replicate grey / drop alpha)")
        img = img.convert("RGB" if channels == 3 else "L")
    elif img.mode not in ("L", "RGB"):
        img = img.convert("RGB" if channels == 3 else "L")
    a = np.array(img, dtype=np.uint8)  # a writable copy
    return a[:, :, None] if a.ndim == 2 else a


def read_image(path: str | Path, channels: int = 3, convert: str = "strict", size: tuple | None = None,
               hint: str = "") -> np.ndarray:
    """uint8 H×W×C; ``size`` (H, W), when given, is checked from the header before decoding (``hint`` ends the
    message of a size mismatch)."""
    return to_array(open_image(path, size=size, hint=hint), channels, convert, name=str(path))


def read_native(path: str | Path, channels: int, convert: str = "strict", size: tuple | None = None,
                img: Image.Image | None = None) -> np.ndarray:
    """uint8 H×W×C in the image's own channels (C = 1 for grey, 3 for colour; palettes expanded, alpha dropped),
    for the exact scheme, which gives back exactly what it encrypts. The channel policy still applies against
    the classifier's ``channels``: with ``strict`` a grey image for an RGB classifier (or RGB for a grey one)
    is an error; with ``auto`` it is kept as it is and the classifier sees it converted."""
    img = open_image(path, size=size) if img is None else img
    mode = ("RGBA" if "transparency" in img.info else "RGB") if img.mode == "P" else img.mode
    have = _mode_channels(mode)
    if convert == "strict" and have != channels:
        return to_array(img, channels, "strict", name=str(path))  # raises the policy's error
    return to_array(img, 1 if have in (1, 2) else 3, "auto", name=str(path))


def png_bytes(pixels: np.ndarray, text: dict[str, str] | None = None, compress_level: int = 6) -> bytes:
    """Encode uint8 H×W×C (C = 1 or 3) as PNG, with optional tEXt chunks, at zlib ``compress_level``."""
    a = pixels[:, :, 0] if pixels.shape[2] == 1 else pixels
    img = Image.fromarray(np.ascontiguousarray(a), mode="L" if a.ndim == 2 else "RGB")
    info = PngImagePlugin.PngInfo()
    for k, v in (text or {}).items():
        info.add_text(k, v)
    buf = io.BytesIO()
    img.save(buf, format="PNG", pnginfo=info, compress_level=compress_level)
    return buf.getvalue()


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def unfiltered_png(pixels: np.ndarray, text: dict[str, str] | None = None, level: int = 1,
                   strategy: int = zlib.Z_HUFFMAN_ONLY) -> bytes:
    """Encode uint8 H×W×C (C = 1 or 3) as PNG with every row unfiltered (filter type 0) and one zlib stream at
    ``level``/``strategy``, with tEXt chunks (iTXt for text that is not Latin-1). For ciphertexts: their noise
    gains nothing from PNG's row filters, which Pillow always chooses per row and which cost it more than the
    compression (``benchmarks/photos.py`` measures both writers on a real carrier); any PNG reader decodes it."""
    h, w, c = pixels.shape
    if c not in (1, 3) or pixels.dtype != np.uint8:
        raise ValueError("unfiltered_png writes uint8 grey or RGB images")
    rows = np.zeros((h, 1 + w * c), dtype=np.uint8)  # a 0 filter byte in front of each row
    rows[:, 1:] = pixels.reshape(h, w * c)
    z = zlib.compressobj(level, zlib.DEFLATED, 15, 9, strategy)
    out = [PNG_SIGNATURE, _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2 if c == 3 else 0, 0, 0, 0))]
    for k, v in (text or {}).items():
        try:
            out.append(_chunk(b"tEXt", k.encode("latin-1") + b"\0" + v.encode("latin-1")))
        except UnicodeEncodeError:
            out.append(_chunk(b"iTXt", k.encode("latin-1") + b"\0\0\0\0\0" + v.encode("utf-8")))
    out += [_chunk(b"IDAT", z.compress(rows) + z.flush()), _chunk(b"IEND", b"")]
    return b"".join(out)


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def write_png(path: str | Path, pixels: np.ndarray, text: dict[str, str] | None = None,
              compress_level: int = 6) -> Path:
    atomic_write_bytes(path, png_bytes(pixels, text, compress_level))
    return Path(path)


def list_images(inputs: list[str | Path]) -> list[Path]:
    """Expand files and directories (non-recursive, sorted) into image paths."""
    out: list[Path] = []
    for p in map(Path, inputs):
        if p.is_dir():
            out.extend(sorted(q for q in p.iterdir() if q.is_file() and q.suffix.lower() in IMAGE_SUFFIXES))
        elif p.exists():
            out.append(p)
        else:
            raise InputError(f"no such file or directory: {p}")
    if not out:
        raise InputError("no input images found")
    return out


# ------------------------------------------------------------------------------ pixels <-> tensors, channels
def to_tensor(a: np.ndarray) -> torch.Tensor:
    """The one pixel → tensor conversion: uint8 H×W×C (one image) or N×H×W×C → float N×C×H×W in [0, 1]."""
    a = np.ascontiguousarray(a)
    if a.ndim == 3:
        a = a[None]
    return torch.from_numpy(a).permute(0, 3, 1, 2).float() / 255


def to_pixels(x: torch.Tensor) -> np.ndarray:
    """The one tensor → pixel conversion: float C×H×W or N×C×H×W in [0, 1] → uint8 H×W×C or N×H×W×C (rounded to
    the nearest 8-bit level, clamped)."""
    u8 = torch.round(x.detach().clamp(0, 1) * 255).to(torch.uint8).cpu()
    return (u8.permute(1, 2, 0) if u8.ndim == 3 else u8.permute(0, 2, 3, 1)).numpy()


def luma(a: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma of uint8 RGB H×W×3, computed exactly as Pillow's ``convert("L")`` (the channel policy's
    RGB → grey)."""
    return np.asarray(Image.fromarray(np.ascontiguousarray(a)).convert("L"), dtype=np.uint8)[:, :, None]


def channel_view(a: np.ndarray, channels: int) -> np.ndarray:
    """The channel policy on uint8 H×W×C pixels: ``a`` with ``channels`` channels, grey replicated to RGB, RGB
    reduced to luma."""
    if a.shape[2] == channels:
        return a
    if a.shape[2] == 1 and channels == 3:
        return np.repeat(a, 3, axis=2)
    if a.shape[2] == 3 and channels == 1:
        return luma(a)
    raise ValueError(f"cannot view a {a.shape[2]}-channel image with {channels} channels")


def as_channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    """The channel policy on N×C×H×W tensors: grey replicated to RGB; RGB made by replicating grey (a grey
    plaintext's recovery) averaged back to one channel."""
    if x.shape[1] == channels:
        return x
    if x.shape[1] == 1 and channels == 3:
        return x.repeat(1, 3, 1, 1)
    if x.shape[1] == 3 and channels == 1:
        return x.mean(1, keepdim=True)
    raise ValueError(f"cannot view a {x.shape[1]}-channel tensor with {channels} channels")
