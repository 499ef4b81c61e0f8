"""The exact scheme: digits, sealing, capacity, bit-exact round trips, labels that hold."""

import io
import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from ric.classifiers import load_classifier
from ric.errors import AuthenticationError, CapacityError, CiphertextError
from ric.keys import SecretKey, new_nonce
from ric.schemes import exact as ex


@given(st.binary(min_size=0, max_size=200), st.sampled_from(ex.BITS), st.integers(0, 40))
@settings(max_examples=60, deadline=None)
def test_digits_round_trip(data, bits, extra):
    count = -(-8 * len(data) // bits) + extra
    d = ex.to_digits(data, bits, count)
    assert d.dtype == np.uint8 and len(d) == count and int(d.max(initial=0)) < (1 << bits)
    assert ex.from_digits(d, bits)[:len(data)] == data


@given(st.binary(min_size=0, max_size=300), st.sampled_from(ex.BITS), st.integers(1, 40))
@settings(max_examples=80, deadline=None)
def test_digits_are_the_bit_stream_msb_first(data, bits, piece):
    """The word-at-a-time packing is the plain bit stream: digit i is bits i·b .. i·b+b−1 of the data, MSB first,
    whatever the piece size of the unpacking."""
    count = -(-8 * len(data) // bits)
    d = ex.to_digits(data, bits, count)
    stream = "".join(f"{v:08b}" for v in data)
    whole = len(stream) // bits
    assert [int(v) for v in d[:whole]] == [int(stream[i * bits:(i + 1) * bits], 2) for i in range(whole)]
    assert ex.from_digits(d, bits, piece=piece)[:len(data)] == data
    assert len(ex.from_digits(d, bits, piece=piece)) == count * bits // 8


def _img(h, w, c, seed=0, smooth=True):
    rng = np.random.default_rng(seed)
    if smooth:  # photo-like: compressible
        yy, xx = np.mgrid[0:h, 0:w]
        a = (yy[..., None] * 3 + xx[..., None] * 5 + np.arange(c) * 40 + rng.integers(0, 8, (h, w, c))) % 256
        return a.astype(np.uint8)
    return rng.integers(0, 256, (h, w, c), dtype=np.uint8)


@pytest.mark.parametrize("plain_shape,ct_shape", [((32, 32, 3), (32, 32, 3)), ((28, 28, 1), (28, 28, 1)),
                                                  ((17, 23, 3), (17, 23, 3)), ((20, 20, 1), (20, 20, 3))])
@pytest.mark.parametrize("bits", [5, 6, 7])
def test_seal_open_bit_exact(key, plain_shape, ct_shape, bits):
    a = _img(*plain_shape)
    nonce = new_nonce()
    m = ex.seal(key, nonce, bits, ct_shape, a)
    assert m.shape == ct_shape and int(m.max()) < (1 << bits)
    q = np.random.default_rng(1).integers(0, 1 << (8 - bits), ct_shape).astype(np.uint8)
    c = (q << bits) | m
    back = ex.open_sealed(key, c)
    assert back.shape == a.shape and np.array_equal(back, a)
    hd = ex.read_header(c)
    assert (hd.bits, hd.key_id, hd.nonce) == (bits, key.key_id, nonce)


def test_capacity_error_names_bits(key):
    a = _img(32, 32, 3, smooth=False)  # noise does not compress: 8 bits per sub-pixel
    with pytest.raises(CapacityError) as e:
        ex.seal(key, new_nonce(), 6, (32, 32, 3), a)
    msg = str(e.value)
    assert "needs" in msg and f"holds {32 * 32 * 3 * 6}" in msg
    assert e.value.exit_code == 1


def test_wrong_key_and_modified_pixels(key):
    a = _img(32, 32, 3)
    c = ex.seal(key, new_nonce(), 6, (32, 32, 3), a) | np.uint8(64)
    with pytest.raises(AuthenticationError, match="wrong key"):
        ex.open_sealed(SecretKey.generate(), c)
    bad = c.copy()
    bad[20, 20, 1] ^= 1  # a low bit inside the sealed payload
    with pytest.raises(AuthenticationError, match="modified"):
        ex.open_sealed(key, bad)
    hi = c.copy()
    hi[20, 20, 1] ^= 128  # a high digit: the payload is intact, so the pixels still decrypt
    assert np.array_equal(ex.open_sealed(key, hi), a)


def test_not_a_ciphertext():
    with pytest.raises(CiphertextError):
        ex.read_header(np.zeros((32, 32, 3), np.uint8))
    with pytest.raises(CiphertextError):
        ex.open_sealed(SecretKey.generate(), np.full((4, 4, 1), 6, np.uint8))


@pytest.fixture(scope="module")
def svhn_exact():
    return ex.ExactScheme(load_classifier("svhn-cnn7"), bits=6)


@pytest.fixture(scope="module")
def encrypted(svhn_exact, samples, key):
    plains = [(x.permute(1, 2, 0) * 255).round().to(torch.uint8).numpy() for x in samples[1][:8]]
    return plains, svhn_exact.encrypt(plains, key)


def test_scheme_round_trip_and_labels(svhn_exact, encrypted, key):
    plains, res = encrypted
    assert all(r.ciphertext is not None for r in res), [r.error for r in res]
    clf = svhn_exact.classifier
    for a, r in zip(plains, res, strict=True):
        assert np.array_equal(svhn_exact.decrypt([r.ciphertext], key)[0], a)
        assert r.ciphertext.scheme == "exact" and r.ciphertext.bits == 6 and r.steps >= 0
        x = torch.from_numpy(a).permute(2, 0, 1)[None].float() / 255
        assert int(clf.predict(x)[0]) == r.target
    c = torch.stack([torch.from_numpy(r.ciphertext.pixels).permute(2, 0, 1) for r in res]).float() / 255
    assert clf.predict(c).tolist() == [r.target for r in res]


def test_label_holds_in_float64_and_one_thread(svhn_exact, encrypted):
    _, res = encrypted
    c = torch.stack([torch.from_numpy(r.ciphertext.pixels).permute(2, 0, 1) for r in res]).double() / 255
    clf64 = load_classifier("svhn-cnn7").double()
    assert clf64(c).argmax(1).tolist() == [r.target for r in res]
    n = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert svhn_exact.classifier.predict(c.float()).tolist() == [r.target for r in res]
    finally:
        torch.set_num_threads(n)


def test_two_encryptions_differ(svhn_exact, encrypted, key):
    plains, res = encrypted
    again = svhn_exact.encrypt(plains[:1], key)[0]
    assert again.ciphertext is not None
    assert again.ciphertext.nonce != res[0].ciphertext.nonce
    assert not np.array_equal(again.ciphertext.pixels, res[0].ciphertext.pixels)


def test_scheme_reports_what_does_not_fit(svhn_exact, key):
    noise = _img(32, 32, 3, seed=3, smooth=False)
    ok = _img(32, 32, 3, seed=4)
    r = svhn_exact.encrypt([noise, ok], key)
    assert r[0].ciphertext is None and "needs" in r[0].error and r[0].attempts == 0
    assert r[1].ciphertext is not None


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "TIFF"])
def test_pixels_survive_lossless_reencoding(encrypted, key, fmt):
    plains, res = encrypted
    px = res[0].ciphertext.pixels
    buf = io.BytesIO()
    kw = {"lossless": True} if fmt == "WEBP" else {}
    Image.fromarray(px).save(buf, format=fmt, **kw)  # no text chunks survive
    back = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    assert np.array_equal(ex.open_sealed(key, back), plains[0])


