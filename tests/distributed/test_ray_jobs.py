"""The batch verbs on a local Ray cluster (``--ray``, :mod:`ric.distributed.ray_jobs`): the local job's rows,
restart rules, failures and exit codes. Skipped when Ray is not installed (``pip install 'ric[distributed]'``)."""

import json
import os
import shutil
import sys

import numpy as np
import pytest

from ric.api import sample_images
from ric.cli import main
from ric.imageio import read_image

from ..conftest import write_rgb


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield ray
    ray.shutdown()


@pytest.fixture()
def job(tmp_path, capsys):
    files = sample_images()[0][:6]
    src = tmp_path / "in"
    src.mkdir()
    for f in files:
        shutil.copy(f, src)
    assert main(["keygen", "-o", str(tmp_path / "k.key")]) == 0
    capsys.readouterr()

    def run(*argv, rc=0):
        """The job's --json output; its stderr when it stops with an error."""
        assert main([*argv, "--json"]) == rc
        out = capsys.readouterr()
        return json.loads(out.out) if rc in (0, 1) else out.err

    return tmp_path, src, str(tmp_path / "k.key"), run


def _stamps(folder):
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in folder.glob("*.png")}


@pytest.mark.slow
def test_encrypt_classify_decrypt_and_restart(ray_cluster, job):
    d, src, key, run = job
    enc = run("encrypt", str(src), "-o", str(d / "ct"), "-k", key, "--ray", "--workers", "2")
    assert enc["summary"] == {"encrypted": 6, "skipped": 0, "failed": 0}
    names = sorted(p.name for p in src.iterdir())
    assert [os.path.basename(r["input"]) for r in enc["items"]] == names  # rows in input order, paths as given
    assert enc["items"][0]["input"] == str(src / names[0]) and enc["items"][0]["output"] == str(d / "ct" / names[0])
    plain = run("classify", str(src), "-c", "svhn-cnn7")["items"]  # local, for comparison
    cloud = run("classify", str(d / "ct"), "--ray")["items"]  # the classifier the ciphertexts name, on Ray
    assert [r["label"] for r in cloud] == [r["label"] for r in plain]
    dec = run("decrypt", str(d / "ct"), "-o", str(d / "rec"), "-k", key, "--ray", "--workers", "2")
    assert dec["summary"] == {"decrypted": 6, "skipped": 0}
    for n in names:
        assert np.array_equal(read_image(src / n), read_image(d / "rec" / n))  # bit-exact

    # restart: one output lost; only that one is redone, the others are not touched
    (d / "ct" / names[2]).unlink()
    before = _stamps(d / "ct")
    enc = run("encrypt", str(src), "-o", str(d / "ct"), "-k", key, "--ray", "--workers", "2")
    assert enc["summary"] == {"encrypted": 1, "skipped": 5, "failed": 0}
    assert [r["status"] == "encrypted" for r in enc["items"]] == [n == names[2] for n in names]
    after = _stamps(d / "ct")
    assert {n: after[n] for n in before} == before
    (d / "rec" / names[4]).unlink()
    dec = run("decrypt", str(d / "ct"), "-o", str(d / "rec"), "-k", key, "--ray", "--workers", "2")
    assert dec["summary"] == {"decrypted": 2, "skipped": 4}  # names[4], and names[2] (a new ciphertext)
    assert {r["input"].rsplit("/", 1)[1] for r in dec["items"] if r["status"] == "decrypted"} == {names[2], names[4]}
    for n in names:
        assert np.array_equal(read_image(src / n), read_image(d / "rec" / n))


@pytest.mark.slow
def test_failures_and_exit_codes(ray_cluster, job):
    d, src, key, run = job
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    err = run("encrypt", str(src), "-o", str(d / "ct"), "-k", key, "--ray", rc=2)  # bad input: found by the scan
    assert "broken.png" in err
    assert not (d / "ct").exists()  # ... before anything was written
    (src / "broken.png").unlink()
    write_rgb(src / "noise.png", seed=3)  # incompressible: does not fit 3 low bits per sub-pixel
    enc = run("encrypt", str(src), "-o", str(d / "ct"), "-k", key, "--bits", "3", "--ray", rc=1)
    failed = [r for r in enc["items"] if r["status"] == "failed"]
    assert [os.path.basename(r["input"]) for r in failed] == ["noise.png"] and "bits" in failed[0]["error"]
    assert enc["summary"]["encrypted"] == 6 and not (d / "ct" / "noise.png").exists()
    assert main(["keygen", "-o", str(d / "other.key")]) == 0
    err = run("decrypt", str(d / "ct"), "-o", str(d / "rec"), "-k", str(d / "other.key"), "--ray", rc=3)
    assert "wrong key" in err and not (d / "rec").exists()
    err = run("classify", str(src), "--ray", rc=2)  # plaintexts name no classifier: pass -c, as locally
    assert "pass --classifier" in err


