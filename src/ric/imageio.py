"""Reading and writing images (PIL), with the channel policy and atomic writes."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, PngImagePlugin, UnidentifiedImageError

from .bundles import atomic_write_bytes
from .errors import InputError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}

# Channel policy (``convert``):
#   "strict": the image must already have the classifier's channel count (default; clear error otherwise)
#   "auto":   grey → replicated to 3 channels for RGB models; RGB → ITU-R 601 luma for grey models;
#             RGBA/LA → alpha dropped (the colour channels are kept as they are, not composited).
CHANNEL_POLICIES = ("strict", "auto")


def open_image(path: str | Path) -> Image.Image:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"no such file: {path}")
    try:
        img = Image.open(path)
        img.load()
    except UnidentifiedImageError:
        raise InputError(f"{path}: not an image file") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise InputError(f"{path}: unreadable or truncated image ({e})") from None
    return img


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


def read_image(path: str | Path, channels: int = 3, convert: str = "strict") -> np.ndarray:
    return to_array(open_image(path), channels, convert, name=str(path))


def png_bytes(pixels: np.ndarray, text: dict[str, str] | None = None) -> bytes:
    """Encode uint8 H×W×C (C = 1 or 3) as PNG, with optional tEXt chunks."""
    a = pixels[:, :, 0] if pixels.shape[2] == 1 else pixels
    img = Image.fromarray(np.ascontiguousarray(a), mode="L" if a.ndim == 2 else "RGB")
    info = PngImagePlugin.PngInfo()
    for k, v in (text or {}).items():
        info.add_text(k, v)
    buf = io.BytesIO()
    img.save(buf, format="PNG", pnginfo=info)
    return buf.getvalue()


def write_png(path: str | Path, pixels: np.ndarray, text: dict[str, str] | None = None) -> Path:
    atomic_write_bytes(path, png_bytes(pixels, text))
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
