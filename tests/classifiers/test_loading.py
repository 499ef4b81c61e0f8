"""Bring your own classifier: TorchScript, torchvision:NAME and package.module:factory specs."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from ric.classifiers import load_classifier
from ric.cli import main
from ric.errors import InputError, UnknownNameError
from ric.eval.metrics import psnr
from ric.imageio import read_image, write_png


def _contract(clf) -> dict:
    return {"name": f"ts-{clf.name}", "input_shape": list(clf.input_shape), "mean": clf.mean.flatten().tolist(),
            "std": clf.std.flatten().tolist(), "class_names": clf.class_names}


@pytest.fixture(scope="module")
def torchscript_resnet(tmp_path_factory):
    """The zoo's CIFAR-10 ResNet-18 exported to TorchScript: an architecture svhn-ric was not trained with."""
    d = tmp_path_factory.mktemp("ts")
    clf = load_classifier("cifar10-resnet18")
    ts = torch.jit.trace(clf.net, torch.rand(1, 3, 32, 32))
    path = d / "resnet.pt"
    ts.save(str(path))
    Path(str(path) + ".json").write_text(json.dumps(_contract(clf)))
    return path, clf


def test_torchscript_matches_original(torchscript_resnet):
    path, clf = torchscript_resnet
    ts = load_classifier(path)
    x = torch.rand(4, 3, 32, 32)
    assert torch.allclose(ts(x), clf(x), atol=1e-4)
    assert ts.ident.startswith("ts-cifar10-resnet18@")


def test_torchscript_classifier_drives_the_cli(torchscript_resnet, data_root, tmp_path, capsys):
    path, _ = torchscript_resnet
    d = np.load(Path(data_root) / "cifar10/cifar10_test.npz")
    for i in range(6):
        write_png(tmp_path / "in" / f"cifar_{i}.png", d["images"][i])
    assert main(["keygen", "-o", str(tmp_path / "k")]) == 0
    capsys.readouterr()
    rc = main(["encrypt", str(tmp_path / "in"), "-o", str(tmp_path / "ct"), "-k", str(tmp_path / "k"),
               "-c", str(path), "--json", "--scheme", "paper"])
    enc = json.loads(capsys.readouterr().out)
    assert rc in (0, 1) and enc["summary"]["encrypted"] >= 4, enc  # failures are listed, never written
    done = [r for r in enc["items"] if r["status"] == "encrypted"]
    assert main(["classify", str(tmp_path / "ct"), "-c", str(path), "--json"]) == 0
    cloud = {Path(r["input"]).name: r["label"] for r in json.loads(capsys.readouterr().out)["items"]}
    assert all(cloud[Path(r["output"]).name] == r["target"] for r in done)  # C(c) = C(x)
    rc = main(["decrypt", str(tmp_path / "ct"), "-o", str(tmp_path / "rec"), "-k", str(tmp_path / "k")])
    assert rc == 2 and "encrypted for classifier 'ts-cifar10-resnet18@" in capsys.readouterr().err
    assert not (tmp_path / "rec").exists()
    rc = main(["decrypt", str(tmp_path / "ct"), "-o", str(tmp_path / "rec"), "-k", str(tmp_path / "k"),
               "-c", str(path), "-q"])
    assert rc == 0
    for r in done:
        x = torch.from_numpy(read_image(r["input"])).permute(2, 0, 1)[None].float() / 255
        xh = torch.from_numpy(read_image(tmp_path / "rec" / Path(r["output"]).name)).permute(2, 0, 1)[None]
        assert psnr(xh.float() / 255, x).item() > 25  # recovered (a wrong key gives about 6 dB)
    # the exact scheme (the default) with the same classifier: its files decrypt without it, bit-exactly
    assert main(["encrypt", str(tmp_path / "in"), "-o", str(tmp_path / "cx"), "-k", str(tmp_path / "k"),
                 "-c", str(path), "-q"]) == 0
    capsys.readouterr()
    assert main(["classify", str(tmp_path / "cx"), "-c", str(path), "--json"]) == 0
    cloud_x = {Path(r["input"]).name: r["label"] for r in json.loads(capsys.readouterr().out)["items"]}
    assert main(["classify", str(tmp_path / "in"), "-c", str(path), "--json"]) == 0
    assert cloud_x == {Path(r["input"]).name: r["label"] for r in json.loads(capsys.readouterr().out)["items"]}
    assert main(["decrypt", str(tmp_path / "cx"), "-o", str(tmp_path / "rx"), "-k", str(tmp_path / "k"), "-q"]) == 0
    for f in sorted((tmp_path / "in").iterdir()):
        assert np.array_equal(read_image(f), read_image(tmp_path / "rx" / f.name))


def test_factory_and_torchvision_specs(tmp_path):
    ref = load_classifier("svhn-cnn7")
    w = tmp_path / "cnn7.safetensors"
    save_file({k: v.contiguous() for k, v in ref.net.state_dict().items()}, str(w))
    cfg = {**_contract(ref), "weights": str(w), "factory_kwargs": {"num_classes": 10, "in_channels": 3}}
    f = load_classifier("ric.classifiers.architectures:cnn7", config=cfg)
    x = torch.rand(3, 3, 32, 32)
    assert torch.equal(f(x), ref(x)) and f.fingerprint == ref.fingerprint
    tv = load_classifier("torchvision:resnet18", config={**_contract(ref), "weights": None})
    assert tv(torch.rand(1, 3, 32, 32)).shape == (1, 10)
    with pytest.raises(UnknownNameError):
        load_classifier("torchvision:resnet9000", config=_contract(ref))
    with pytest.raises(InputError, match="do not fit"):
        load_classifier("torchvision:resnet18", config=cfg)
    with pytest.raises(InputError, match="needs a config"):
        load_classifier("ric.classifiers.architectures:cnn7")
    with pytest.raises(InputError, match="lacks"):
        load_classifier("ric.classifiers.architectures:cnn7", config={"input_shape": [3, 32, 32]})
    (tmp_path / "junk.pt").write_bytes(b"junk")
    (tmp_path / "junk.pt.json").write_text(json.dumps(_contract(ref)))
    with pytest.raises(InputError, match="not a TorchScript"):
        load_classifier(tmp_path / "junk.pt")
