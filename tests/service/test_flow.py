"""The three-party flow of the README in six commands (keygen, encrypt, serve, push, pull, decrypt) against a real
uvicorn process on a free local port: the recovered images are bit-exact."""

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
pytest.importorskip("httpx")

from ric.api import classify_files, sample_images  # noqa: E402
from ric.cli import main  # noqa: E402
from ric.imageio import read_image  # noqa: E402
from ric.service.local import free_port, start, stop  # noqa: E402


@pytest.mark.slow
def test_six_commands_against_a_real_server(tmp_path, capsys):
    files, _ = sample_images()
    plain = tmp_path / "photos"
    plain.mkdir()
    for f in files[:5]:
        (plain / f.name).write_bytes(f.read_bytes())
    assert main(["serve", "token", "add", "owner", "--store", str(tmp_path / "store")]) == 0
    (tmp_path / "owner.token").write_text(capsys.readouterr().out.strip().splitlines()[-1] + "\n")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cloud = ["--url", url, "--token-file", str(tmp_path / "owner.token")]

    assert main(["keygen", "-o", str(tmp_path / "secret.key")]) == 0                                    # 1
    assert main(["encrypt", str(plain), "-o", str(tmp_path / "ct"), "-k", str(tmp_path / "secret.key"), "-q"]) == 0  # 2
    proc = start(tmp_path / "store", port, log=tmp_path / "serve.log")  # 3
    try:
        assert main(["push", str(tmp_path / "ct"), *cloud]) == 0                                       # 4
        assert main(["pull", *cloud, "-o", str(tmp_path / "pulled")]) == 0                             # 5
        capsys.readouterr()
        assert main(["classify", str(tmp_path / "ct"), *cloud, "--json"]) == 0
        remote = capsys.readouterr().out
    finally:
        stop(proc)
    assert main(["decrypt", str(tmp_path / "pulled"), "-o", str(tmp_path / "rec"), "-k",               # 6
                 str(tmp_path / "secret.key"), "-q"]) == 0

    for f in plain.iterdir():
        assert (tmp_path / "pulled" / f.name).read_bytes() == (tmp_path / "ct" / f.name).read_bytes()
        assert np.array_equal(read_image(tmp_path / "rec" / f.name), read_image(f))  # bit-exact recovery
    local = {r["input"]: r["label"] for r in classify_files([tmp_path / "ct"])}
    assert {r["input"]: r["label"] for r in json.loads(remote)["items"]} == local
    assert proc.returncode is not None


@pytest.mark.slow
def test_the_cloud_learns_labels_not_file_names(tmp_path, capsys, data_root):
    from PIL import Image

    imgs = np.load(data_root / "cifar10/cifar10_test.npz")["images"]
    plain = tmp_path / "phone"
    plain.mkdir()
    names = ["IMG_2024_biopsy.jpg", "Anna_Schmidt_passport.png", "clinic-visit-2026-03-14.webp"]
    for i, n in enumerate(names):
        Image.fromarray(imgs[i]).resize((160 + 40 * i, 120 + 30 * i)).save(plain / n, quality=90)
    store, key = tmp_path / "store", tmp_path / "secret.key"
    assert main(["serve", "token", "add", "owner", "--store", str(store), "--out", str(tmp_path / "t")]) == 0
    port = free_port()
    cloud = ["--url", f"http://127.0.0.1:{port}", "--token-file", str(tmp_path / "t")]
    assert main(["keygen", "-o", str(key)]) == 0
    enc = ["encrypt", str(plain), "-o", str(tmp_path / "ct"), "-k", str(key), "-c", "cifar10-resnet18", "-q"]
    assert main(enc) == 0
    proc = start(store, port, "--classifier", "cifar10-resnet18", log=tmp_path / "serve.log")
    try:
        assert main(["push", str(tmp_path / "ct"), *cloud]) == 0
        capsys.readouterr()
        assert main(["pull", *cloud, "-o", str(tmp_path / "pulled"), "--json"]) == 0
        listing = capsys.readouterr().out
        import httpx

        page = httpx.get(f"http://127.0.0.1:{port}/").text
    finally:
        stop(proc)
    assert main(["decrypt", str(tmp_path / "pulled"), "-o", str(tmp_path / "rec"), "-k", str(key), "-q"]) == 0
    seen = [listing, page, (tmp_path / "serve.log").read_text(errors="replace")]
    seen += [p.read_bytes().decode("latin-1") for p in store.rglob("*") if p.is_file()]
    seen += [p.name for p in store.rglob("*")] + [p.name for p in (tmp_path / "pulled").iterdir()]
    for n in names:  # neither the name nor its stem, anywhere the cloud keeps or shows things
        assert not any(Path(n).stem in s for s in seen), n
    for n in names:  # the real names come back after decryption, with the user's bytes
        assert (tmp_path / "rec" / n).read_bytes() == (plain / n).read_bytes()
