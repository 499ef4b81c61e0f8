"""``ric train`` under torchrun (:mod:`ric.distributed.ddp`): two gloo processes on the CPU against one process at
the same global batch, on tiny data (``ddp_train.py`` beside this file is the training run).

Tolerances. ``test-mlp`` has neither BatchNorm nor dropout, so two ranks make the same updates as one process and
only the order of floating-point sums differs (each gradient is the sum of two half-batch gradients, summed by
gloo): about 1e-7 relative per step in float32, measured 4e-8 on the epoch losses here; we allow 1e-5. ``cnn7``
normalises each rank's 8 images with their own BatchNorm statistics instead of the 16 of the global batch, and
its dropout masks are drawn per process; measured 1-6 % apart per epoch on these 50 images; we allow 15 %, which
still catches a run that trains on half the data or does not average gradients (loss stuck near ln 10 = 2.30).
The codec's training quantisation noise is drawn from each process's own generator: measured 2e-5 relative on the
epoch MSE; we allow 1e-2 (a codec trained on one rank's half alone, or with a different NAE pool, is further off)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def _train(out: Path, arch: str, epochs: int, nproc: int = 1) -> list[dict]:
    launcher = [] if nproc == 1 else ["-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}"]
    cmd = [sys.executable, *launcher, str(HERE / "ddp_train.py"), str(out), arch, str(epochs)]
    res = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=240)
    assert res.returncode == 0, res.stderr[-3000:]
    return [json.loads(line) for line in (out / "run/log.jsonl").read_text().splitlines()]


def _one_bundle(out: Path) -> None:
    assert sorted(p.name for p in (out / "bundle").iterdir()) == ["MODEL_CARD.md", "config.json", "model.safetensors"]
    assert not list((out / "run").glob("*.tmp"))


@pytest.mark.slow
def test_two_ranks_make_the_updates_of_one_process_and_resume(tmp_path):
    _train(tmp_path / "one", "test-mlp", 2)  # 2 epochs, then resumed to 4 (the schedule follows the epochs)
    one = _train(tmp_path / "one", "test-mlp", 4)
    _train(tmp_path / "two", "test-mlp", 2, nproc=2)
    two = _train(tmp_path / "two", "test-mlp", 4, nproc=2)  # resumed on both ranks from rank 0's checkpoint
    assert [r["epoch"] for r in two] == [1, 2, 3, 4]  # one log line per epoch: rank 1 writes nothing
    assert one[-1]["loss"] < one[0]["loss"] - 0.2  # it learns
    for a, b in zip(one, two, strict=True):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-5)
        assert b["test_acc"] == a["test_acc"]  # sharded evaluation, summed
    _one_bundle(tmp_path / "two")
    from safetensors.torch import load_file

    w1, w2 = load_file(tmp_path / "one/bundle/model.safetensors"), load_file(tmp_path / "two/bundle/model.safetensors")
    assert max((w1[k] - w2[k]).abs().max().item() for k in w1) < 1e-5


@pytest.mark.slow
def test_batchnorm_network_tracks_one_process(tmp_path):
    one = _train(tmp_path / "one", "cnn7", 4)
    two = _train(tmp_path / "two", "cnn7", 4, nproc=2)
    _one_bundle(tmp_path / "two")
    assert [r["epoch"] for r in two] == [1, 2, 3, 4]
    for a, b in zip(one, two, strict=True):
        assert b["loss"] == pytest.approx(a["loss"], rel=0.15)
    assert two[-1]["loss"] < 2.0


@pytest.mark.slow
def test_codec_training_on_two_ranks(tmp_path):
    one = _train(tmp_path / "one", "codec", 2)
    two = _train(tmp_path / "two", "codec", 2, nproc=2)  # the NAE pool is split over the ranks and summed
    _one_bundle(tmp_path / "two")
    assert (tmp_path / "two/run/preview.png").is_file()
    for a, b in zip(one, two, strict=True):
        assert b["train_mse"] == pytest.approx(a["train_mse"], rel=1e-2)
        assert b["lr"] == a["lr"]


def test_single_process_without_torchrun(monkeypatch):
    from ric.distributed.ddp import Dist, process_group

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with process_group("cpu") as d:
        assert (d.rank, d.world, d.active, d.writer) == (0, 1, False, True)
        assert d.sum(2.0, 3) == [2.0, 3.0] and d.any(True) and not d.any(False)
    shares = [Dist(r, 3).share(7) for r in range(3)]
    assert [(s.start, s.stop) for s in shares] == [(0, 3), (3, 5), (5, 7)]
    assert [(s.start, s.stop) for s in (Dist(r, 2).share(1) for r in range(2))] == [(0, 1), (1, 1)]
