from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from ric.container import Ciphertext, read_ciphertext
from ric.errors import AuthenticationError, CiphertextError
from ric.keys import SecretKey, new_nonce


def _ct(key, shape=(32, 32, 3)):
    px = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    return Ciphertext(px, "svhn-ric", new_nonce(), 7, key.key_id, classifier="svhn-cnn7@0123456789abcdef").sign(key)


def test_roundtrip_is_plain_png(tmp_path, key):
    ct = _ct(key)
    p = ct.save(tmp_path / "c.png")
    img = Image.open(p)
    assert img.format == "PNG" and img.mode == "RGB"  # any classifier reads it as an image
    back = read_ciphertext(p)
    assert np.array_equal(back.pixels, ct.pixels) and back.nonce == ct.nonce and back.target == 7
    back.verify(key)


def test_wrong_key(tmp_path, key):
    p = _ct(key).save(tmp_path / "c.png")
    with pytest.raises(AuthenticationError, match="wrong key"):
        read_ciphertext(p).verify(SecretKey.generate())


def test_tampered_pixels_and_metadata(tmp_path, key):
    ct = _ct(key)
    ct.pixels[0, 0, 0] ^= 1
    with pytest.raises(AuthenticationError, match="modified"):
        ct.verify(key)
    ct.pixels[0, 0, 0] ^= 1
    ct.verify(key)
    for field, value in (("target", 3), ("model", "other"), ("nonce", new_nonce()), ("classifier", "x@1")):
        bad = replace(ct, **{field: value})
        with pytest.raises(AuthenticationError):
            bad.verify(key)


def test_malformed_files(tmp_path, key):
    p = _ct(key).save(tmp_path / "c.png")
    data = p.read_bytes()
    (tmp_path / "trunc.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(CiphertextError, match="truncated|unreadable"):
        read_ciphertext(tmp_path / "trunc.png")
    (tmp_path / "text.png").write_text("not an image")
    with pytest.raises(CiphertextError, match="not an image"):
        read_ciphertext(tmp_path / "text.png")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "plain.png")
    with pytest.raises(CiphertextError, match="not a RIC ciphertext"):
        read_ciphertext(tmp_path / "plain.png")
    with pytest.raises(CiphertextError):
        read_ciphertext(tmp_path / "missing.png")


def test_model_fingerprint_is_optional_and_authenticated(tmp_path, key):
    ct = replace(_ct(key), model_fp="0123456789abcdef").sign(key)
    back = read_ciphertext(ct.save(tmp_path / "c.png"))
    assert back.model_fp == "0123456789abcdef"
    back.verify(key)
    with pytest.raises(AuthenticationError):
        replace(back, model_fp="fedcba9876543210").verify(key)
    assert read_ciphertext(_ct(key).save(tmp_path / "old.png")).model_fp == ""


# ---------------------------------------------------------------- one canonical encoding
from ric.container import FIELD_SETS, FIELDS, check_field, plain_mac  # noqa: E402
from ric.errors import NotACiphertextError  # noqa: E402
from tests import _png  # noqa: E402


def _file(tmp_path, key, data_edit=None, name="c.png"):
    ct = replace(_ct(key), model_fp="0123456789abcdef").sign(key)
    data = ct.to_png()
    if data_edit:
        data = data_edit(data)
    p = tmp_path / name
    p.write_bytes(data)
    return p, ct


@pytest.mark.parametrize("field,value", [
    ("nonce", "AB" * 16), ("nonce", " " + "ab" * 16), ("nonce", "ab" * 15), ("nonce", "ab" * 16 + "\n"),
    ("target", "+0_3"), ("target", "07"), ("target", "-1"), ("target", " 7"), ("target", "7 "), ("target", "\xb2"),
    ("target", "1_0"), ("tag", "AA" * 32), ("key-id", "0123"), ("key-id", "0123456789ABCDEF"),
    ("model-fp", "0123456789ABCDEF"), ("classifier", "svhn-cnn7"), ("classifier", "svhn-cnn7@0123"),
    ("classifier", "svhn-cnn7@0123456789ABCDEF"), ("classifier", " x@0123456789abcdef"),
    ("model", "../svhn-ric"), ("model", "svhn ric"), ("model", "a\x1b[2Jb"), ("model", ""), ("format", "ric-1"),
    ("scheme", "exact!"), ("scheme", "Paper"), ("plain-mac", "00")])
def test_non_canonical_fields_are_rejected(tmp_path, key, field, value):
    p, _ = _file(tmp_path, key, lambda d: _png.set_text(d, f"ric:{field}", value)
                 if field not in ("scheme", "plain-mac") else _png.add_chunk(d, _png.text(f"ric:{field}", value)))
    with pytest.raises(CiphertextError) as e:
        read_ciphertext(p)
    assert "\x1b" not in str(e.value) and "\n" not in str(e.value)  # untrusted text is quoted with repr


def test_duplicate_unknown_and_misplaced_fields(tmp_path, key):
    edits = {
        "duplicate": lambda d: _png.add_chunk(d, _png.text("ric:target", "7")),  # even with the same value
        "unknown": lambda d: _png.add_chunk(d, _png.text("ric:colour", "red")),
        "ztxt": lambda d: _png.add_chunk(d, (b"zTXt", b"ric:note\x00\x00" + __import__("zlib").compress(b"x"))),
        "missing": lambda d: _png.set_text(d, "ric:key-id", None),
    }
    msgs = {"duplicate": "more than once", "unknown": "unknown RIC metadata 'ric:colour'", "ztxt": "tEXt",
            "missing": "missing key-id"}
    for what, edit in edits.items():
        p, _ = _file(tmp_path, key, edit, f"{what}.png")
        with pytest.raises(CiphertextError, match=msgs[what]):
            read_ciphertext(p)
    # other (non-RIC) text chunks are allowed and ignored
    p, ct = _file(tmp_path, key, lambda d: _png.add_chunk(d, _png.text("Software", "optipng")), "sw.png")
    read_ciphertext(p).verify(key)


