"""The job engine behind every batch verb: plan, scan, pending, write and restart.

Each job runs in two passes over the files. The *scan* reads and checks every input (and every existing output)
before anything is written, so bad input loses nothing; the *pending* pass does the work and writes each output
atomically as it is made. A rerun skips an output that it can prove finished and redoes one that a job under the
same key made; any other existing file is refused unless ``force``.

* :mod:`ric.jobs.plan`: input files, their outputs, and the refusals (name clashes, overwriting an input, a file
  the job did not make);
* :mod:`ric.jobs.encrypt`, :mod:`ric.jobs.classify`, :mod:`ric.jobs.decrypt`: the three jobs.

The recipes drive this one engine: :mod:`ric.api` (and so the CLI), :mod:`ric.distributed.ray_jobs` (the same
scan and pending steps per shard) and the service. The engine knows schemes only through
:class:`ric.schemes.base.Scheme`.
"""
