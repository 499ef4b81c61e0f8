"""Training under ``torchrun``: ``torchrun --nproc-per-node N -m ric.cli train ...`` (or ``torchrun ... $(which
ric) train ...``) runs ``ric train`` in N processes with DistributedDataParallel.

:func:`process_group` reads what torchrun sets (``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``, ``MASTER_ADDR``,
``MASTER_PORT``) and joins the group: gloo on the CPU, nccl on CUDA, one GPU per process (``cuda:LOCAL_RANK``).
Without torchrun (``WORLD_SIZE`` unset or 1) it yields the single-process :class:`Dist` and the trainers run as
before. How the trainers use it (:mod:`ric.training.classifier`, :mod:`ric.training.codec`):

* every rank draws the same global batch of ``batch_size`` images from the same seeded generator (with its
  augmentation), then keeps its contiguous share (:meth:`Dist.share`): a distributed sampler whose global batch
  is the recipe's, so the learning-rate schedule and the number of steps do not change with N;
* each rank's loss is weighted by its share of the batch and DDP averages the gradients, so an update is the
  gradient of the global batch's mean loss, as in one process (exactly, up to floating-point order, for networks
  without BatchNorm; BatchNorm normalises with each rank's own batch statistics);
* rank 0 alone writes checkpoints, logs, previews and the bundle (``RunFolder(writer=rank == 0)``); every rank
  resumes from the checkpoint; the test accuracy is computed on shards and summed; all ranks agree to stop on
  rank 0's time budget; a barrier ends the run and the group is destroyed.
"""

from __future__ import annotations

import gc
import os
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as td


@dataclass
class Dist:
    """This process's place in a training run: ``rank`` of ``world`` processes, on ``device``."""

    rank: int = 0
    world: int = 1
    device: str = "cpu"

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def writer(self) -> bool:
        """Whether this process writes the run's files (rank 0)."""
        return self.rank == 0

    def share(self, n: int) -> slice:
        """This rank's contiguous part of ``n`` items (the first ``n % world`` ranks get one more; rank 0 is
        empty only if ``n`` is 0)."""
        q, r = divmod(n, self.world)
        start = self.rank * q + min(self.rank, r)
        return slice(start, start + q + (self.rank < r))

    def wrap(self, module: torch.nn.Module) -> torch.nn.Module:
        """``module`` in DistributedDataParallel (broadcasts rank 0's weights now; averages gradients on every
        backward), or ``module`` itself in one process."""
        if not self.active:
            return module
        from torch.nn.parallel import DistributedDataParallel

        dev = torch.device(self.device)
        return DistributedDataParallel(module, device_ids=[dev.index] if dev.type == "cuda" else None)

    def sum(self, *values: float) -> list[float]:
        """The values summed over all ranks (float64)."""
        if not self.active:
            return [float(v) for v in values]
        t = torch.tensor([float(v) for v in values], dtype=torch.float64, device=self._comm_device())
        td.all_reduce(t)
        return t.tolist()

    def sum_(self, t: torch.Tensor) -> torch.Tensor:
        """``t`` summed over all ranks, in place."""
        if self.active:
            td.all_reduce(t)
        return t

    def any(self, flag: bool) -> bool:
        """True on every rank if ``flag`` is true on any (e.g. rank 0's time budget is spent)."""
        return bool(self.sum(float(bool(flag)))[0]) if self.active else bool(flag)

    def sync_buffers(self, module: torch.nn.Module) -> None:
        """Rank 0's buffers (BatchNorm running statistics) on every rank, e.g. before evaluating on shards."""
        if self.active:
            for b in module.buffers():
                td.broadcast(b, 0)

    def _comm_device(self) -> torch.device:
        return torch.device(self.device) if td.get_backend() == "nccl" else torch.device("cpu")


def from_env(device: str = "cpu") -> Dist:
    """The :class:`Dist` that torchrun's environment describes, joining its process group (gloo on the CPU, nccl
    on CUDA); a single-process one without torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist(0, 1, device)
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if torch.device(device).type == "cuda":
        device = f"cuda:{local}"
        torch.cuda.set_device(local)
        td.init_process_group("nccl", device_id=torch.device(device))
    else:
        td.init_process_group("gloo")
    return Dist(rank, world, device)


@contextmanager
def process_group(device: str = "cpu"):
    """:func:`from_env` for the length of a run: all ranks meet at a barrier when it ends, and the group is
    destroyed (also after an error, without the barrier: one failing rank must not hang the others)."""
    d = from_env(device)
    ok = False
    try:
        yield d
        ok = True
    finally:
        if d.active:
            gc.collect()  # free DDP objects (reference cycles) while the group lives: freed at exit, gloo may abort
            if ok:
                td.barrier()
            td.destroy_process_group()
