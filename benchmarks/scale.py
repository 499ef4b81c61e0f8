"""Scaling out: Ray batch jobs and torchrun training, measured. Writes docs/results/scale.{md,json}.

    python benchmarks/scale.py                                   # 400 SVHN test images, the full set of checks
    python benchmarks/scale.py --images 100 --train-limit 1024 --epochs 2 -o /tmp/scale   # quick

* **Ray throughput:** the exact scheme (default classifier svhn-cnn7) encrypts the same ``--images`` SVHN test
  images (``svhn_test_first10k.npz`` from index 8000, the test split, written as PNGs to a temporary folder) in
  the plain process (``encrypt_files``, at 1 and at 2 torch threads) and on a local Ray cluster of 2 CPUs
  (``encrypt_files_ray``, 1 and 2 workers of one thread each). Each job starts from an empty output folder. The
  wall time of a Ray job includes starting its actors and loading the classifier in each; the steady rate is
  measured between the first and the last chunk that comes back. Ray's start-up: ``ray.init`` of the local
  cluster, and a 2-image job.
* **Restart:** ``ric encrypt ... --ray --workers 2`` as a subprocess, SIGINT to the driver once 40 % of the outputs
  exist, then the same command again: the rerun's summary must count every missing file as encrypted and every
  file present as skipped, the files present must be untouched (inode and mtime), and every ciphertext must
  decrypt bit-exactly (``ric decrypt --ray``).
* **torchrun:** ``ric train classifier svhn-cnn7`` on the first ``--train-limit`` training images for ``--epochs``
  epochs at the recipe's global batch of 128, in one process and under ``torchrun --nproc-per-node 2`` (gloo):
  the per-epoch loss curves side by side.
* **A cluster recipe on paper:** the commands for N nodes and the throughput they should reach, extrapolated from
  the measured per-worker rate.

The machine is shared with other work: the load average is recorded before and after every measurement.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ric.api import encrypt_files, keygen
from ric.datasets import default_data_root
from ric.imageio import read_image

ROOT = Path(__file__).resolve().parents[1]
FIRST = 8000  # the SVHN test split of svhn_test_first10k.npz (ric.datasets.SPLITS)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    import ray

    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
            "ray": ray.__version__, "platform": platform.platform()}


def write_images(folder: Path, n: int) -> list[Path]:
    d = np.load(Path(default_data_root()) / "svhn/svhn_test_first10k.npz")
    folder.mkdir(parents=True)
    paths = []
    for i in range(FIRST, FIRST + n):
        p = folder / f"svhn_{i:05d}.png"
        Image.fromarray(d["images"][i]).save(p)
        paths.append(p)
    return paths


class Ticks:
    """A progress callback that records when each chunk came back."""

    def __init__(self):
        self.t: list[tuple[float, int]] = []
        self.done = 0

    def __call__(self, n: int) -> None:
        self.done += n
        self.t.append((time.perf_counter(), self.done))

    def steady_rate(self) -> float | None:
        """Images per second between the first and the last tick (start-up excluded)."""
        ticks = [t for t in self.t if t[1] > 0]
        if len(ticks) < 2 or ticks[-1][0] <= ticks[0][0]:
            return None
        return (ticks[-1][1] - ticks[0][1]) / (ticks[-1][0] - ticks[0][0])


def timed(name: str, fn, n: int, **info) -> dict:
    before = load()
    ticks = Ticks()
    t0 = time.perf_counter()
    rows = fn(ticks)
    wall = time.perf_counter() - t0
    counts = {k: sum(r["status"] == k for r in rows) for k in ("encrypted", "skipped", "failed")}
    assert counts["encrypted"] == n, counts
    res = {"name": name, "images": n, "wall_s": round(wall, 2), "rate": round(n / wall, 2),
           "steady_rate": round(ticks.steady_rate() or n / wall, 2), "load_before": before, "load_after": load(),
           **counts, **info}
    log(f"  {name}: {wall:.1f} s, {n / wall:.2f} img/s (steady {res['steady_rate']}), load {before} -> "
        f"{res['load_after']}")
    return res


def throughput(src: Path, tmp: Path, key, n: int, reps: int) -> dict:
    """The plain process at 1 and 2 threads, Ray with 1 and 2 workers (``reps`` rounds, interleaved, so that the
    machine's changing load falls on all of them alike); Ray's start-up."""
    import ray

    from ric.distributed.ray_jobs import encrypt_files_ray

    threads0 = torch.get_num_threads()
    out: dict = {"runs": []}

    def plain(threads, k):
        torch.set_num_threads(threads)
        try:
            return timed(f"plain process, {threads} thread{'s' * (threads > 1)} (round {k})",
                         lambda t: encrypt_files([src], tmp / f"plain{threads}-{k}", key, progress=t), n,
                         threads=threads)
        finally:
            torch.set_num_threads(threads0)

    def on_ray(workers, k):
        return timed(f"Ray, {workers} worker{'s' * (workers > 1)} (round {k})",
                     lambda t: encrypt_files_ray([src], tmp / f"ray{workers}-{k}", key, progress=t, workers=workers),
                     n, workers=workers)

    log("throughput")
    t0 = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    out["ray_init_s"] = round(time.perf_counter() - t0, 2)
    try:
        tiny = src.parent / "tiny"
        tiny.mkdir()
        for p in sorted(src.iterdir())[:2]:
            shutil.copy(p, tiny)
        t0 = time.perf_counter()
        encrypt_files_ray([tiny], tmp / "ray-tiny", key, workers=2)
        out["ray_job_2_images_s"] = round(time.perf_counter() - t0, 2)
        for k in range(1, reps + 1):
            out["runs"] += [plain(1, k), on_ray(1, k), on_ray(2, k), plain(2, k)]
    finally:
        ray.shutdown()
    t0 = time.perf_counter()
    encrypt_files([tiny], tmp / "plain-tiny", key)
    out["plain_job_2_images_s"] = round(time.perf_counter() - t0, 2)
    return out


def restart(src: Path, tmp: Path, keyfile: Path, n: int) -> dict:
    """SIGINT to a Ray job's driver midway, rerun, check."""
    log("restart")
    ct, rec = tmp / "restart-ct", tmp / "restart-rec"
    cmd = [sys.executable, "-m", "ric.cli", "encrypt", str(src), "-o", str(ct), "-k", str(keyfile), "--ray",
           "--workers", "2", "--json"]
    before = load()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while proc.poll() is None and len(list(ct.glob("*.png"))) < 0.4 * n:
        time.sleep(0.2)
    at_signal = len(list(ct.glob("*.png")))
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    time.sleep(3)  # nothing may still be writing: the listing below must not change
    stamps = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in ct.glob("*.png")}
    time.sleep(2)
    stable = stamps == {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in ct.glob("*.png")}
    leftovers = [p.name for p in ct.iterdir() if not p.name.endswith(".png")]
    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    summary = json.loads(rerun.stdout)["summary"]
    untouched = all((p := ct / name).stat().st_ino == s[0] and p.stat().st_mtime_ns == s[1]
                    for name, s in stamps.items())
    dec = subprocess.run([sys.executable, "-m", "ric.cli", "decrypt", str(ct), "-o", str(rec), "-k", str(keyfile),
                          "--ray", "--workers", "2", "--json"], capture_output=True, text=True, timeout=1800)
    dsum = json.loads(dec.stdout)["summary"]
    exact = sum(np.array_equal(read_image(p), read_image(rec / p.name)) for p in sorted(src.iterdir()))
    res = {"images": n, "outputs_at_sigint": at_signal, "interrupted_rc": proc.returncode,
           "interrupted_message": err.strip().splitlines()[-1] if err.strip() else "",
           "outputs_after_interrupt": len(stamps), "listing_stable_after_exit": stable, "leftover_files": leftovers,
           "rerun_rc": rerun.returncode, "rerun_summary": summary, "finished_files_untouched": untouched,
           "decrypt_summary": dsum, "bit_exact": exact, "load_before": before, "load_after": load(),
           "command": " ".join(["ric", *cmd[3:]]).replace(str(tmp), "$TMP")}
    res["nothing_done_twice"] = (summary["skipped"] == len(stamps) and summary["encrypted"] == n - len(stamps)
                                 and untouched and stable)
    res["ok"] = res["nothing_done_twice"] and exact == n and dsum["decrypted"] == n and proc.returncode == 130
    log(f"  {res}")
    return res


