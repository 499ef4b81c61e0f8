from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from ric.container import Ciphertext, read_ciphertext
from ric.errors import AuthenticationError, CiphertextError
from ric.keys import SecretKey, new_nonce


def _ct(key, shape=(32, 32, 3)):
    px = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    return Ciphertext(px, "svhn-ric", new_nonce(), 7, key.key_id, classifier="svhn-cnn7@0123").sign(key)


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