@pytest.mark.parametrize("what", ["16-bit", "rgba", "palette", "interlaced", "trailing", "crc", "extra-zlib",
                                  "split-idat-gap", "huge", "apng"])
def test_png_structure_is_checked(tmp_path, key, what):
    import struct
    import zlib

    def edit(d):
        ch = _png.split(d)
        ihdr = ch[0][1]
        w, h = struct.unpack(">II", ihdr[:8])
        if what == "16-bit":
            raw = b"".join(b"\x00" + bytes(6 * w) for _ in range(h))
            return _png.join([(b"IHDR", ihdr[:8] + b"\x10\x02\x00\x00\x00"), *[c for c in ch[1:] if c[0] != b"IDAT"
                                                                               ][:-1],
                              (b"IDAT", zlib.compress(raw)), (b"IEND", b"")])
        if what in ("rgba", "palette", "interlaced"):
            new = {"rgba": ihdr[:9] + b"\x06" + ihdr[10:], "palette": ihdr[:9] + b"\x03" + ihdr[10:],
                   "interlaced": ihdr[:12] + b"\x01"}[what]
            return _png.join([(b"IHDR", new), *ch[1:]])
        if what == "trailing":
            return d + b"\x00"
        if what == "crc":
            return d[:40] + bytes([d[40] ^ 1]) + d[41:]
        if what == "extra-zlib":
            return _png.join([(t, b + b"junk" if t == b"IDAT" else b) for t, b in ch])
        if what == "split-idat-gap":
            i = next(k for k, c in enumerate(ch) if c[0] == b"IDAT")
            body = ch[i][1]
            return _png.join([*ch[:i], (b"IDAT", body[:10]), _png.text("x", "y"), (b"IDAT", body[10:]), *ch[i + 1:]])
        if what == "apng":  # an animation control chunk: frames ric would not read
            return _png.join([ch[0], (b"acTL", struct.pack(">II", 1, 0)), *ch[1:]])
        return _png.join([(b"IHDR", struct.pack(">II", 1 << 15, 1 << 15) + ihdr[8:]), *ch[1:]])  # huge

    p, _ = _file(tmp_path, key, edit)
    with pytest.raises(CiphertextError):
        read_ciphertext(p)


def test_plain_png_is_not_a_ciphertext(tmp_path):
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "plain.png")
    with pytest.raises(NotACiphertextError):
        read_ciphertext(tmp_path / "plain.png")


def test_field_table_roundtrip_and_write_checks(tmp_path, key):
    """Every field's text survives write → read; a value that is not canonical is refused before writing."""
    ct = replace(_ct(key), model_fp="0123456789abcdef", plain_mac="ab" * 32, scheme="paper").sign(key)
    back = read_ciphertext(ct.save(tmp_path / "c.png"))
    for f in FIELDS.values():
        assert getattr(back, f.attr) == getattr(ct, f.attr)
    back.verify(key)
    assert set(FIELD_SETS) == {"paper", "exact"} and FIELDS["target"].check("12") and not FIELDS["target"].check("012")
    with pytest.raises(CiphertextError, match="cannot hold"):
        replace(ct, model="a/b").sign(key).save(tmp_path / "bad.png")
    assert not (tmp_path / "bad.png").exists()
    assert check_field("target", 5) == "5"
    only = read_ciphertext(tmp_path / "c.png", pixels=False)
    assert only.pixels.shape == ct.pixels.shape and only.meta() == ct.meta()
    with pytest.raises(AuthenticationError):
        only.verify(key)  # a header-only read cannot pass for the file


def test_plain_mac_binds_nonce_shape_and_pixels(key):
    a = np.random.default_rng(1).integers(0, 256, (4, 4, 3), dtype=np.uint8)
    n = bytes(16)
    m = plain_mac(key, n, a)
    assert len(m) == 64 and m == plain_mac(key, n, a.copy())
    b = a.copy()
    b[0, 0, 0] ^= 1
    assert len({m, plain_mac(key, bytes(15) + b"\x01", a), plain_mac(key, n, b),
                plain_mac(key, n, a.reshape(4, 12, 1)), plain_mac(key.flip_bit(0), n, a)}) == 5


def test_unfiltered_rows_are_the_pixels_and_filtered_ones_still_read(tmp_path, key):
    """ric writes ciphertexts unfiltered, and reads them from the checked rows without a second decode; the same
    ciphertext re-encoded by Pillow (filtered rows) reads to the same pixels and still verifies."""
    from PIL import PngImagePlugin

    from ric.container import parse_png

    ct = _ct(key, (9, 11, 3))
    px = ct.pixels
    path = ct.save(tmp_path / "c.png")
    data = path.read_bytes()
    assert parse_png(data, "c", keep=True).pixels is not None and parse_png(data, "c").pixels is None
    info = PngImagePlugin.PngInfo()
    for k, v in ct.text_chunks().items():
        info.add_text(k, v)
    Image.fromarray(px).save(tmp_path / "p.png", pnginfo=info, compress_level=9)
    assert parse_png((tmp_path / "p.png").read_bytes(), "p", keep=True).pixels is None
    for p in (path, tmp_path / "p.png"):
        back = read_ciphertext(p)
        assert np.array_equal(back.pixels, px)
        back.verify(key)
