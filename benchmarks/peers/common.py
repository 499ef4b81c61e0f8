"""Shared by the peer scripts (each runs in its own venv: plain numpy / torch / safetensors, no ric).

The zoo's ``mnist-cnn5`` rebuilt in plain torch from its safetensors weights (the layer order of
``ric.classifiers.architectures.cnn5``), the first N MNIST test images, peak memory, and the JSON a peer writes.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
WEIGHTS = ROOT / "src/ric/zoo/models/mnist-cnn5/model.safetensors"
CONFIG = ROOT / "src/ric/zoo/models/mnist-cnn5/config.json"
DATA = Path(os.environ.get("RIC_PEERS_DATA", "/work/shared/data/mnist"))


def images(n: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``n`` MNIST test images (uint8 N×28×28×1) and their true labels."""
    d = np.load(DATA / "mnist_test.npz")
    return d["images"][:n], d["labels"][:n]


def to_input(a: np.ndarray) -> np.ndarray:
    """uint8 N×H×W×1 → float32 N×1×H×W, normalised as the zoo classifier does inside ((x/255 - mean) / std)."""
    cfg = json.loads(CONFIG.read_text())
    x = a.astype(np.float32).transpose(0, 3, 1, 2) / 255
    return ((x - np.float32(cfg["mean"][0])) / np.float32(cfg["std"][0])).astype(np.float32)


def cnn5(width: int = 32, pool: str = "max"):
    """The cnn5 layers (conv-BN-ReLU ×5, two 2×2 pools, global average pool, linear), BatchNorm folded into
    the convolutions (the same function; CrypTen and Concrete ML then see conv+bias). ``pool="avg"`` swaps the
    max pools for average pools (a model change, used only where a peer cannot run max pooling)."""
    from torch import nn

    w = width
    chans = [(1, w), (w, w), None, (w, 2 * w), (2 * w, 2 * w), None, (2 * w, 4 * w)]
    layers: list = []
    for c in chans:
        if c is None:
            layers.append(nn.MaxPool2d(2) if pool == "max" else nn.AvgPool2d(2))
        else:
            layers += [nn.Conv2d(c[0], c[1], 3, padding=1, bias=True), nn.ReLU()]
    # the zoo's AdaptiveAvgPool2d(1) is, on the 7×7 maps of a 28×28 input, exactly AvgPool2d(7): the plain
    # pooling op is the one both peers' ONNX importers take
    layers += [nn.AvgPool2d(7), nn.Flatten(), nn.Linear(4 * w, 10)]
    return nn.Sequential(*layers)


def load_cnn5(pool: str = "max"):
    """``mnist-cnn5`` with the zoo's weights, BatchNorm folded (eval mode)."""
    import torch
    from safetensors.torch import load_file

    sd = load_file(str(WEIGHTS))
    net = cnn5(pool=pool)
    convs = [m for m in net if isinstance(m, torch.nn.Conv2d)]
    conv_keys = [0, 3, 7, 10, 14]  # index of each conv in the zoo's nn.Sequential; its BatchNorm is the next one
    with torch.no_grad():
        for conv, k in zip(convs, conv_keys, strict=True):
            g, b = sd[f"{k + 1}.weight"], sd[f"{k + 1}.bias"]
            mu, var = sd[f"{k + 1}.running_mean"], sd[f"{k + 1}.running_var"]
            s = g / torch.sqrt(var + 1e-5)
            conv.weight.copy_(sd[f"{k}.weight"] * s.view(-1, 1, 1, 1))
            conv.bias.copy_(b - mu * s)
        net[-1].weight.copy_(sd["20.weight"])
        net[-1].bias.copy_(sd["20.bias"])
    return net.eval()


def peak_rss_mb(children: bool = False) -> float:
    """Peak resident memory of this process (or of its waited-for children), MiB."""
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    return resource.getrusage(who).ru_maxrss / 1024


def versions(*names: str) -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for n in names:
        try:
            out[n] = version(n)
        except PackageNotFoundError:
            out[n] = "not installed"
    return out


def write(path: str, rep: dict) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(path).with_suffix(".tmp")
    tmp.write_text(json.dumps(rep, indent=1))
    tmp.replace(path)
    print(json.dumps({k: v for k, v in rep.items() if k not in ("labels", "plain_labels")}, indent=1),
          file=sys.stderr)
