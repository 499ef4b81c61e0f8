"""A scheme added in one file (``tests/schemes/toy_scheme.py``) runs through the whole product path: the API, the
CLI, restarts, the container's strict reader, and decryption, with no change anywhere else."""

import numpy as np
import pytest

from ric import api
from ric.cli import main
from ric.container import FIELD_SETS, read_ciphertext
from ric.errors import InputError
from ric.imageio import read_image
from ric.keys import SecretKey
from ric.schemes import SCHEMES, load_scheme, register_scheme
from tests.schemes.toy_scheme import XorScheme


@pytest.fixture
def xor():
    register_scheme("xor")(XorScheme)
    try:
        yield XorScheme
    finally:
        SCHEMES.pop("xor", None)
        FIELD_SETS.pop("xor", None)


def test_a_new_scheme_round_trips_through_the_api(xor, tmp_path):
    files = api.sample_images()[0][:3]
    key = SecretKey.generate()
    rows = api.encrypt_files(files, tmp_path / "ct", key, scheme="xor")
    assert [r["status"] for r in rows] == ["encrypted"] * 3
    ct = read_ciphertext(rows[0]["output"])
    assert ct.scheme_name == "xor" and ct.classifier.startswith("svhn-cnn7@")
    assert not np.array_equal(ct.pixels, read_image(files[0]))  # the pixels are masked
    again = api.encrypt_files(files, tmp_path / "ct", key, scheme="xor")  # a rerun finds its finished outputs
    assert [r["status"] for r in again] == ["skipped"] * 3
    dec = api.decrypt_files([tmp_path / "ct"], tmp_path / "rec", key)
    assert [r["scheme"] for r in dec] == ["xor"] * 3
    for f, d in zip(sorted(files, key=lambda p: p.stem), sorted(dec, key=lambda r: r["output"]), strict=True):
        assert np.array_equal(read_image(d["output"]), read_image(f))


def test_a_new_scheme_is_a_cli_choice_and_refuses_other_schemes_options(xor, tmp_path, capsys):
    files = [str(f) for f in api.sample_images()[0][:2]]
    assert main(["keygen", "-o", str(tmp_path / "k")]) == 0
    assert main(["encrypt", *files, "-o", str(tmp_path / "ct"), "-k", str(tmp_path / "k"), "--scheme", "xor",
                 "-q"]) == 0
    assert main(["decrypt", str(tmp_path / "ct"), "-o", str(tmp_path / "rec"), "-k", str(tmp_path / "k"), "-q"]) == 0
    assert len(list((tmp_path / "rec").glob("*.png"))) == 2
    with pytest.raises(InputError, match="--bits belongs to the exact scheme"):
        load_scheme("xor", bits=5)
    with pytest.raises(InputError, match="-m/--model belongs to the paper scheme; the xor scheme takes -c"):
        load_scheme("xor", model="svhn-ric-v3")


def test_without_the_scheme_its_ciphertexts_are_refused_by_name(tmp_path):
    register_scheme("xor")(XorScheme)
    try:
        rows = api.encrypt_files(api.sample_images()[0][:1], tmp_path / "ct", SecretKey.generate(), scheme="xor")
    finally:
        SCHEMES.pop("xor")
        FIELD_SETS.pop("xor")
    from ric.errors import CiphertextError

    with pytest.raises(CiphertextError, match="unknown ciphertext scheme"):
        read_ciphertext(rows[0]["output"])


def test_a_scheme_name_is_registered_once(xor):
    with pytest.raises(ValueError, match="already registered"):
        register_scheme("xor")(type("Other", (XorScheme,), {}))
    with pytest.raises(ValueError, match="already registered"):
        register_scheme("exact")(XorScheme)
