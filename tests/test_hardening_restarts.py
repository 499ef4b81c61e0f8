"""Restarts and outputs cannot destroy data: encrypt resumes only outputs of the same input, decrypt only outputs
that check out, no output may be an input, the demo keeps an existing key; an existing output that no job under the
key made is refused, naming it, before anything is written, unless ``force``."""

import os
import shutil
from dataclasses import replace

import pytest

from ric import api
from ric.api import decrypt_files, encrypt_files, sample_images
from ric.cli import main
from ric.container import read_ciphertext
from ric.errors import InputError
from ric.keys import SecretKey
from tests.conftest import write_rgb


@pytest.fixture(scope="module")
def enc(tmp_path_factory, tiny_ric, key):
    """Three sample images encrypted and decrypted once with the fast tiny model."""
    d = tmp_path_factory.mktemp("restart")
    files, _ = sample_images()
    (d / "in").mkdir()
    for name, f in zip("abc", files[1:4], strict=True):
        shutil.copy(f, d / "in" / f"{name}.png")
    rows = encrypt_files([d / "in"], d / "ct", key, ric=tiny_ric)
    assert [r["status"] for r in rows] == ["encrypted"] * 3, rows
    rows = decrypt_files([d / "ct"], d / "rec", key, ric=tiny_ric)
    assert [r["status"] for r in rows] == ["decrypted"] * 3
    return d


def _copy(enc, tmp_path, *names):
    for n in names:
        shutil.copytree(enc / n, tmp_path / n)


def test_encrypt_resume_skips_only_outputs_of_the_same_input(enc, tmp_path, tiny_ric, key):
    _copy(enc, tmp_path, "in", "ct")
    rows = encrypt_files([tmp_path / "in"], tmp_path / "ct", key, ric=tiny_ric)
    assert [r["status"] for r in rows] == ["skipped"] * 3
    assert all(read_ciphertext(f).plain_mac for f in (tmp_path / "ct").iterdir())
    # b.png is now another image; c.png's ciphertext comes from a version without ric:plain-mac
    shutil.copy(sample_images()[0][5], tmp_path / "in" / "b.png")
    old_b = (tmp_path / "ct" / "b.png").read_bytes()
    c = read_ciphertext(tmp_path / "ct" / "c.png")
    replace(c, plain_mac="").sign(key).save(tmp_path / "ct" / "c.png")
    rows = encrypt_files([tmp_path / "in"], tmp_path / "ct", key, ric=tiny_ric)
    status = {os.path.basename(r["input"]): r["status"] for r in rows}
    assert status["a.png"] == "skipped" and status["b.png"] != "skipped" and status["c.png"] != "skipped"
    if status["b.png"] == "encrypted":  # "failed" (reported) is possible with the untrained tiny codec
        assert (tmp_path / "ct" / "b.png").read_bytes() != old_b
    if status["c.png"] == "encrypted":
        assert read_ciphertext(tmp_path / "ct" / "c.png").plain_mac


def test_two_encryptions_of_one_image_are_not_linkable(enc, tmp_path, tiny_ric, key):
    _copy(enc, tmp_path, "in")
    rows = encrypt_files([tmp_path / "in" / "a.png"], tmp_path / "ct2", key, ric=tiny_ric)
    assert rows[0]["status"] == "encrypted"
    first, second = read_ciphertext(enc / "ct" / "a.png"), read_ciphertext(tmp_path / "ct2" / "a.png")
    assert first.nonce != second.nonce and first.plain_mac != second.plain_mac


def test_outputs_may_not_overwrite_inputs(enc, tmp_path, capsys):
    _copy(enc, tmp_path, "in", "ct")
    main(["keygen", "-o", str(tmp_path / "k")])
    before = {p: p.read_bytes() for d in ("in", "ct") for p in (tmp_path / d).iterdir()}
    (tmp_path / "linked").mkdir()
    os.link(tmp_path / "in" / "b.png", tmp_path / "linked" / "b.png")
    capsys.readouterr()
    for argv in (["encrypt", str(tmp_path / "in"), "-o", str(tmp_path / "in")],
                 ["encrypt", str(tmp_path / "in" / "a.png"), "-o", str(tmp_path / "in" / ".." / "in")],
                 ["encrypt", str(tmp_path / "in"), "-o", str(tmp_path / "linked")],
                 ["decrypt", str(tmp_path / "ct"), "-o", str(tmp_path / "ct")]):
        assert main([*argv, "-k", str(tmp_path / "k")]) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "would overwrite an input file" in err[0], err
    assert {p: p.read_bytes() for p in before} == before