def torchrun(tmp: Path, train_limit: int, test_limit: int, epochs: int) -> dict:
    """``ric train classifier svhn-cnn7`` in one process and under torchrun with 2 gloo processes."""
    log("torchrun")
    common = ["train", "classifier", "svhn-cnn7", "--epochs", str(epochs), "--set", f"train_limit={train_limit}",
              "--set", f"test_limit={test_limit}", "--device", "cpu", "--data-root", str(default_data_root())]
    out = {"train_limit": train_limit, "test_limit": test_limit, "epochs": epochs, "global_batch": 128, "runs": {}}
    one = [sys.executable, "-m", "ric.cli"]
    two = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", "-m", "ric.cli", "--"]
    for name, launcher, extra in (("1 process", one, []), ("torchrun, 2 processes", two, []),
                                  ("1 process, seed 1", one, ["--set", "seed=1"])):
        d = tmp / f"train-{len(out['runs'])}"
        cmd = [*launcher, *common, *extra, "-o", str(d / "bundle"), "--run", str(d / "run")]
        before = load()
        t0 = time.perf_counter()
        res = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
                             timeout=3600)
        wall = time.perf_counter() - t0
        assert res.returncode == 0, res.stderr[-3000:]
        curve = [json.loads(line) for line in (d / "run/log.jsonl").read_text().splitlines()]
        bundles = sorted(p.name for p in (d / "bundle").iterdir())
        shown = "OMP_NUM_THREADS=1 " + ("ric" if launcher is one else "torchrun --standalone --nproc-per-node=2 "
                                                                       "-m ric.cli --")
        out["runs"][name] = {"wall_s": round(wall, 1), "loss": [round(r["loss"], 4) for r in curve],
                             "test_acc": [round(r["test_acc"], 4) for r in curve], "bundle_files": bundles,
                             "stdout": res.stdout.strip().splitlines()[-1], "load_before": before, "load_after": load(),
                             "command": " ".join([shown, *cmd[len(launcher):]]).replace(str(tmp), "$TMP")}
        log(f"  {name}: {wall:.0f} s, loss {out['runs'][name]['loss']}")
    a, b, c = (r["loss"] for r in out["runs"].values())
    out["max_rel_loss_diff"] = round(max(abs(x - y) / x for x, y in zip(a, b, strict=True)), 4)
    out["max_rel_loss_diff_seed"] = round(max(abs(x - y) / x for x, y in zip(a, c, strict=True)), 4)
    return out


