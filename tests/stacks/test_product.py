"""The robustness set in the product: ExactScheme(robust_set=...), encrypt_files, ric encrypt --robust-set, the
authenticated ric:robust-set field, and ric serve --stack."""

import importlib.util
import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

from ric.api import encrypt_files
from ric.classifiers import load_classifier
from ric.cli import main
from ric.container import read_ciphertext
from ric.errors import AuthenticationError, CiphertextError, InputError, UnknownNameError
from ric.imageio import to_tensor, write_png
from ric.keys import SecretKey
from ric.photos import read_photo
from ric.schemes.exact import ExactScheme
from ric.stacks import DEFAULT_ROBUST_SET, STACKS


def _installed(name: str) -> bool:
    return all(importlib.util.find_spec(m) is not None for m in STACKS[name].modules)


@pytest.fixture(scope="module")
def svhn():
    return load_classifier("svhn-cnn7")


@pytest.fixture(scope="module")
def grid(data_root):
    return list(np.load(data_root / "svhn/svhn_test_first10k.npz")["images"][:2])


def _labels_everywhere(clf, pixels: np.ndarray) -> dict[str, int]:
    x = to_tensor(pixels)
    return {n: int(st.predict(clf, x)[0]) for n, st in STACKS.items() if _installed(n)}


def test_product_grid_ciphertexts_keep_their_label_on_every_installed_stack(svhn, grid, tmp_path):
    key = SecretKey.generate()
    for i, a in enumerate(grid):
        write_png(tmp_path / "in" / f"{i}.png", a)
    rows = encrypt_files([tmp_path / "in"], tmp_path / "ct", key, classifier="svhn-cnn7")
    assert [r["status"] for r in rows] == ["encrypted"] * 2, rows
    for r in rows:
        ct = read_ciphertext(r["output"])
        assert ct.robust_set == DEFAULT_ROBUST_SET
        labels = _labels_everywhere(svhn, ct.pixels)
        assert set(labels) == set(STACKS)  # the test environment has ric[stacks]
        assert set(labels.values()) == {r["target"]}, labels


def test_product_photo_carrier_keeps_its_label_on_every_installed_stack(data_root, tmp_path):
    """A photo through the product path (format-2 compact carrier of a size class)."""
    clf = load_classifier("cifar10-resnet18")
    src = np.load(data_root / "cifar10/cifar10_test.npz")["images"][7]
    path = tmp_path / "IMG_0001.jpg"
    Image.fromarray(src).resize((160, 120), Image.Resampling.BICUBIC).save(path, quality=90)
    sch = ExactScheme(clf)
    r = sch.encrypt_photo(read_photo(path, 3, "strict", False), SecretKey.generate())
    assert r.ciphertext is not None, r.error
    assert r.ciphertext.pixels.shape[:2] != (120, 160)  # a compact carrier, not the photo's grid
    labels = _labels_everywhere(clf, r.ciphertext.pixels)
    assert set(labels.values()) == {r.target}, labels
    assert r.unchecked == ()


def test_robust_set_field_is_authenticated(svhn, grid, tmp_path):
    key = SecretKey.generate()
    r = ExactScheme(svhn, robust_set="resizers-v1").encrypt(grid[:1], key)[0]
    assert r.ciphertext.robust_set == "resizers-v1"
    path = r.ciphertext.save(tmp_path / "c.png")
    ct = read_ciphertext(path)
    ct.verify(key)
    assert ct.robust_set == "resizers-v1"
    ct.robust_set = DEFAULT_ROBUST_SET  # what a server would claim to make the file look more robust
    with pytest.raises(AuthenticationError):
        ct.verify(key)
    ct.robust_set = ""  # or that it has none
    with pytest.raises(AuthenticationError):
        ct.verify(key)
    img = Image.open(path)
    texts = dict(img.text)
    for bad in ("Serving V1", "../x", ""):  # not a canonical name: refused before the tag is checked
        texts["ric:robust-set"] = bad
        buf = io.BytesIO()
        from PIL import PngImagePlugin

        info = PngImagePlugin.PngInfo()
        for k, v in texts.items():
            info.add_text(k, v)
        img.save(buf, "PNG", pnginfo=info)
        (tmp_path / "bad.png").write_bytes(buf.getvalue())
        with pytest.raises(CiphertextError, match="robust-set"):
            read_ciphertext(tmp_path / "bad.png")


