"""Inputs are checked from the header before they are decoded; bombs, over-large and 16-bit
images end in one-line errors (exit 2); decrypt verifies file by file instead of loading everything first."""

import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageFile

from ric import api, imageio
from ric.cli import main
from ric.container import Ciphertext
from ric.errors import AuthenticationError, InputError
from ric.imageio import read_image
from ric.keys import new_nonce
from tests import _png
from tests.conftest import write_rgb


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "error:" in err[0] and "Traceback" not in err[0], err
    return err[0]


def test_size_is_checked_from_the_header_before_decoding(tmp_path, monkeypatch):
    write_rgb(tmp_path / "big.png", 40, 32)
    write_rgb(tmp_path / "ok.png", 32, 32)

    def no_decoding(self, *a, **k):
        raise AssertionError("pixels decoded before the header was checked")

    with monkeypatch.context() as m:
        m.setattr(ImageFile.ImageFile, "load", no_decoding)
        with pytest.raises(InputError, match="expects 32x32 images, got 40x32"):
            read_image(tmp_path / "big.png", 3, size=(32, 32))
    assert read_image(tmp_path / "ok.png", 3, size=(32, None)).shape == (32, 32, 3)
    monkeypatch.setattr(imageio, "MAX_PIXELS", 1000)
    with pytest.raises(InputError, match="more than the limit of 1000 pixels"):
        read_image(tmp_path / "ok.png")


@pytest.mark.parametrize("w,h", [(10000, 10000), (20000, 20000)])  # Pillow's bomb warning, then its bomb error
def test_decompression_bombs_are_one_line_errors(tmp_path, capsys, w, h):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "bomb.png").write_bytes(_png.header_only(w, h))
    with pytest.raises(InputError, match="too large"):
        read_image(tmp_path / "in" / "bomb.png")
    main(["keygen", "-o", str(tmp_path / "k")])
    capsys.readouterr()
    for argv in (["encrypt", str(tmp_path / "in"), "-o", str(tmp_path / "ct"), "-k", str(tmp_path / "k")],
                 ["classify", str(tmp_path / "in"), "-c", "svhn-cnn7"],
                 ["decrypt", str(tmp_path / "in"), "-o", str(tmp_path / "rec"), "-k", str(tmp_path / "k")]):
        assert main(argv) == 2
        msg = _one_error_line(capsys)
        assert "too large" in msg or "out of range" in msg
    assert not (tmp_path / "ct").exists() and not (tmp_path / "rec").exists()


def _png16(path, w=4, h=4, colour=2):
    ch = {0: 1, 2: 3, 4: 2, 6: 4}[colour]
    raw = b"".join(b"\x00" + bytes(range(256))[: 2 * ch * w] for _ in range(h))
    path.write_bytes(_png.join([(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, colour, 0, 0, 0)),
                                (b"IDAT", zlib.compress(raw)), (b"IEND", b"")]))
    return path


@pytest.mark.parametrize("kind", ["I;16 png", "16-bit RGB png", "16-bit RGBA png", "16-bit pgm", "16-bit ppm",
                                  "I tiff", "F tiff"])
def test_16_bit_images_are_refused(tmp_path, kind):
    p = tmp_path / "x"
    a16 = (np.arange(16, dtype=np.uint16).reshape(4, 4) * 4000)
    if kind == "I;16 png":
        p = tmp_path / "x.png"
        Image.fromarray(a16).save(p)
    elif kind == "16-bit RGB png":
        p = _png16(tmp_path / "x.png")
    elif kind == "16-bit RGBA png":
        p = _png16(tmp_path / "x.png", colour=6)
    elif kind == "16-bit pgm":
        p = tmp_path / "x.pgm"
        p.write_bytes(b"P5 4 4 65535\n" + a16.astype(">u2").tobytes())
    elif kind == "16-bit ppm":
        p = tmp_path / "x.ppm"
        p.write_bytes(b"P6 4 4 65535\n" + bytes(4 * 4 * 6))
    elif kind == "I tiff":
        p = tmp_path / "x.tif"
        Image.fromarray(a16.astype(np.int32)).save(p)
    else:
        p = tmp_path / "x.tif"
        Image.fromarray(a16.astype(np.float32)).save(p)
    for channels in (1, 3):
        for convert in ("strict", "auto"):
            with pytest.raises(InputError, match="16-bit images are not supported.*convert it to 8-bit"):
                read_image(p, channels, convert)


def test_16_bit_plaintext_refused_by_encrypt(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    _png16(tmp_path / "in" / "deep.png", 32, 32)
    main(["keygen", "-o", str(tmp_path / "k")])
    capsys.readouterr()
    rc = main(["encrypt", str(tmp_path / "in"), "-o", str(tmp_path / "ct"), "-k", str(tmp_path / "k")])
    assert rc == 2 and "16-bit" in _one_error_line(capsys)
    assert not (tmp_path / "ct").exists()


def test_decrypt_verifies_each_file_as_it_reads_it(tmp_path, key, monkeypatch):
    """The first file's bad tag stops decryption before the second file is even read."""
    rng = np.random.default_rng(0)
    (tmp_path / "ct").mkdir()
    for name in ("a", "b", "c"):
        ct = Ciphertext(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8), "svhn-ric-v2", new_nonce(), 1, "",
                        classifier="svhn-cnn7@0123456789abcdef").sign(key)
        if name == "a":
            ct.pixels[0, 0, 0] ^= 1  # tampered after signing
        ct.save(tmp_path / "ct" / f"{name}.png")
    seen = []
    from ric.jobs import decrypt as decrypt_job

    real = decrypt_job.read_any

    def spy(path, *a, **k):
        seen.append(path.name)
        return real(path, *a, **k)

    monkeypatch.setattr(decrypt_job, "read_any", spy)
    with pytest.raises(AuthenticationError, match="modified"):
        api.decrypt_files([tmp_path / "ct"], tmp_path / "rec", key)
    assert seen == ["a.png"] and not (tmp_path / "rec").exists()