def test_grey_classifier_gets_grey_ciphertext(key, data_root):
    from ric.datasets import load_dataset

    ds = load_dataset("mnist", "test", data_root)
    plains = [ds.images[i] for i in range(4)]
    # the channel policy only: ric's own path (a grey classifier over the robustness set costs seconds per image;
    # benchmarks/stacks.py measures it on MNIST)
    sch = ex.ExactScheme(load_classifier("mnist-cnn5"), bits=5, robust_set=None)
    res = sch.encrypt(plains, key)
    for a, r in zip(plains, res, strict=True):
        assert r.ciphertext is not None, r.error
        assert r.ciphertext.pixels.shape == (28, 28, 1)
        assert np.array_equal(sch.decrypt([r.ciphertext], key)[0], a)


def test_repr_shows_settings(svhn_exact):
    s = repr(svhn_exact)
    assert s.startswith("ExactScheme(") and "bits=6" in s and "kappa" in s


def test_cli_capacity_overflow_writes_nothing_for_that_image(tmp_path, capsys):
    from ric.cli import main

    (tmp_path / "in").mkdir()
    Image.fromarray(_img(32, 32, 3, seed=5)).save(tmp_path / "in" / "ok.png")
    Image.fromarray(_img(32, 32, 3, seed=6, smooth=False)).save(tmp_path / "in" / "noise.png")
    assert main(["keygen", "-o", str(tmp_path / "k")]) == 0
    capsys.readouterr()
    rc = main(["encrypt", str(tmp_path / "in"), "-o", str(tmp_path / "ct"), "-k", str(tmp_path / "k"), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 1 and out["summary"] == {"encrypted": 1, "skipped": 0, "failed": 1}
    bad = next(r for r in out["items"] if r["input"].endswith("noise.png"))
    assert "needs" in bad["error"] and "holds 18432" in bad["error"]
    assert sorted(p.name for p in (tmp_path / "ct").iterdir()) == ["ok.png"]


@pytest.mark.parametrize("how", ["stripped", "webp", "tiff", "bmp", "ppm", "optimised"])
def test_cli_decrypts_stripped_and_reencoded_files(tmp_path, capsys, how):
    from ric.cli import main
    from ric.imageio import read_native

    (tmp_path / "in").mkdir()
    Image.fromarray(_img(32, 32, 3, seed=7)).save(tmp_path / "in" / "p.png")
    Image.fromarray(_img(32, 32, 1, seed=8)[:, :, 0]).save(tmp_path / "in" / "g.png")
    assert main(["keygen", "-o", str(tmp_path / "k")]) == 0
    assert main(["encrypt", str(tmp_path / "in"), "-o", str(tmp_path / "ct"), "-k", str(tmp_path / "k"), "-q",
                 "--convert", "auto"]) == 0
    (tmp_path / "moved").mkdir()
    for f in (tmp_path / "ct").iterdir():
        img = Image.open(f)
        img.load()
        target = tmp_path / "moved" / (f.stem + {"webp": ".webp", "tiff": ".tif", "bmp": ".bmp",
                                                  "ppm": ".ppm"}.get(how, ".png"))
        if how == "webp":
            img.save(target, format="WEBP", lossless=True, exact=True)
        elif how == "tiff":
            img.save(target, format="TIFF", compression="tiff_deflate")
        elif how in ("bmp", "ppm"):  # the other lossless formats imageio.CIPHERTEXT_FORMATS accepts
            img.save(target, format=how.upper())
        else:  # "stripped": no text chunks; "optimised": PNG optimiser settings, no text chunks
            img.save(target, format="PNG", optimize=how == "optimised", compress_level=9)
    assert read_native(tmp_path / "in" / "g.png", 1).shape[2] == 1
    capsys.readouterr()
    assert main(["decrypt", str(tmp_path / "moved"), "-o", str(tmp_path / "rec"), "-k", str(tmp_path / "k"),
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["summary"]["decrypted"] == 2
    for name, c in (("p", 3), ("g", 1)):
        assert np.array_equal(read_native(tmp_path / "in" / f"{name}.png", c),
                              read_native(tmp_path / "rec" / f"{name}.png", c))
    other = tmp_path / "other.key"
    assert main(["keygen", "-o", str(other)]) == 0
    capsys.readouterr()
    assert main(["decrypt", str(tmp_path / "moved"), "-o", str(tmp_path / "rec2"), "-k", str(other)]) == 3
    assert "wrong key" in capsys.readouterr().err and not (tmp_path / "rec2").exists()


def test_a_codec_that_refuses_an_image_is_skipped(monkeypatch):
    from ric.schemes import lossless

    def refuse(a):
        raise ValueError("too large for this codec")

    first = lossless.BY_NAME[lossless.DEFAULT_CANDIDATES[0]]
    refusing = lossless.LosslessCodec(first.id, first.name, refuse, first.decode)
    monkeypatch.setitem(lossless.BY_NAME, first.name, refusing)
    a = _img(16, 16, 3)
    cid, data = lossless.compress(a)
    assert cid != first.id and np.array_equal(lossless.decompress(cid, data, a.shape), a)


def test_the_smooth_start_is_keyed_and_in_range():
    key, n1, n2 = SecretKey.generate(), new_nonce(), new_nonce()
    a = ex.keyed_image(key, n1, (4, 5, 3))
    assert a.dtype == np.float32 and a.shape == (4, 5, 3) and 0.25 <= a.min() and a.max() <= 0.75
    assert np.array_equal(a, ex.keyed_image(key, n1, (4, 5, 3)))
    assert not np.array_equal(a, ex.keyed_image(key, n2, (4, 5, 3)))
    assert not np.array_equal(a, ex.keyed_image(SecretKey.generate(), n1, (4, 5, 3)))
