"""The one pixel <-> tensor pair and the channel policy (ric.imageio)."""

import os

import numpy as np
import pytest
import torch

from ric.imageio import as_channels, channel_view, luma, to_pixels, to_tensor


def test_pixels_tensor_round_trip_is_exact():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (3, 5, 7, 3), dtype=np.uint8)
    x = to_tensor(a)
    assert x.shape == (3, 3, 5, 7) and x.dtype == torch.float32 and float(x.max()) <= 1
    assert np.array_equal(to_pixels(x), a)
    assert to_tensor(a[0]).shape == (1, 3, 5, 7)  # one image gets a batch axis
    assert np.array_equal(to_pixels(to_tensor(a[0])[0]), a[0])  # C×H×W back to H×W×C


def test_to_pixels_rounds_and_clamps():
    x = torch.tensor([[[[-0.2, 0.5 / 255, 1.6 / 255, 1.3]]]])
    assert to_pixels(x).ravel().tolist() == [0, 0, 2, 255]


def test_channel_policy_grey_and_rgb():
    rng = np.random.default_rng(1)
    g = rng.integers(0, 256, (4, 4, 1), dtype=np.uint8)
    rgb = channel_view(g, 3)
    assert rgb.shape == (4, 4, 3) and all(np.array_equal(rgb[..., i], g[..., 0]) for i in range(3))
    assert np.array_equal(channel_view(rgb, 1), g)  # luma of replicated grey is the grey
    c = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
    assert np.array_equal(channel_view(c, 1), luma(c))
    with pytest.raises(ValueError):
        channel_view(rng.integers(0, 256, (4, 4, 2), dtype=np.uint8), 3)
    xt = to_tensor(g)
    assert np.array_equal(to_pixels(as_channels(as_channels(xt, 3), 1)), to_pixels(xt))  # same 8-bit levels


# ------------------------------------------------------------------------------ decoders ric does not read
EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 32 32\n0 0 moveto 32 32 lineto stroke\nshowpage\n"


@pytest.fixture
def ghostscript_stand_in(tmp_path, monkeypatch):
    """A ``gs`` first on PATH that records each run (and fails); Pillow's cached Ghostscript lookup reset."""
    from PIL import EpsImagePlugin

    (tmp_path / "bin").mkdir()
    log = tmp_path / "gs.log"
    gs = tmp_path / "bin" / "gs"
    gs.write_text(f"#!/bin/sh\necho \"$@\" >> '{log}'\nexit 1\n")
    gs.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ.get('PATH', '')}")
    monkeypatch.setattr(EpsImagePlugin, "gs_binary", None)
    return log


def test_a_png_that_holds_postscript_never_reaches_ghostscript(tmp_path, capsys, ghostscript_stand_in):
    from PIL import Image

    from ric.cli import main

    evil = tmp_path / "in" / "photo.png"
    evil.parent.mkdir()
    evil.write_bytes(EPS)
    assert Image.open(evil).format == "EPS"  # what Pillow would pick from the content, whatever the name
    assert main(["keygen", "-o", str(tmp_path / "k")]) == 0
    for argv in (["decrypt", str(evil.parent), "-o", str(tmp_path / "rec"), "-k", str(tmp_path / "k")],
                 ["classify", str(evil), "-c", "svhn-cnn7"],
                 ["encrypt", str(evil), "-o", str(tmp_path / "ct"), "-k", str(tmp_path / "k")]):
        capsys.readouterr()
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "not an image file of a kind ric reads" in err[0], err
    assert not ghostscript_stand_in.exists(), ghostscript_stand_in.read_text()
    assert not (tmp_path / "rec").exists() and not (tmp_path / "ct").exists()


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "TIFF", "BMP", "PPM", "GIF", "ICO", "PCX", "TGA"])
def test_only_the_named_formats_are_decoded(tmp_path, fmt):
    from PIL import Image

    from ric.errors import InputError
    from ric.imageio import CIPHERTEXT_FORMATS, PHOTO_FORMATS, open_image

    p = tmp_path / "x.png"  # the name says PNG whatever the content
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(p, format=fmt)
    for formats in (PHOTO_FORMATS, CIPHERTEXT_FORMATS):
        if fmt in formats:
            assert open_image(p, formats=formats).size == (16, 16)
        else:
            with pytest.raises(InputError, match="not an image file of a kind ric reads"):
                open_image(p, formats=formats)
    assert set(CIPHERTEXT_FORMATS) < set(PHOTO_FORMATS) and "JPEG" not in CIPHERTEXT_FORMATS


@pytest.mark.parametrize("channels", [1, 3])
def test_unfiltered_png_decodes_everywhere_with_its_text(channels):
    import io
    import struct
    import zlib

    from PIL import Image

    from ric.imageio import unfiltered_png

    a = np.random.default_rng(channels).integers(0, 256, (7, 5, channels), dtype=np.uint8)
    data = unfiltered_png(a, {"ric:format": "RIC-1", "ric:name": "IMG_été.jpg", "other": "ünïcödé ✓"})
    img = Image.open(io.BytesIO(data))
    back = np.asarray(img)
    assert np.array_equal(back.reshape(a.shape), a) and img.mode == ("L" if channels == 1 else "RGB")
    assert img.text == {"ric:format": "RIC-1", "ric:name": "IMG_été.jpg", "other": "ünïcödé ✓"}
    pos, idat = 8, b""
    while pos < len(data):  # every row of the image data has filter type 0
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        idat += data[pos + 8:pos + 8 + n] if kind == b"IDAT" else b""
        pos += 12 + n
    rows = np.frombuffer(zlib.decompress(idat), dtype=np.uint8).reshape(7, 1 + 5 * channels)
    assert not rows[:, 0].any()
    with pytest.raises(ValueError):
        unfiltered_png(a.astype(np.uint16))
