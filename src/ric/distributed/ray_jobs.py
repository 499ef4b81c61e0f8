"""The batch verbs on Ray: ``ric encrypt|classify|decrypt ... --ray [ADDRESS] [--workers N]``.

How a job runs. The driver (the ``ric`` process) lists the inputs and plans the outputs
(:func:`ric.jobs.plan.plan_outputs`: name clashes and outputs that would overwrite an input are refused first), then
starts one Ray actor per worker. Each actor loads the scheme, model or classifier once and runs shards of files
through the same per-file steps as the local job (:mod:`ric.jobs`), in two passes:

1. *scan*: every input is read and checked (for decryption: authenticated) and the finished outputs are found,
   on all workers, before anything is written, so a bad input stops the job with nothing written, as locally;
2. *run*: the pending files in chunks, each chunk through the local job's own scan-then-write functions: every
   output is written atomically by the worker that made it, and a chunk re-checks outputs that another job may
   have finished in the meantime.

The driver counts progress as chunks come back and puts the rows in input order; the summary, ``--json`` and the
exit codes are the local job's. An interrupted job (Ctrl-C on the driver, a lost node) keeps every finished output,
and a rerun skips those that check out and redoes the rest: nothing finished is done twice.

Assumed: a folder that every node sees at the same path (NFS, a cluster file system) holding the inputs, the
outputs, the key file and any classifier or model given by path; ``ric`` installed on every node. Workers receive
only what the operator gave (paths, names, options): a ciphertext's metadata still selects only shipped models and
classifiers, checked on the driver and again on the worker. Given a key file (the CLI), every worker reads the key
from the shared folder, so the key does not travel over Ray's network; a :class:`~ric.keys.SecretKey` object passed
to these functions does (use Ray's TLS between hosts).
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from ric import errors
from ric.distributed import INSTALL_HINT
from ric.errors import ClusterError, InputError, KeyPermissionWarning, RICError, RICWarning
from ric.imageio import list_images
from ric.jobs.classify import classifier_idents, classify_paths, trusted_classifier
from ric.jobs.decrypt import Decrypters, decrypt_pending, scan_decrypt
from ric.jobs.encrypt import encrypt_pending, scan_encrypt
from ric.jobs.plan import plan_outputs
from ric.keys import SecretKey
from ric.schemes import SchemeOptions, load_scheme
from ric.stacks import DEFAULT_ROBUST_SET

SCAN_SHARD = 256  # files per scan task at most (the scan reads and checks; it writes nothing)


def import_ray():
    """The ``ray`` module, or :class:`~ric.errors.InputError` saying how to install it."""
    try:
        import ray
    except ImportError:
        raise InputError(f"--ray needs Ray, which is not installed: {INSTALL_HINT}") from None
    return ray


@contextmanager
def connect(address: str | None = None):
    """Ray, initialised: joined to the cluster at ``address``, or without one Ray's own choice (``RAY_ADDRESS``,
    else a cluster started on this machine by ``ray start``, else a new local cluster that lives as long as the
    job). A Ray already initialised in this process (e.g. a test's ``ray.init(num_cpus=2)``) is used as it is and
    left running."""
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    try:
        ray.init(address=address or None, log_to_driver=False, logging_level=logging.ERROR)
    except (ConnectionError, ValueError, RuntimeError, TimeoutError) as e:
        raise ClusterError(f"cannot start or join the Ray cluster {address or '(default)'}: {e}") from None
    try:
        yield ray
    finally:
        ray.shutdown()


class ShardWorker:
    """One Ray actor per worker: the job's options, and the key, scheme, model or classifier it loads once.

    The ``do_*`` methods are the work; :meth:`call` runs one and returns RIC errors and warnings as data, so the
    driver reports them as the local job would (one line, the same exit code)."""

    def __init__(self, job: dict, threads: int = 1):
        import torch

        torch.set_num_threads(max(1, threads))
        self.job = job
        self._loaded: dict = {}

    def call(self, method: str, *args):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", RICWarning)
            try:
                out = {"ok": getattr(self, "do_" + method)(*args)}
            except RICError as e:
                out = {"error": (type(e).__name__, str(e))}
        out["warnings"] = [str(w.message) for w in caught if issubclass(w.category, RICWarning)]
        return out

    def _once(self, name: str, make: Callable):
        if name not in self._loaded:
            self._loaded[name] = make()
        return self._loaded[name]

    def key(self) -> SecretKey:
        k = self.job["key"]
        if isinstance(k, SecretKey):
            return k

        def load():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", KeyPermissionWarning)  # the driver read the same file and warned
                return SecretKey.load(k)

        return self._once("key", load)

    def scheme(self):
        def load():
            sch = load_scheme(**self.job["scheme"])
            sch.check_encryptable()
            return sch

        return self._once("scheme", load)

    def do_encrypt_scan(self, paths: list[Path], outs: list[Path]) -> list[dict]:
        return scan_encrypt(paths, outs, self.key(), self.scheme(), self.job["convert"], self.job["strip"],
                            self.job["keep_names"], self.job["force"])[0]

    def do_encrypt(self, paths: list[Path], outs: list[Path]) -> list[dict]:
        rows, todo = scan_encrypt(paths, outs, self.key(), self.scheme(), self.job["convert"], self.job["strip"],
                                  self.job["keep_names"], self.job["force"])
        encrypt_pending(rows, todo, self.key(), self.scheme(), self.job["batch_size"], convert=self.job["convert"],
                        strip=self.job["strip"])
        return rows

    def do_idents(self, paths: list[Path]) -> set[str]:
        return classifier_idents(paths)

    def do_classify(self, paths: list[Path], ident: str | None) -> list[dict]:
        from ric.classifiers import load_classifier

        j = self.job
        clf = self._once("classifier", lambda: load_classifier(j["classifier"], config=j["classifier_config"])
                         if j["classifier"] else trusted_classifier({ident}))
        return classify_paths(paths, clf, j["convert"], j["batch_size"])

    def _decrypt_scan(self, paths: list[Path], outs: list[Path], planned: bool = False):
        j = self.job
        decrypters = self._once("decrypters", lambda: Decrypters(SchemeOptions(
            model=j["model"], classifier=j["classifier"], classifier_config=j["classifier_config"],
            device=j["device"], batch_size=j["batch_size"])))
        return scan_decrypt(paths, outs, self.key(), decrypters, j["verify"], j["force"], j["any_name"], planned)

    def do_decrypt_scan(self, paths: list[Path], outs: list[Path]) -> list[dict]:
        return self._decrypt_scan(paths, outs).rows

    def do_decrypt(self, paths: list[Path], outs: list[Path]) -> list[dict]:
        scan = self._decrypt_scan(paths, outs, planned=True)  # the outputs the scan of the whole job named
        decrypt_pending(paths, scan, self.key(), self.job["verify"], self.job["batch_size"])
        return scan.rows


class RayPool:
    """The job's actors (one per worker, each reserving one CPU, or one GPU with ``device="cuda"``; fewer when
    ``workers`` exceeds the cluster, so that no actor waits for resources forever) and the driver's side of the
    work: tasks out, at most ``depth`` per actor at a time, results back in order."""

    def __init__(self, ray, job: dict, workers: int | None = None, device: str = "cpu", depth: int = 2):
        res = ray.cluster_resources()
        gpu = str(device).startswith("cuda")
        total = float(res.get("GPU" if gpu else "CPU", 0))
        if total <= 0:
            raise InputError(f"the Ray cluster has no {'GPU' if gpu else 'CPU'} for the workers")
        if workers is not None and workers < 1:
            raise InputError(f"--workers must be at least 1, got {workers}")
        self.ray, self.depth = ray, depth
        self.workers = workers or max(1, int(total))
        share = min(1.0, total / self.workers)
        cpus = min(1.0, float(res.get("CPU", 1)) / self.workers)
        opts = {"num_cpus": cpus, "num_gpus": share} if gpu else {"num_cpus": share}
        actor = ray.remote(ShardWorker).options(**opts)
        self.actors = [actor.remote(job, 1) for _ in range(self.workers)]
        self._warned: set[str] = set()

    def close(self) -> None:
        """Stop the actors (an interrupted chunk stops mid-way; what it finished is on disk, written atomically)."""
        for a in self.actors:
            self.ray.kill(a)

    def map(self, method: str, tasks: list[tuple], progress: Callable | None = None) -> list:
        """``ShardWorker.do_<method>(*task)`` for every task on the actors; results in task order. ``progress``
        is called with the number of files of each task (its first argument) as the task comes back."""
        ray = self.ray
        results: list = [None] * len(tasks)
        queue = list(enumerate(tasks))[::-1]
        inflight: dict = {}

        def submit(actor) -> None:
            if queue:
                i, args = queue.pop()
                inflight[actor.call.remote(method, *args)] = (i, actor)

        for _ in range(self.depth):
            for a in self.actors:
                submit(a)
        while inflight:
            done, _ = ray.wait(list(inflight), num_returns=1, timeout=0.5)  # returns to Python: Ctrl-C works
            for ref in done:
                i, actor = inflight.pop(ref)
                results[i] = self._unwrap(ref)
                submit(actor)
                if progress:
                    progress(len(tasks[i][0]))
        return results

    def _unwrap(self, ref):
        try:
            out = self.ray.get(ref)
        except self.ray.exceptions.RayActorError as e:
            raise ClusterError(f"a Ray worker died ({type(e).__name__}); finished outputs are kept, rerun to "
                               "continue (is ric installed on every node?)") from None
        for msg in out["warnings"]:
            if msg not in self._warned:
                self._warned.add(msg)
                warnings.warn(msg, RICWarning, stacklevel=2)
        if "error" in out:
            name, msg = out["error"]
            cls = getattr(errors, name, None)
            raise (cls if isinstance(cls, type) and issubclass(cls, RICError) else ClusterError)(msg)
        return out["ok"]


def _slices(n: int, parts: int) -> list[slice]:
    """``n`` items in ``parts`` contiguous slices of near-equal size (none empty)."""
    parts = max(1, min(parts, n))
    bounds = [round(k * n / parts) for k in range(parts + 1)]
    return [slice(a, b) for a, b in zip(bounds, bounds[1:], strict=False) if b > a]


def _chunk_size(n: int, workers: int, batch_size: int) -> int:
    """Files per run task: about eight tasks per worker (balance, progress), at most one batch."""
    return max(1, min(batch_size, math.ceil(n / (8 * workers))))


def _abs(x):
    """An operator-given path made absolute (workers may run elsewhere); names and None unchanged."""
    if isinstance(x, (str, Path)) and x and Path(x).exists():
        return str(Path(x).absolute())
    return x


def _key_spec(key):
    return key if isinstance(key, SecretKey) else str(Path(key).absolute())


def _two_pass(verb: str, job: dict, paths: list[Path], outs: list[Path], address, workers, device, progress,
              chunk_size) -> list[dict]:
    """Encryption and decryption on Ray: scan every shard, then run the pending files in chunks."""
    ap, ao = [p.absolute() for p in paths], [o.absolute() for o in outs]
    with connect(address) as ray:
        pool = RayPool(ray, job, workers, device)
        try:
            shards = _slices(len(ap), max(pool.workers, math.ceil(len(ap) / SCAN_SHARD)))
            rows = [r for part in pool.map(f"{verb}_scan", [(ap[s], ao[s]) for s in shards]) for r in part]
            _refuse_shared_outputs(paths, rows)
            pending = [i for i, r in enumerate(rows) if r["status"] == "pending"]
            if progress:
                progress(len(rows) - len(pending))
            size = chunk_size or _chunk_size(len(pending), pool.workers, job["batch_size"])
            groups = [pending[k:k + size] for k in range(0, len(pending), size)]
            named = [Path(r["output"]) for r in rows]  # the outputs the scan chose (a photo's keyed id or sealed name)
            parts = pool.map(verb, [([ap[i] for i in g], [named[i] for i in g]) for g in groups], progress)
            for g, part in zip(groups, parts, strict=True):
                for i, r in zip(g, part, strict=True):
                    rows[i] = r
        finally:
            pool.close()
    for r, p, o in zip(rows, paths, outs, strict=True):  # the paths as the caller gave them, as locally
        r["input"], r["output"] = str(p), str(o.parent / Path(r["output"]).name)
    return rows


def _refuse_shared_outputs(paths: list[Path], rows: list[dict]) -> None:
    """Each shard names its outputs on its own (a photo's keyed id, a sealed file's name), so two inputs in different
    shards may pick one output; refuse that before anything is written (the local job refuses it too, or, for two
    sealed files of one name, writes the second as ``name (2).ext``)."""
    seen: dict[str, Path] = {}
    for p, r in zip(paths, rows, strict=True):
        o = r["output"]
        if o in seen:
            raise InputError(f"{p} and {seen[o]} would both be written to {o}: two inputs of one name; on Ray, "
                             "rename one, or run them in separate jobs (or without --ray)")
        seen[o] = p


def encrypt_files_ray(inputs: list, out_dir: str | Path, key: SecretKey | str | Path, *, scheme: str | None = None,
                      model: str | None = None, classifier: str | None = None, classifier_config=None,
                      bits: int | None = None, transcode: tuple[str, ...] | None = None, resize: bool = False,
                      refine: bool = True, robust_set: str | None = DEFAULT_ROBUST_SET, convert: str = "strict",
                      device: str = "cpu", max_retries: int = 3, batch_size: int = 64, strip_metadata: bool = False,
                      keep_names: bool = False, force: bool = False, progress: Callable | None = None,
                      address: str | None = None, workers: int | None = None,
                      chunk_size: int | None = None) -> list[dict]:
    """:func:`ric.api.encrypt_files` on a Ray cluster (``address``; ``workers`` actors, default one per CPU of
    the cluster, or per GPU with ``device="cuda"``). ``key``: a key file on the shared folder (read by every
    worker) or a :class:`~ric.keys.SecretKey`. Same rows, statuses, restart and overwrite rules (``force``) as the
    local job."""
    paths, outs = plan_outputs(inputs, out_dir)
    scheme_opts = {"scheme": scheme, "model": _abs(model), "classifier": _abs(classifier),
                   "classifier_config": _abs(classifier_config), "bits": bits, "transcode": transcode, "resize": resize,
                   "refine": refine, "device": device, "max_retries": max_retries, "batch_size": batch_size,
                   "robust_set": robust_set}
    job = {"key": _key_spec(key), "convert": convert, "batch_size": batch_size, "strip": strip_metadata,
           "force": force, "keep_names": keep_names, "scheme": scheme_opts}
    return _two_pass("encrypt", job, paths, outs, address, workers, device, progress, chunk_size)


def decrypt_files_ray(inputs: list, out_dir: str | Path, key: SecretKey | str | Path, *, model: str | None = None,
                      classifier: str | None = None, classifier_config=None, verify: bool = True,
                      device: str = "cpu", batch_size: int = 64, force: bool = False, any_name: bool = False,
                      progress: Callable | None = None, address: str | None = None, workers: int | None = None,
                      chunk_size: int | None = None) -> list[dict]:
    """:func:`ric.api.decrypt_files` on a Ray cluster: every file is authenticated and every existing output
    checked (on the workers) before the first output is written (``force`` as locally); then the pending files
    are decrypted in chunks."""
    paths, outs = plan_outputs(inputs, out_dir, clashes=False)
    job = {"key": _key_spec(key), "model": _abs(model), "verify": verify, "device": device, "force": force,
           "batch_size": batch_size, "classifier": _abs(classifier), "classifier_config": _abs(classifier_config),
           "any_name": any_name}
    return _two_pass("decrypt", job, paths, outs, address, workers, device, progress, chunk_size)


def classify_files_ray(inputs: list, *, classifier: str | None = None, classifier_config=None, convert: str = "strict",
                       batch_size: int = 256, progress: Callable | None = None, address: str | None = None,
                       workers: int | None = None, chunk_size: int | None = None) -> list[dict]:
    """:func:`ric.api.classify_files` on a Ray cluster. Without ``classifier`` the workers read the classifier
    that the ciphertexts name; the driver accepts it only if it is one shipped classifier with that fingerprint
    (as locally), and the workers load it by that name, checked again."""
    paths = list_images(inputs)
    ap = [p.absolute() for p in paths]
    job = {"classifier": _abs(classifier), "classifier_config": _abs(classifier_config), "convert": convert,
           "batch_size": batch_size}
    with connect(address) as ray:
        pool = RayPool(ray, job, workers)
        try:
            ident = None
            if not classifier:
                shards = _slices(len(ap), max(pool.workers, math.ceil(len(ap) / SCAN_SHARD)))
                ident = trusted_classifier(set().union(*pool.map("idents", [(ap[s],) for s in shards]))).ident
            size = chunk_size or _chunk_size(len(ap), pool.workers, batch_size)
            parts = pool.map("classify", [(ap[k:k + size], ident) for k in range(0, len(ap), size)], progress)
        finally:
            pool.close()
    rows = [r for part in parts for r in part]
    for r, p in zip(rows, paths, strict=True):
        r["input"] = str(p)
    return rows