def cluster_recipe(per_worker: float, overhead_s: float) -> dict:
    rows = []
    for nodes, cores in ((1, 32), (4, 32), (16, 32), (64, 32)):
        w = nodes * cores
        rate = w * per_worker
        rows.append({"nodes": nodes, "cores_per_node": cores, "workers": w, "images_per_s": round(rate, 1),
                     "minutes_per_million": round((1e6 / rate + overhead_s) / 60, 1),
                     "hours_per_10_million": round((1e7 / rate + overhead_s) / 3600, 2)})
    return {"per_worker_rate": per_worker, "job_overhead_s": overhead_s, "rows": rows}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=400)
    ap.add_argument("--rounds", type=int, default=3, help="throughput: rounds of the four configurations")
    ap.add_argument("--train-limit", type=int, default=4096)
    ap.add_argument("--test-limit", type=int, default=2000)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("-o", "--output", type=Path, default=ROOT / "docs/results")
    ap.add_argument("--skip", nargs="*", default=[], choices=("throughput", "restart", "torchrun"))
    ap.add_argument("--render", action="store_true", help="only rewrite scale.md from the output's scale.json")
    args = ap.parse_args(argv)
    if args.render:
        (args.output / "scale.md").write_text(render(json.loads((args.output / "scale.json").read_text())))
        return 0
    t_start, load0 = time.time(), load()
    rep: dict = {"machine": machine(), "load_start": load0, "uptime_start": _uptime(), "args": vars(args) | {
        "output": str(args.output)}, "command": " ".join(["python benchmarks/scale.py",
                                                         *(sys.argv[1:] if argv is None else argv)])}
    with tempfile.TemporaryDirectory(prefix="ric-scale-") as td:
        tmp = Path(td)
        src = tmp / "svhn"
        write_images(src, args.images)
        keyfile = tmp / "k.key"
        key = keygen(keyfile)
        if "throughput" not in args.skip:
            rep["throughput"] = throughput(src, tmp, key, args.images, args.rounds)
        if "restart" not in args.skip:
            rep["restart"] = restart(src, tmp, keyfile, args.images)
        if "torchrun" not in args.skip:
            rep["torchrun"] = torchrun(tmp, args.train_limit, args.test_limit, args.epochs)
    rep["load_end"], rep["uptime_end"] = load(), _uptime()
    rep["wall_minutes"] = round((time.time() - t_start) / 60, 1)
    if "throughput" in rep:
        runs = {r["name"]: r for r in rep["throughput"]["runs"]}
        one = [r for r in runs.values() if r.get("workers") == 1]
        per_worker = round(_mean([r["steady_rate"] for r in one]), 1)
        rep["cluster"] = cluster_recipe(per_worker, rep["throughput"]["ray_job_2_images_s"])
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "scale.json").write_text(json.dumps(rep, indent=1) + "\n")
    (args.output / "scale.md").write_text(render(rep))
    log(f"wrote {args.output}/scale.md (+ .json) in {rep['wall_minutes']} min")
    return 0


