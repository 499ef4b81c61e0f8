"""Beyond one process: the batch verbs on a Ray cluster (:mod:`~ric.distributed.ray_jobs`, ``--ray``) and
training under ``torchrun`` with DistributedDataParallel (:mod:`~ric.distributed.ddp`).

Ray is an optional dependency (``pip install 'ric[distributed]'``) imported only when a job asks for it;
``torch.distributed`` ships with torch.
"""

INSTALL_HINT = "pip install 'ric[distributed]'"
