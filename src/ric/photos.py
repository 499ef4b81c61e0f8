"""Photo files as the exact scheme seals them: the file's own bytes, its format, and its pixels decoded once.

The formats ric reads as photos are named once, in :data:`ric.imageio.PHOTO_FORMATS` (JPEG, PNG, WebP, TIFF, BMP,
PPM/PGM, and HEIC/HEIF where ``pillow-heif`` is installed); a file is identified by its first bytes
(:func:`ric.schemes.filecodec.sniff`) and only that format's decoder is allowed to read it, so a file's content
cannot reach any other Pillow plugin. What comes back after decryption is the file as read here, byte for byte
(EXIF, GPS and ICC profile included, inside the sealed payload where the cloud cannot see them), unless
``strip_metadata`` dropped them first.
"""

from __future__ import annotations

from pathlib import Path

from ric.errors import InputError
from ric.imageio import MAX_PIXELS, PHOTO_FORMATS, open_image_bytes, read_native
from ric.schemes.exact import Photo
from ric.schemes.filecodec import sniff, strip_metadata

MAX_PHOTO_BYTES = 1 << 28  # a photo file larger than this is refused before it is read


def heif_available() -> bool:
    """True if HEIC/HEIF photos can be read (``pillow-heif`` installed; its Pillow opener is registered)."""
    try:
        import pillow_heif
    except ImportError:
        return False
    pillow_heif.register_heif_opener()
    return True


def read_photo_bytes(path: Path, strip: bool = False) -> tuple[bytes, str]:
    """The bytes of the photo file at ``path`` as they will be sealed (metadata dropped with ``strip``) and its
    format; a file ric does not read as a photo is refused by name."""
    try:
        size = path.stat().st_size
        if size > MAX_PHOTO_BYTES:
            raise InputError(f"{path}: {size} bytes, more than the limit of {MAX_PHOTO_BYTES} for a photo; not read")
        data = path.read_bytes()
    except OSError as e:
        raise InputError(f"{path}: cannot read ({e.strerror or e})") from None
    fmt = sniff(data)
    if fmt not in PHOTO_FORMATS or (fmt == "HEIF" and not heif_available()):
        kind = "a HEIC/HEIF photo: install pillow-heif to read it" if fmt == "HEIF" else (
            f"not a photo format ric reads ({', '.join(PHOTO_FORMATS)})")
        raise InputError(f"{path}: {kind}")
    return (strip_metadata(data, fmt, str(path)) if strip else data), fmt


heif_available()  # register the HEIC/HEIF decoder with Pillow now, so that header probes can name it


def read_photo(path: str | Path, channels: int, convert: str = "strict", strip: bool = False) -> Photo:
    """A :class:`~ric.schemes.exact.Photo`: the file's bytes (as sealed) and its pixels, decoded once from those
    bytes by the one decoder its format names, in the image's own channels under the channel policy."""
    path = Path(path)
    data, fmt = read_photo_bytes(path, strip)
    img = open_image_bytes(data, str(path), max_pixels=MAX_PIXELS, formats=(fmt,))
    try:
        pixels = read_native(path, channels, convert, img=img)
    finally:
        img.close()
    return Photo(path.name, data, fmt, pixels, stripped=strip)