@pytest.mark.slow
def test_outputs_the_job_did_not_make_are_refused(ray_cluster, job):
    """On Ray, the workers' scan refuses an existing file that no job under the key made, before
    anything is written; --force travels to the workers."""
    d, src, key, run = job
    names = sorted(p.name for p in src.iterdir())
    (d / "ct").mkdir()
    write_rgb(d / "ct" / names[3], seed=4)  # one's own photo in the output folder
    err = run("encrypt", str(src), "-o", str(d / "ct"), "-k", key, "--ray", "--workers", "2", rc=2)
    assert f"ct/{names[3]} exists" in err and "--force" in err
    assert [p.name for p in (d / "ct").iterdir()] == [names[3]]
    enc = run("encrypt", str(src), "-o", str(d / "ct"), "-k", key, "--ray", "--workers", "2", "--force")
    assert enc["summary"] == {"encrypted": 6, "skipped": 0, "failed": 0}
    before = {n: (src / n).read_bytes() for n in names}
    err = run("decrypt", str(d / "ct"), "-o", str(src), "-k", key, "--ray", "--workers", "2", rc=2)  # the originals
    assert "refusing to overwrite" in err and {n: (src / n).read_bytes() for n in names} == before
    dec = run("decrypt", str(d / "ct"), "-o", str(src), "-k", key, "--ray", "--workers", "2", "--force")
    assert dec["summary"] == {"decrypted": 6, "skipped": 0}


def test_without_ray_the_error_says_how_to_install(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    write_rgb(tmp_path / "a.png")
    assert main(["classify", str(tmp_path / "a.png"), "-c", "svhn-cnn7", "--ray"]) == 2
    assert "pip install 'ric[distributed]'" in capsys.readouterr().err
    assert main(["classify", str(tmp_path / "a.png"), "-c", "svhn-cnn7", "--workers", "0"]) == 2


@pytest.mark.slow
def test_photos_on_ray_keep_their_names_and_two_shards_never_share_an_output(ray_cluster, tmp_path, data_root,
                                                                             capsys):
    """Photo ciphertexts (opaque keyed names) and their decryptions (the sealed names) on Ray: the rows report the
    outputs actually written, the files come back byte for byte, and two ciphertexts in different shards that seal
    files of one name are refused before anything is written (a local job would write ``name (2).ext``)."""
    from PIL import Image

    imgs = np.load(data_root / "cifar10/cifar10_test.npz")["images"]
    for k, folder in enumerate(("a", "b")):
        (tmp_path / folder).mkdir()
        Image.fromarray(imgs[k]).resize((250, 250), Image.BICUBIC).save(tmp_path / folder / "IMG.png")
    assert main(["keygen", "-o", str(tmp_path / "k")]) == 0
    key = ["-k", str(tmp_path / "k"), "-q", "--json", "--workers", "2"]
    capsys.readouterr()
    for folder in ("a", "b"):
        assert main(["encrypt", str(tmp_path / folder), "-o", str(tmp_path / f"ct-{folder}"), "-c",
                     "cifar10-resnet18", "--robust-set", "none", *key]) == 0
        row = json.loads(capsys.readouterr().out)["items"][0]
        assert os.path.isfile(row["output"]) and row["output"] != str(tmp_path / f"ct-{folder}" / "IMG.png")
    assert main(["decrypt", str(tmp_path / "ct-a"), "-o", str(tmp_path / "rec"), *key]) == 0
    row = json.loads(capsys.readouterr().out)["items"][0]
    assert row["output"] == str(tmp_path / "rec" / "IMG.png")
    assert (tmp_path / "rec" / "IMG.png").read_bytes() == (tmp_path / "a" / "IMG.png").read_bytes()
    assert main(["decrypt", str(tmp_path / "ct-a"), str(tmp_path / "ct-b"), "-o", str(tmp_path / "rec2"),
                 *key]) == 2
    assert "would both be written" in capsys.readouterr().err and not (tmp_path / "rec2").exists()
