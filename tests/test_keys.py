import os
import stat
import subprocess
import sys

import numpy as np
import pytest
import torch

from ric.errors import InputError, KeyFileError
from ric.keys import SecretKey, new_nonce, random_noise_image


def test_known_answer(key):
    # ChaCha20 keystream under HKDF(key, "ric/rni" || nonce): fixed forever (format RIC-1)
    z = random_noise_image(key, bytes(16), (3, 2, 2)).flatten()[:6].tolist()
    assert z == pytest.approx([0.5626621246337891, 0.7889258861541748, 0.9227645993232727,
                               0.9823501706123352, 0.9247052669525146, 0.10262984037399292], abs=0)
    assert key.key_id == "e231345d196cbe55"


def test_rni_range_and_distribution(key):
    z = random_noise_image(key, new_nonce(), (3, 64, 64))
    assert z.dtype.is_floating_point and z.min() >= 0 and z.max() < 1
    assert abs(z.mean().item() - 0.5) < 0.01 and abs(z.var().item() - 1 / 12) < 0.005
    # values sit on the 2**-24 grid, so they are exact float32 everywhere
    assert np.all((z.numpy() * 2**24) == np.round(z.numpy() * 2**24))


def test_rni_depends_on_key_and_nonce(key):
    n = new_nonce()
    a = random_noise_image(key, n, (3, 8, 8))
    assert (a == random_noise_image(key, n, (3, 8, 8))).all()
    assert not (a == random_noise_image(key, new_nonce(), (3, 8, 8))).all()
    assert not (a == random_noise_image(key.flip_bit(0), n, (3, 8, 8))).all()
    assert new_nonce() != new_nonce() and len(new_nonce()) == 16


def test_rni_identical_in_another_process(key):
    code = ("from ric.keys import SecretKey, random_noise_image;"
            "print(random_noise_image(SecretKey(bytes(range(32))), bytes(range(16)), (3,4,4)).sum().item())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert float(out) == random_noise_image(key, bytes(range(16)), (3, 4, 4)).sum().item()


def test_key_file_roundtrip(tmp_path):
    k = SecretKey.generate()
    p = k.save(tmp_path / "k.key")
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o600
    assert SecretKey.load(p) == k
    assert "ric-key" not in repr(k) and k.raw.hex() not in repr(k)
    with pytest.raises(InputError, match="refusing to overwrite"):
        SecretKey.generate().save(p)
    SecretKey.generate().save(p, force=True)
    assert SecretKey.load(p) != k


@pytest.mark.parametrize("content,msg", [("hello", "not a RIC key"), ("ric-key-v1:zz", "not valid hex"),
                                         ("ric-key-v1:abcd", "16 bits")])
def test_bad_key_files(tmp_path, content, msg):
    p = tmp_path / "bad.key"
    p.write_text(content)
    with pytest.raises(KeyFileError, match=msg):
        SecretKey.load(p)
    with pytest.raises(KeyFileError, match="not found"):
        SecretKey.load(tmp_path / "missing.key")


def test_scramble_permutation(key):
    from ric.keys import scramble_permutation

    n = new_nonce()
    p = scramble_permutation(key, n, 3 * 32 * 32)
    assert sorted(p.tolist()) == list(range(3 * 32 * 32))  # a permutation
    assert (p == scramble_permutation(key, n, 3 * 32 * 32)).all()
    assert not (p == scramble_permutation(key, new_nonce(), 3 * 32 * 32)).all()
    assert not (p == scramble_permutation(key.flip_bit(5), n, 3 * 32 * 32)).all()
    assert (p != torch.arange(len(p))).float().mean() > 0.99  # moves almost everything
    code = ("from ric.keys import SecretKey, scramble_permutation;"
            "print(scramble_permutation(SecretKey(bytes(range(32))), bytes(range(16)), 100).tolist())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == str(scramble_permutation(key, bytes(range(16)), 100).tolist())


# ---------------------------------------------------------------- race-free keys, warnings
def test_key_creation_never_clobbers_a_file_created_meanwhile(tmp_path, monkeypatch):
    """The existence check and the write are one atomic step: a file that appears between a check and the
    write (simulated: exists() says no) is not overwritten."""
    from pathlib import Path

    p = tmp_path / "k.key"
    p.write_text("someone else's file\n")
    with monkeypatch.context() as m:
        m.setattr(Path, "exists", lambda self: False)
        m.setattr(os.path, "exists", lambda path: False)
        with pytest.raises(InputError, match="refusing to overwrite"):
            SecretKey.generate().save(p)
    assert p.read_text() == "someone else's file\n"
    assert [q.name for q in tmp_path.iterdir()] == ["k.key"]  # no temporary file left behind
    k = SecretKey.generate()
    k.save(p, force=True)  # --force replaces atomically, with mode 0600
    assert SecretKey.load(p) == k and stat.S_IMODE(os.stat(p).st_mode) == 0o600


def test_key_creation_without_hard_links(tmp_path, monkeypatch):
    def no_links(*a, **k):
        raise PermissionError("no hard links on this file system")

    monkeypatch.setattr(os, "link", no_links)
    k = SecretKey.generate()
    p = k.save(tmp_path / "k.key")
    assert SecretKey.load(p) == k and stat.S_IMODE(os.stat(p).st_mode) == 0o600
    with pytest.raises(InputError, match="refusing to overwrite"):
        SecretKey.generate().save(p)
    assert SecretKey.load(p) == k


def test_exposed_key_file_warns(tmp_path, capsys):
    import warnings

    from ric.cli import main
    from ric.errors import KeyPermissionWarning

    p = SecretKey.generate().save(tmp_path / "k.key")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        SecretKey.load(p)  # 0600: silent
    os.chmod(p, 0o644)
    with pytest.warns(KeyPermissionWarning, match="group or others.*chmod 600"):
        SecretKey.load(p)
    capsys.readouterr()
    rc = main(["decrypt", str(tmp_path / "none"), "-o", str(tmp_path / "rec"), "-k", str(p)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err[0].startswith("ric decrypt: warning: key file") and "error:" in err[1], err