def test_without_a_set_the_field_is_absent_and_nothing_is_verified(svhn, grid, monkeypatch):
    import ric.schemes.exact as ex

    monkeypatch.setattr(ex, "verify", lambda *a, **k: pytest.fail("verify called without a robustness set"))
    r = ExactScheme(svhn, robust_set=None).encrypt(grid[:1], SecretKey.generate())[0]
    assert r.ciphertext is not None and r.ciphertext.robust_set == ""
    assert "ric:robust-set" not in r.ciphertext.text_chunks()


def test_a_ciphertext_that_never_verifies_is_reported_not_written(svhn, grid, tmp_path, monkeypatch):
    import ric.schemes.exact as ex
    from ric.stacks.robust import Verdict

    def reject(clf, x, target, stacks=None, min_margin=0.0, pixels=None):
        n = len(x)
        return Verdict(torch.zeros(n, dtype=torch.bool), torch.full((n,), -1.0),
                       {"opencv-linear": torch.full((n,), -1.0)}, [])
    monkeypatch.setattr(ex, "verify", reject)
    write_png(tmp_path / "in" / "a.png", grid[0])
    rows = encrypt_files([tmp_path / "in"], tmp_path / "ct", SecretKey.generate(), classifier="svhn-cnn7",
                         max_retries=1)
    assert rows[0]["status"] == "failed" and rows[0]["attempts"] == 2
    assert "opencv-linear" in rows[0]["error"]
    assert not (tmp_path / "ct" / "a.png").exists()


def test_missing_libraries_are_named_not_pretended(svhn, grid, tmp_path, monkeypatch, capsys):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "cv2" else real(n, *a))
    r = ExactScheme(svhn).encrypt(grid[:1], SecretKey.generate())[0]
    assert r.ciphertext is not None
    assert set(r.unchecked) == {n for n in STACKS if n.startswith("opencv-")}
    write_png(tmp_path / "in" / "a.png", grid[0])
    assert main(["keygen", "-o", str(tmp_path / "k")]) == 0
    capsys.readouterr()
    assert main(["encrypt", str(tmp_path / "in"), "-o", str(tmp_path / "ct"), "-k", str(tmp_path / "k"),
                 "--json"]) == 0
    out = capsys.readouterr()
    assert sorted(json.loads(out.out)["items"][0]["unchecked_stacks"]) == sorted(r.unchecked)
    assert "not checked on serving stack(s) opencv-area" in out.err


def test_robust_set_option_errors_are_one_line(tmp_path, capsys):
    write_png(tmp_path / "in" / "a.png", np.zeros((32, 32, 3), np.uint8))
    assert main(["keygen", "-o", str(tmp_path / "k")]) == 0
    base = ["encrypt", str(tmp_path / "in"), "-o", str(tmp_path / "ct"), "-k", str(tmp_path / "k")]
    for extra, msg in ((["--robust-set", "bogus"], "unknown robustness set 'bogus'"),
                       (["--robust-set", "none", "--scheme", "paper"], "belongs to the exact scheme")):
        capsys.readouterr()
        assert main(base + extra) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and msg in err[0], err
    assert not (tmp_path / "ct").exists()
    with pytest.raises(UnknownNameError):
        ExactScheme(robust_set="bogus")


def test_serve_stack(tmp_path, capsys, svhn, grid):
    pytest.importorskip("fastapi")
    from ric.service.app import create_app
    from ric.service.batcher import Batcher

    capsys.readouterr()
    assert main(["serve", "--store", str(tmp_path / "s"), "--stack", "bogus"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown stack 'bogus'" in err[0], err
    assert not (tmp_path / "s").exists()  # refused before the store is made or a classifier loaded
    with pytest.raises(UnknownNameError):
        create_app(tmp_path / "s", classifiers=[svhn], stack="nope")
    app = create_app(tmp_path / "s2", classifiers=[svhn], stack="crop-1.15")
    assert app.state.stack == "crop-1.15"
    app.state.batcher.close()
    app.state.store.close()
    b = Batcher(max_batch=4, max_wait=0, stack=STACKS["crop-1.15"])
    try:
        want = [int(STACKS["crop-1.15"].predict(svhn, to_tensor(a))[0]) for a in grid]
        assert [b.submit(svhn, np.ascontiguousarray(a)).result(30) for a in grid] == want
    finally:
        b.close()


def test_serve_stack_needs_its_library(tmp_path, svhn, monkeypatch):
    pytest.importorskip("fastapi")
    from ric.service.app import create_app

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "onnxruntime" else real(n, *a))
    with pytest.raises(InputError, match="ric\\[stacks\\]"):
        create_app(tmp_path / "s", classifiers=[svhn], stack="onnxruntime")
