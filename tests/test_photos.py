"""Photos of any size: the classifier's declared preprocessing inside the exact scheme, end to end."""

import json

import numpy as np
import pytest
from PIL import Image

from ric.cli import main
from ric.container import read_ciphertext
from ric.schemes.carrier import is_size_class
from ric.schemes.exact import FILE_VERSION, read_header

SIZES = {"a_square": (250, 250, "RGB"), "b_tall": (451, 300, "RGB"), "c_grey": (240, 320, "L")}


@pytest.fixture(scope="module")
def photos(tmp_path_factory, data_root):
    """Real CIFAR-10 test images upscaled to photo sizes (one grey), and a key."""
    d = tmp_path_factory.mktemp("photos")
    imgs = np.load(data_root / "cifar10/cifar10_test.npz")["images"]
    (d / "in").mkdir()
    for i, (name, (h, w, mode)) in enumerate(SIZES.items()):
        Image.fromarray(imgs[i]).resize((w, h), Image.BICUBIC).convert(mode).save(d / "in" / f"{name}.png")
    assert main(["keygen", "-o", str(d / "k")]) == 0
    return d


def _labels(capsys, args):
    capsys.readouterr()
    assert main(["classify", *args, "--json"]) == 0
    return {r["input"].rsplit("/", 1)[1]: r["label"] for r in json.loads(capsys.readouterr().out)["items"]}


def test_photos_travel_as_their_files_in_compact_carriers(photos, tmp_path, capsys):
    d = photos
    rc = main(["encrypt", str(d / "in"), "-o", str(tmp_path / "ct"), "-k", str(d / "k"), "-c", "cifar10-resnet18",
               "--convert", "auto", "-q"])
    assert rc == 0
    for name in SIZES:
        ct = read_ciphertext(tmp_path / "ct" / f"{name}.png")
        assert ct.scheme == "exact" and ct.pixels.shape[2] == 3 and is_size_class(ct.pixels.shape)
        assert read_header(ct.pixels).version == FILE_VERSION
        assert ct.pixels.size < 2 * (d / "in" / f"{name}.png").stat().st_size  # sized by the file, not the photo
    cloud = _labels(capsys, [str(tmp_path / "ct")])
    plain = _labels(capsys, [str(d / "in"), "-c", "cifar10-resnet18", "--convert", "auto"])
    assert cloud == plain  # the label the classifier gives the original photo
    assert main(["decrypt", str(tmp_path / "ct"), "-o", str(tmp_path / "rec"), "-k", str(d / "k"), "-q"]) == 0
    for name in SIZES:  # the user's files, byte for byte (the grey photo stays grey)
        assert (tmp_path / "rec" / f"{name}.png").read_bytes() == (d / "in" / f"{name}.png").read_bytes()


def test_paper_scheme_needs_resize(photos, tmp_path, capsys):
    d = photos
    args = ["encrypt", str(d / "in" / "a_square.png"), "-o", str(tmp_path / "ct"), "-k", str(d / "k"),
            "--scheme", "paper"]
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "--resize" in err and "250x250" in err and not (tmp_path / "ct").exists()
    assert main([*args, "--resize", "-q"]) == 0
    assert read_ciphertext(tmp_path / "ct" / "a_square.png").pixels.shape == (32, 32, 3)
    assert main(["decrypt", str(tmp_path / "ct"), "-o", str(tmp_path / "rec"), "-k", str(d / "k"), "-q"]) == 0
    assert Image.open(tmp_path / "rec" / "a_square.png").size == (32, 32)  # the resized copy, as documented


def test_scheme_flags_that_do_not_mix(photos, tmp_path, capsys):
    d = photos
    base = ["encrypt", str(d / "in"), "-o", str(tmp_path / "ct"), "-k", str(d / "k")]
    for extra, msg in ((["--scheme", "exact", "-m", "svhn-ric-v2"], "exact scheme takes"),
                       (["--scheme", "paper", "--bits", "5"], "--bits belongs"),
                       (["--resize"], "--resize belongs")):
        capsys.readouterr()
        assert main([*base, *extra]) == 2
        assert msg in capsys.readouterr().err
    assert not (tmp_path / "ct").exists()