def _uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return ""


def _mean(xs):
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else float("nan")


def _throughput_md(rep: dict) -> tuple[list[str], dict]:
    th = rep["throughput"]
    runs = th["runs"]
    lines = ["| run | wall (s) | end to end (img/s) | steady (img/s) | load avg before → after |", "|---|---|---|---|---|"]
    for r in runs:
        lines.append(f"| {r['name']} | {r['wall_s']:.2f} | {r['rate']:.1f} | {r['steady_rate']:.1f} | "
                     f"{r['load_before'][0]} → {r['load_after'][0]} |")
    by = {k: [r for r in runs if r.get("workers") == k] for k in (1, 2)}
    s1, s2 = (_mean([r["steady_rate"] for r in by[k]]) for k in (1, 2))
    e1, e2 = (_mean([r["rate"] for r in by[k]]) for k in (1, 2))
    p1 = _mean([r["steady_rate"] for r in runs if r.get("threads") == 1])
    p2 = _mean([r["steady_rate"] for r in runs if r.get("threads") == 2])
    loads = [x for r in runs for x in (r["load_before"][0], r["load_after"][0])]
    m = {"s1": s1, "s2": s2, "ratio": s2 / s1, "e_ratio": e2 / e1, "p1": p1, "p2": p2,
         "overhead": th["ray_job_2_images_s"] - th["plain_job_2_images_s"], "load_min": min(loads),
         "load_max": max(loads), "rounds": len(by[1])}
    return lines, m


def _restart_md(r: dict) -> list[str]:
    s = r["rerun_summary"]
    return [
        f"`{r['command']}` on the same {r['images']} images, SIGINT to the driver once 40 % of the outputs existed "
        f"({r['outputs_at_sigint']} files when the signal was sent).",
        "",
        f"- The driver stopped with exit code {r['interrupted_rc']} (`{r['interrupted_message']}`); "
        f"{r['outputs_after_interrupt']} finished ciphertexts were on disk (the chunks in flight finished their "
        f"current files before the actors were killed), the listing did not change in the 5 s after the driver "
        f"exited ({'stable' if r['listing_stable_after_exit'] else 'NOT stable'}: no orphan worker kept writing), and "
        f"{len(r['leftover_files'])} temporary files were left behind.",
        f"- The rerun (exit code {r['rerun_rc']}) reported **encrypted {s['encrypted']}, skipped {s['skipped']}, "
        f"failed {s['failed']}**: every file present was skipped (verified under the key, made from this input) and "
        f"only the {r['images'] - r['outputs_after_interrupt']} missing ones were encrypted; the skipped files kept "
        f"their inode and modification time ({'yes' if r['finished_files_untouched'] else 'NO'}). "
        f"Nothing was done twice: **{'yes' if r['nothing_done_twice'] else 'NO'}**.",
        f"- `ric decrypt --ray --workers 2` then decrypted {r['decrypt_summary']['decrypted']} files, "
        f"**{r['bit_exact']}/{r['images']} bit-exact** against the source PNGs.",
    ]


