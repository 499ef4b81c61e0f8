"""ric export: every shipped classifier as ONNX, with the same labels in ONNX Runtime as in torch."""

import json

import numpy as np
import pytest
import torch

from ric.classifiers import load_classifier
from ric.cli import main
from ric.datasets import load_dataset
from ric.stacks import get_stack
from ric.zoo.bundles import DATASET_CLASSIFIERS

pytest.importorskip("onnxruntime")
SHIPPED = {**{c: d for d, c in DATASET_CLASSIFIERS.items()}, "faces-resnet18": "faces"}


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_onnxruntime_labels_equal_torch(name, data_root, tmp_path):
    import onnxruntime as ort

    clf = load_classifier(name)
    ds = load_dataset(SHIPPED[name], "test", data_root).with_channels(clf.input_shape[0])
    x = torch.from_numpy(ds.images[:3]).permute(0, 3, 1, 2).float() / 255
    assert main(["export", name, "--onnx", str(tmp_path / "m.onnx")]) == 0
    sess = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    z = sess.run(None, {"image": x.numpy()})[0]
    ref = clf(x)
    assert np.array_equal(z.argmax(1), ref.argmax(1).numpy())
    assert np.abs(z - ref.numpy()).max() < 1e-3  # the same function, not only the same labels
    side = json.loads((tmp_path / "m.json").read_text())
    assert side["classifier"] == clf.ident and side["input"]["shape"] == ["batch", *clf.input_shape]
    assert side["preprocess"] == clf.preprocess.config()
    # a photo-sized input: the declared resize in torch, then the exported network
    big = torch.nn.functional.interpolate(x[:1], scale_factor=1.7, mode="bicubic").clamp(0, 1)
    big = (big * 255).round() / 255
    assert torch.equal(get_stack("onnxruntime").predict(clf, big), clf.predict(big))


def test_export_refuses_to_overwrite(tmp_path, capsys):
    out = tmp_path / "m.onnx"
    out.write_bytes(b"keep")
    capsys.readouterr()
    assert main(["export", "mnist-cnn5", "--onnx", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--force" in err[0] and out.read_bytes() == b"keep"
    assert main(["export", "mnist-cnn5", "--onnx", str(out), "--force"]) == 0
    assert out.stat().st_size > 1000 and (tmp_path / "m.json").is_file()


def test_export_errors_are_one_line(tmp_path, capsys, monkeypatch):
    capsys.readouterr()
    assert main(["export", "no-such-classifier", "--onnx", str(tmp_path / "a.onnx")]) == 2
    assert "unknown classifier" in capsys.readouterr().err
    assert main(["export", "mnist-cnn5", "--onnx", str(tmp_path / "a.json")]) == 2
    assert ".json" in capsys.readouterr().err
    import builtins

    real = builtins.__import__

    def no_onnx(name, *a, **k):
        if name.split(".")[0] in ("onnx", "onnxruntime"):
            raise ImportError(name)
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_onnx)
    assert main(["export", "mnist-cnn5", "--onnx", str(tmp_path / "b.onnx")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install 'ric[stacks]'" in err[0]
    assert not list(tmp_path.iterdir())
