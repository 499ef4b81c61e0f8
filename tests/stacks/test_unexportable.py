"""A classifier whose network the ONNX exporter cannot trace (a TorchScript file): ``ric export`` says so in one
line (exit 2), and the verifier lists the ONNX Runtime stacks as unchecked instead of stopping the job."""

import json
from pathlib import Path

import pytest
import torch

from ric.classifiers import load_classifier
from ric.cli import main

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def scripted(tmp_path_factory):
    d = tmp_path_factory.mktemp("ts")
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
                              torch.nn.Linear(4 * 8 * 8, 3))
    path = d / "tiny.pt"
    torch.jit.trace(net.eval(), torch.rand(1, 3, 8, 8)).save(str(path))
    Path(str(path) + ".json").write_text(json.dumps({"name": "tiny-ts", "input_shape": [3, 8, 8], "mean": [0.5] * 3,
                                                     "std": [0.25] * 3, "class_names": ["a", "b", "c"]}))
    return path


def test_export_of_an_untraceable_network_is_one_line(scripted, tmp_path, capsys):
    capsys.readouterr()
    assert main(["export", str(scripted), "--onnx", str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot be exported to ONNX" in err and not (tmp_path / "m.onnx").exists()


def test_verify_lists_the_stacks_it_could_not_run(scripted):
    from ric.stacks import verify

    clf = load_classifier(scripted)
    v = verify(clf, torch.rand(2, 3, 8, 8), torch.tensor([0, 1]), stacks=["torch", "onnxruntime", "fp16"])
    assert v.skipped == ["onnxruntime"] and set(v.margins) == {"torch", "fp16"}
    again = verify(clf, torch.rand(1, 3, 8, 8), torch.tensor([2]), stacks=["onnxruntime"])  # not tried again
    assert again.skipped == ["onnxruntime"] and not again.margins