def _torchrun_md(t: dict) -> list[str]:
    (n1, a), (n2, b), (n3, c) = t["runs"].items()
    lines = [f"`ric train classifier svhn-cnn7` on the first {t['train_limit']} training images (SVHN test-file "
             f"indices 0–{t['train_limit'] - 1}), test accuracy on the first {t['test_limit']} test images, "
             f"{t['epochs']} epochs, the recipe's global batch of {t['global_batch']} (2 × 64 under torchrun), one "
             "thread per process. The third run is the single process again with another seed (another "
             "initialisation, batch order and augmentation): the run-to-run spread to compare with.", "",
             f"| epoch | train loss, {n1} | {n2} | difference | {n3} | difference | test accuracy, 1 process / "
             f"torchrun / seed 1 |", "|---|---|---|---|---|---|---|"]
    for i, (x, y, z) in enumerate(zip(a["loss"], b["loss"], c["loss"], strict=True)):
        lines.append(f"| {i + 1} | {x:.4f} | {y:.4f} | {(y - x) / x:+.1%} | {z:.4f} | {(z - x) / x:+.1%} | "
                     f"{a['test_acc'][i]:.3f} / {b['test_acc'][i]:.3f} / {c['test_acc'][i]:.3f} |")
    lines += ["", f"Wall time (start-up, data loading and evaluation included): {a['wall_s']:.0f} s for {n1}, "
              f"{b['wall_s']:.0f} s for {n2}. Each run wrote one bundle ({', '.join(b['bundle_files'])}); under "
              "torchrun only rank 0 wrote the run folder and the bundle and printed the summary line.", "",
              "Commands:", "", "```bash", a["command"], b["command"], "```"]
    return lines


def render(rep: dict) -> str:
    mc = rep["machine"]
    out = ["# Scaling out: Ray batch jobs and torchrun training", "",
           f"Measured by `{rep['command'].strip()}` ({rep['wall_minutes']} min) on {mc['cpu']}, {mc['cores']} cores, "
           f"Python {mc['python']}, torch {mc['torch']}, Ray {mc['ray']}. **The machine was shared with other "
           "work**: `uptime` before: `" + rep["uptime_start"] + "`; after: `" + rep["uptime_end"] + "`.", ""]
    if "throughput" in rep:
        lines, m = _throughput_md(rep)
        th = rep["throughput"]
        n = th["runs"][0]["images"]
        out += ["## Ray: encryption throughput", "",
                f"The exact scheme (classifier svhn-cnn7) on the same {n} SVHN test images (PNG files, 32×32), each "
                "job into an empty folder; Ray on a local cluster of 2 CPUs, workers of one thread each. *End to end* "
                "is the job's wall time (for Ray: starting the actors, loading the classifier in each, the scan "
                "pass, the encryption); *steady* counts the images between the first and the last chunk that came "
                "back.", "", *lines, "",
                f"- **Scaling, 2 workers against 1: {m['ratio']:.2f}× on the steady rate** ({m['s2']:.1f} against "
                f"{m['s1']:.1f} img/s, mean of {m['rounds']} runs each), {m['e_ratio']:.2f}× end to end.",
                f"- The plain process: {m['p1']:.1f} img/s at 1 thread, {m['p2']:.1f} img/s at 2 threads; one Ray "
                f"worker's steady rate is {m['s1'] / m['p1']:.0%} of the 1-thread plain process"
                + (" (a second torch thread does not help: batches of 32×32 images give it little to split, and "
                   "it competes with the other work on the machine)." if m["p2"] < m["p1"] else "."),
                f"- **Ray's start-up:** `ray.init` of the local cluster took {th['ray_init_s']:.1f} s; a 2-image job "
                f"took {th['ray_job_2_images_s']:.1f} s on Ray against {th['plain_job_2_images_s']:.1f} s in the "
                f"plain process, so every Ray job pays about {m['overhead']:.1f} s (starting one actor per worker, "
                "importing torch and loading the classifier in each). On a job this small that overhead is most of "
                "the wall time; on 10^5 images and more it vanishes.", ""]
        if m["ratio"] < 1.6:
            out += [f"**Why not 1.6×:** two workers need both cores, and the cores were not free: the 1-minute "
                    f"load average stood between {m['load_min']} and {m['load_max']} during these runs on a 2-core "
                    "machine (other engineers' test suites and training runs), more runnable processes than cores "
                    f"all the time, so the two workers did {m['ratio']:.2f} times the work of one, not twice. The "
                    "driver (scheduling, progress) and Ray's own daemons (raylet, GCS) share the same two cores. Idle "
                    "cores, or more of them, are what the cluster recipe below extrapolates to; this machine cannot "
                    "show them.", ""]
    if "restart" in rep:
        out += ["## Restart after an interruption", "", *_restart_md(rep["restart"]), ""]
    if "torchrun" in rep:
        t = rep["torchrun"]
        out += ["## torchrun: two gloo processes against one, same global batch", "", *_torchrun_md(t), "",
                f"The largest relative difference between the torchrun and the single-process loss curves is "
                f"{t['max_rel_loss_diff']:.1%}; between two single-process runs with different seeds it is "
                f"{t['max_rel_loss_diff_seed']:.1%}" + (": two processes stay as close to one process as another "
                "seed does. " if t["max_rel_loss_diff"] <= t["max_rel_loss_diff_seed"] else ". ") +
                "The torchrun curve is not identical to its single-process twin because svhn-cnn7 has BatchNorm, which normalises each rank's 64 images with "
                "their own statistics instead of the 128 of the global batch, and dropout, whose masks each process "
                "draws from its own generator; everything else (the images of each batch, their augmentation, the "
                "learning-rate schedule, the averaged gradient) is the same. Without BatchNorm and dropout two "
                "processes match one to about 1e-7 (`tests/distributed/test_ddp.py`: a network of linear layers, "
                "epoch losses equal to 1e-5, resumed on both ranks, final weights equal to 1e-5). On this 2-core "
                "machine the wall times say little about speed: all runs share the same two loaded cores.", ""]
    if "cluster" in rep:
        out += _cluster_md(rep["cluster"])
    return "\n".join(out) + "\n"


