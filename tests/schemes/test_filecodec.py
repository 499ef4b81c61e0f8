"""The file payload's byte-reversible codecs and metadata stripping."""

import io

import numpy as np
import pytest
from PIL import Image

from ric.errors import CiphertextError, InputError
from ric.schemes import filecodec


def _photo(fmt: str, exif: bool = True, **kw) -> bytes:
    rng = np.random.default_rng(0)
    a = (np.linspace(0, 255, 64 * 48 * 3).reshape(48, 64, 3) + rng.normal(0, 6, (48, 64, 3))).clip(0, 255)
    img = Image.fromarray(a.astype(np.uint8))
    ex = Image.Exif()
    ex[0x010F] = "Maker"
    ex[0x8825] = {2: (48.0, 51.0, 0.0)}  # GPS latitude
    buf = io.BytesIO()
    img.save(buf, format=fmt, **({"exif": ex.tobytes()} if exif else {}), **kw)
    return buf.getvalue()


@pytest.mark.parametrize("fmt,kw", [("JPEG", {"quality": 90}), ("PNG", {}), ("WEBP", {"quality": 80}),
                                    ("TIFF", {}), ("BMP", {}), ("PPM", {})])
def test_packing_gives_back_the_bytes(fmt, kw):
    data = _photo(fmt, exif=fmt in ("JPEG", "PNG", "WEBP"), **kw)
    assert filecodec.sniff(data) == fmt
    codec_id, packed = filecodec.pack(data, fmt, ("zlib", "jpegxl-jpeg"))
    assert filecodec.unpack(codec_id, packed) == data and len(packed) <= len(data)
    if fmt in ("BMP", "PPM", "TIFF"):  # uncompressed pixels: DEFLATE wins
        assert filecodec.CODECS[codec_id].name == "zlib"


def test_jpeg_recompression_is_smaller_and_exact():
    if not filecodec.BY_NAME["jpegxl-jpeg"].available():
        pytest.skip("imagecodecs without JPEG XL")
    data = _photo("JPEG", quality=92)
    codec_id, packed = filecodec.pack(data, "JPEG", ("jpegxl-jpeg",))
    assert filecodec.CODECS[codec_id].name == "jpegxl-jpeg" and len(packed) < len(data)
    assert filecodec.unpack(codec_id, packed) == data


def test_unknown_codec_ids_and_broken_payloads_are_errors():
    with pytest.raises(CiphertextError, match="unknown file codec"):
        filecodec.unpack(99, b"x")
    with pytest.raises(CiphertextError, match="does not decode as zlib"):
        filecodec.unpack(1, b"not deflate")


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_strip_metadata_drops_exif_and_keeps_the_image(fmt):
    data = _photo(fmt, **({"quality": 90} if fmt != "PNG" else {}))
    with Image.open(io.BytesIO(data)) as img:
        assert img.getexif()
        before = np.asarray(img.convert("RGB"))
    out = filecodec.strip_metadata(data, fmt)
    assert len(out) < len(data) and b"Maker" in data and b"Maker" not in out
    with Image.open(io.BytesIO(out)) as img:
        assert not img.getexif() and np.array_equal(np.asarray(img.convert("RGB")), before)


def test_strip_metadata_refuses_other_formats():
    with pytest.raises(InputError, match="handles JPEG, PNG and WebP"):
        filecodec.strip_metadata(_photo("TIFF", exif=False), "TIFF", "x.tif")
    with pytest.raises(InputError, match="corrupt JPEG|truncated JPEG"):
        filecodec.strip_metadata(_photo("JPEG")[:40], "JPEG")
