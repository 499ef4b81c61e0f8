"""The training loop's machinery, shared by both trainers: the run folder (checkpoint every epoch, resume,
one JSON line per epoch in ``log.jsonl``), the time budget, and the learning-rate schedules.

Both trainers (:mod:`ric.training.classifier`, :mod:`ric.training.codec`) stop at ``epochs`` or after
``time_budget`` seconds, whichever is first, and then write a bundle.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import torch


class RunFolder:
    """A training run's folder: ``ckpt.pt`` (written atomically every epoch), ``log.jsonl``, previews.

    ``writer=False`` (a non-zero rank of a distributed run) reads the checkpoint but writes nothing."""

    def __init__(self, path: str | Path, log=print, writer: bool = True):
        self.path = Path(path)
        self.log = log
        self.writer = writer
        if writer:
            self.path.mkdir(parents=True, exist_ok=True)

    @property
    def ckpt(self) -> Path:
        return self.path / "ckpt.pt"

    def resume(self, map_location) -> dict | None:
        """The last checkpoint's state, or None for a fresh run."""
        if not self.ckpt.is_file():
            return None
        return torch.load(self.ckpt, map_location=map_location, weights_only=False)

    def save(self, state: dict) -> None:
        if not self.writer:
            return
        tmp = self.path / "ckpt.tmp"
        torch.save(state, tmp)
        tmp.replace(self.ckpt)

    def record(self, rec: dict) -> None:
        """Log one epoch's record and append it to ``log.jsonl``."""
        if not self.writer:
            return
        self.log(json.dumps(rec))
        with open(self.path / "log.jsonl", "a") as f:
            f.write(json.dumps(rec) + "\n")


class Budget:
    """Wall-clock budget of a run across restarts: ``before`` seconds were trained before this process started."""

    def __init__(self, seconds: float | None, before: float = 0.0):
        self.seconds = seconds
        self.before = before
        self.t0 = time.time()

    @property
    def elapsed(self) -> float:
        return self.before + time.time() - self.t0

    def spent(self) -> bool:
        return bool(self.seconds) and self.elapsed > self.seconds

    def progress(self, epoch_progress: float) -> float:
        """Training progress in [0, 1]: the epochs' share, or the budget's when that is further along."""
        return max(epoch_progress, self.elapsed / self.seconds) if self.seconds else epoch_progress


def one_cycle(lr: float, progress: float, warmup: float = 0.15) -> float:
    """Linear warm-up to ``lr`` over the first 15 % of training, then cosine decay towards 0."""
    if progress < warmup:
        return lr * (0.04 + 0.96 * progress / warmup)
    return lr * 0.5 * (1 + math.cos(math.pi * min(1.0, (progress - warmup) / (1 - warmup))))


def cosine(lr: float, progress: float, final_ratio: float) -> float:
    """Cosine decay from ``lr`` to ``final_ratio·lr``."""
    return lr * (final_ratio + (1 - final_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def set_lr(opt: torch.optim.Optimizer, lr: float) -> None:
    for g in opt.param_groups:
        g["lr"] = lr