def _cluster_md(c: dict) -> list[str]:
    lines = ["## A cluster recipe on paper (an extrapolation, not a measurement)", "",
             "Every node: the same Python environment (`pip install 'ric[distributed]'`, the same ric version) and "
             "the shared folder mounted at the same path (here `/shared`: inputs, outputs and the key file; the "
             "key file readable only by the job's user). Start Ray, then run the job from the head node:", "",
             "```bash", "head$   ray start --head --port=6379 --num-cpus=32",
             "node-k$ ray start --address=HEAD:6379 --num-cpus=32          # on each of the other N-1 nodes",
             "head$   ric encrypt /shared/photos -o /shared/ct -k /shared/secret.key --ray HEAD:6379 --json \\",
             "            > /shared/encrypt.json                              # one worker per CPU of the cluster",
             "head$   ric encrypt /shared/photos -o /shared/ct -k /shared/secret.key --ray HEAD:6379   # after a crash:"
             " redoes only what is missing",
             "head$   ric decrypt /shared/ct -o /shared/recovered -k /shared/secret.key --ray HEAD:6379",
             "head$   ray stop                                                # on every node", "```", "",
             f"Expected throughput = workers × the per-worker rate measured above ({c['per_worker_rate']:.1f} img/s: "
             "the mean steady rate of one Ray worker of one thread, SVHN 32×32 through svhn-cnn7, on this loaded "
             "machine; a core of a 32-core node may be faster or slower), after about "
             f"{c['job_overhead_s']:.1f} s of start-up per job:", "",
             "| nodes × cores | workers | expected img/s | minutes per 10^6 images | hours per 10^7 images |",
             "|---|---|---|---|---|"]
    for r in c["rows"]:
        lines.append(f"| {r['nodes']} × {r['cores_per_node']} | {r['workers']} | {r['images_per_s']:,.0f} | "
                     f"{r['minutes_per_million']} | {r['hours_per_10_million']} |")
    lines += ["", "What would make a real cluster slower than this line: larger images and classifiers (photos "
              "through cifar10-resnet18 or faces-dlibface cost far more per image than SVHN through svhn-cnn7: "
              "[`exact.md`](exact.md)); the shared folder's bandwidth and metadata rate (each image is read twice "
              "(scan, then encryption) and written once, a few kB for SVHN); the driver, which lists the folder and "
              "keeps one row per file (millions of rows: shard the job into sub-folders, or skip `--json`) and "
              "receives every chunk's rows (at the largest sizes, thousands of chunks a second: raise the chunk size "
              "through the Python API's `chunk_size`, or run one job per sub-folder); hyper-threads counted as "
              "cores. What would make it faster: idle cores (this machine's were not).", ""]
    return lines


if __name__ == "__main__":
    sys.exit(main())
