"""The three-party flow of the README in six commands (keygen, encrypt, serve, push, pull, decrypt) against a real
uvicorn process on a free local port: the recovered images are bit-exact."""

import json

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