def test_decrypt_resume_skips_only_outputs_that_check_out(enc, tmp_path, tiny_ric, key):
    _copy(enc, tmp_path, "ct", "rec")
    good = {p.name: p.read_bytes() for p in (tmp_path / "rec").iterdir()}
    rows = decrypt_files([tmp_path / "ct"], tmp_path / "rec", key, ric=tiny_ric)
    assert [r["status"] for r in rows] == ["skipped"] * 3
    shutil.copy(tmp_path / "rec" / "c.png", tmp_path / "rec" / "b.png")  # another ciphertext's recovery: redone
    rows = decrypt_files([tmp_path / "ct"], tmp_path / "rec", key, ric=tiny_ric)
    assert [r["status"] for r in rows] == ["skipped", "decrypted", "skipped"]
    write_rgb(tmp_path / "rec" / "a.png", seed=9)  # a stray image of the right size: not ours, refused
    stray = (tmp_path / "rec" / "a.png").read_bytes()
    shutil.copy(tmp_path / "rec" / "c.png", tmp_path / "rec" / "b.png")
    with pytest.raises(InputError, match=r"rec/a.png exists and is not an image recovered under this key") as e:
        decrypt_files([tmp_path / "ct"], tmp_path / "rec", key, ric=tiny_ric)
    assert e.value.exit_code == 2
    assert (tmp_path / "rec" / "a.png").read_bytes() == stray  # nothing written, b.png not redone either
    assert (tmp_path / "rec" / "b.png").read_bytes() == good["c.png"]
    rows = decrypt_files([tmp_path / "ct"], tmp_path / "rec", key, ric=tiny_ric, force=True)
    assert [r["status"] for r in rows] == ["decrypted", "decrypted", "skipped"]
    assert {p.name: p.read_bytes() for p in (tmp_path / "rec").iterdir()} == good
    # outputs made with another key are not provably ours either: refused, then replaced with force
    other = SecretKey.generate()
    decrypt_files([tmp_path / "ct"], tmp_path / "rec2", other, ric=tiny_ric, verify=False)
    with pytest.raises(InputError, match="refusing to overwrite"):
        decrypt_files([tmp_path / "ct"], tmp_path / "rec2", key, ric=tiny_ric)
    rows = decrypt_files([tmp_path / "ct"], tmp_path / "rec2", key, ric=tiny_ric, force=True)
    assert [r["status"] for r in rows] == ["decrypted"] * 3


class _Stop(Exception):
    pass


def test_demo_keeps_an_existing_key(tmp_path, monkeypatch):
    seen = []

    def stop(files, out, key, **kw):
        seen.append(key)
        raise _Stop

    monkeypatch.setattr(api, "encrypt_files", stop)
    old = SecretKey.generate()
    old.save(tmp_path / "secret.key")
    text = (tmp_path / "secret.key").read_bytes()
    with pytest.raises(_Stop):
        api.demo(tmp_path)
    assert seen == [old] and (tmp_path / "secret.key").read_bytes() == text  # reused, not replaced
    (tmp_path / "secret.key").write_text("my notes, not a key\n")
    with pytest.raises(InputError, match="refusing to overwrite"):
        api.demo(tmp_path)
    assert (tmp_path / "secret.key").read_text() == "my notes, not a key\n"
    with pytest.raises(_Stop):
        api.demo(tmp_path / "fresh")
    assert SecretKey.load(tmp_path / "fresh" / "secret.key") == seen[-1]


def test_decrypt_refuses_to_replace_the_originals(enc, tmp_path, tiny_ric, key):
    """Decrypting paper-scheme files into the folder of the originals would replace them with lossy
    reconstructions: refused, naming the first one, nothing written (the CLI side: tests/test_cli.py)."""
    _copy(enc, tmp_path, "in", "ct")
    before = {p.name: p.read_bytes() for p in (tmp_path / "in").iterdir()}
    with pytest.raises(InputError, match=r"in/a.png exists and is not an image recovered") as e:
        decrypt_files([tmp_path / "ct"], tmp_path / "in", key, ric=tiny_ric)
    assert e.value.exit_code == 2
    assert {p.name: p.read_bytes() for p in (tmp_path / "in").iterdir()} == before


def test_encrypt_refuses_unrelated_files_and_other_keys_ciphertexts(enc, tmp_path, tiny_ric, key):
    _copy(enc, tmp_path, "in", "ct")
    write_rgb(tmp_path / "ct" / "b.png", seed=3)  # the user's own photo.png, say
    mine = (tmp_path / "ct" / "b.png").read_bytes()
    (tmp_path / "ct" / "a.png").unlink()
    with pytest.raises(InputError, match=r"ct/b.png exists and is not a RIC ciphertext that verifies") as e:
        encrypt_files([tmp_path / "in"], tmp_path / "ct", key, ric=tiny_ric)
    assert e.value.exit_code == 2
    assert (tmp_path / "ct" / "b.png").read_bytes() == mine and not (tmp_path / "ct" / "a.png").exists()
    # a ciphertext under another key: no job under this key made it
    other = SecretKey.generate()
    read_ciphertext(enc / "ct" / "b.png").sign(other).save(tmp_path / "ct" / "b.png")
    with pytest.raises(InputError, match="refusing to overwrite"):
        encrypt_files([tmp_path / "in"], tmp_path / "ct", key, ric=tiny_ric)
    rows = encrypt_files([tmp_path / "in"], tmp_path / "ct", key, ric=tiny_ric, force=True)
    assert [r["status"] for r in rows][2] == "skipped" and rows[1]["status"] in ("encrypted", "failed")
    if rows[1]["status"] == "encrypted":  # "failed" (reported) is possible with the untrained tiny codec
        read_ciphertext(tmp_path / "ct" / "b.png").verify(key)
