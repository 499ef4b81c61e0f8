"""A ciphertext's metadata selects only shipped classifiers and models, by name; anything else
(paths, module:factory, torchvision:) is refused with exit 2 and nothing is imported, loaded or written."""

import json
import sys

import numpy as np
import pytest

from ric.classifiers import load_classifier, load_trusted_name
from ric.cli import main
from ric.container import Ciphertext
from ric.errors import InputError
from ric.keys import SecretKey, new_nonce
from ric.zoo import bundles
from tests import _png

EVIL_MODULE = '''
from pathlib import Path
from torch import nn
MARKER = Path(__file__).with_name("RAN")

def factory(**kw):
    MARKER.write_text("code chosen by a ciphertext ran")
    return nn.Identity()

MARKER.with_name("IMPORTED").write_text("imported")
'''

CONTRACT = {"input_shape": [3, 32, 32], "mean": [0, 0, 0], "std": [1, 1, 1], "class_names": list("0123456789")}


@pytest.fixture
def evil_dir(tmp_path, monkeypatch):
    """A working folder with a module whose factory leaves a marker, a config beside every spec a file could
    name, a TorchScript-looking file and a RIC bundle folder that names the factory as its classifier."""
    (tmp_path / "ric_evil_mod.py").write_text(EVIL_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    for spec in ("ric_evil_mod:factory", "os:system", "torchvision:resnet18", "evil.pt"):
        cfg = {**CONTRACT, "factory_kwargs": {"command": "touch RAN"} if spec.startswith("os") else {}}
        (tmp_path / f"{spec}.json").write_text(json.dumps(cfg))
    (tmp_path / "evil.pt").write_bytes(b"not really torchscript")
    (tmp_path / "evil-bundle").mkdir()
    (tmp_path / "evil-bundle" / "config.json").write_text(json.dumps(
        {"name": "evil-bundle", "kind": "ric", "classifier": "ric_evil_mod:factory", "codec": {"name": "identity"},
         "alpha": 0.8, "attack": {"name": "none"}, "nae_batch": 1}))
    main(["keygen", "-o", str(tmp_path / "k.key")])
    yield tmp_path
    sys.modules.pop("ric_evil_mod", None)


def _nothing_ran(d):
    assert not (d / "RAN").exists() and not (d / "IMPORTED").exists() and "ric_evil_mod" not in sys.modules


def _write_ct(path, key, model="svhn-ric-v2", classifier="svhn-cnn7@0123456789abcdef"):
    px = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    Ciphertext(px, model, new_nonce(), 1, "", classifier=classifier).sign(key).save(path)


@pytest.mark.parametrize("spec", ["ric_evil_mod:factory", "os:system", "torchvision:resnet18", "evil.pt",
                                  "./evil.pt", "evil-bundle", "../svhn-cnn7", "svhn-cnn7/", "svhn-cnn7+rgb",
                                  "mnist-cnn5+rgb+rgb"])
def test_classify_refuses_classifiers_named_by_metadata(evil_dir, capsys, spec):
    key = SecretKey.load(evil_dir / "k.key")
    (evil_dir / "ct").mkdir()
    _write_ct(evil_dir / "ct" / "x.png", key, classifier=f"{spec}@0123456789abcdef")
    capsys.readouterr()
    assert main(["classify", str(evil_dir / "ct")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a shipped classifier" in err[0] and f"'{spec}@" in err[0], err
    _nothing_ran(evil_dir)


@pytest.mark.parametrize("model", ["evil-bundle", "evil.pt", "svhn-cnn7", "tiny"])
def test_decrypt_refuses_models_named_by_metadata(evil_dir, capsys, model):
    """Even a correctly tagged file (the key holder's own key) may not make decrypt load a bundle by path."""
    key = SecretKey.load(evil_dir / "k.key")
    (evil_dir / "ct").mkdir()
    _write_ct(evil_dir / "ct" / "x.png", key, model=model)
    capsys.readouterr()
    rc = main(["decrypt", str(evil_dir / "ct"), "-o", str(evil_dir / "rec"), "-k", str(evil_dir / "k.key")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and f"RIC model '{model}', which is not a shipped RIC model" in err[0], err
    assert not (evil_dir / "rec").exists()
    _nothing_ran(evil_dir)


def test_operator_flags_still_accept_paths_and_factories(evil_dir):
    """Paths and module:factory specs remain available to the operator (-c / -m): that is their choice."""
    clf = load_classifier("ric_evil_mod:factory")
    assert (evil_dir / "RAN").exists() and clf.name == "ric_evil_mod:factory"


def test_trusted_names(tmp_path):
    assert load_trusted_name("svhn-cnn7").ident == load_classifier("svhn-cnn7").ident
    grey = load_trusted_name("mnist-cnn5+rgb")
    assert grey.input_shape[0] == 3 and grey.ident == load_classifier("mnist-cnn5+rgb").ident
    for bad in ("svhn-cnn7+rgb", "svhn-ric", "", "svhn-cnn7@x", str(bundles.SHIPPED_DIR / "svhn-cnn7"),
                "models/svhn-cnn7", "svhn-cnn7\x00"):
        with pytest.raises(InputError):
            load_trusted_name(bad)
    assert bundles.resolve_shipped("svhn-ric-v2", "ric").name == "svhn-ric-v2"
    with pytest.raises(InputError, match="not a shipped RIC model"):
        bundles.resolve_shipped("svhn-cnn7", "ric")


def test_untrusted_text_is_quoted(tmp_path, capsys, key):
    """A classifier name with a terminal escape reaches the user only through repr."""
    (tmp_path / "ct").mkdir()
    name = "x\x1b]0;pwned\x07"
    px = np.zeros((32, 32, 3), np.uint8)
    data = Ciphertext(px, "svhn-ric-v2", new_nonce(), 1, "", classifier="svhn-cnn7@0123456789abcdef").sign(key).to_png()
    (tmp_path / "ct" / "x.png").write_bytes(_png.set_text(data, "ric:classifier", name + "@0123456789abcdef"))
    assert main(["classify", str(tmp_path / "ct")]) == 2
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\x07" not in err and "\\x1b" in err
