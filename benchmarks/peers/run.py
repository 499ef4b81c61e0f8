"""Runs the three peers one after the other on this machine and writes docs/results/peers.{md,json}.

    bash benchmarks/peers/setup.sh                      # once: .peers/crypten, .peers/concrete
    python benchmarks/peers/run.py --ric-n 1000 --crypten-n 100 --concrete-n 100 --fhe-n 3

ric runs in ric's own environment (this interpreter, with ``src`` first on the path), CrypTen and Concrete ML in
theirs (.peers/<name>/bin/python); each under ``nice -n 19`` with OMP_NUM_THREADS=1, one at a time. Each peer
writes its JSON under --work; this script then puts them into one table with the ratios against ric from the
same run. A peer that fails is reported as failed, with the tail of its output.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent


def _env() -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
               RAYON_NUM_THREADS="1", PYTHONPATH=str(ROOT / "src"))
    return env


def run_peer(name: str, python: str, script: str, args: list[str], out: Path, timeout: float) -> dict:
    cmd = ["nice", "-n", "19", python, str(HERE / script), *args, "--out", str(out)]
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=timeout)
        rc, tail = p.returncode, (p.stdout + p.stderr)[-3000:]
    except subprocess.TimeoutExpired as e:
        rc, tail = "timeout", (str(e.stdout or "") + str(e.stderr or ""))[-3000:]
    wall = time.perf_counter() - t0
    (out.parent / f"{name}.log").write_text(tail)
    if rc == 0 and out.exists():
        rep = json.loads(out.read_text())
        rep["command"] = " ".join(shlex.quote(c) for c in cmd[3:]).replace(str(ROOT) + "/", "")
        rep["run_wall_s"] = wall
        return rep
    return {"peer": name, "failed": True, "rc": rc, "tail": tail, "run_wall_s": wall}


def _f(v, fmt: str = ".3g", unit: str = "") -> str:
    return "–" if v is None else f"{v:{fmt}}{unit}"


def _bytes(v) -> str:
    if v is None:
        return "–"
    for u, s in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if v >= s:
            return f"{v / s:.3g} {u}"
    return f"{v:.0f} B"


def rows_of(rep: dict) -> list[dict]:
    """Table rows: ric, CrypTen, Concrete ML in FHE (the configuration it executed) and simulated (full net)."""
    out = []
    for name in ("ric", "crypten", "concrete"):
        r = rep["peers"].get(name, {})
        if r.get("failed"):
            out.append({"peer": name, "failed": True, "why": r.get("why") or str(r.get("rc"))})
            continue
        if not r:
            continue
        label = {"ric": "ric exact scheme", "crypten": "CrypTen 2-party MPC", "concrete": "Concrete ML FHE"}[name]
        if name == "concrete":
            small = r["configs"]["small"]
            done = small.get("fhe", {}).get("n")
            label += f" ({small['config']}, " + ("executed)" if done else "FHE did not finish: see notes)")
        out.append({"peer": label, "key": name, "n": r.get("fhe_n", r["n"]), **{k: r.get(k) for k in (
            "accuracy_vs_plain", "client_s", "server_s", "end_to_end_s", "bytes_per_image", "setup_bytes",
            "peak_rss_mb", "model_changed", "server_learns", "recoverable")}})
        if name == "concrete":
            for key, c in r["configs"].items():
                out.append({"peer": f"Concrete ML, {c['config']}, simulated", "key": f"concrete-{key}-sim",
                            "n": c["sim_n"], "accuracy_vs_plain": c["sim_accuracy_vs_plain"],
                            "model_changed": out[-1 if key == "small" else -2]["model_changed"]
                            if key == "small" else f"yes: {r['bits']}-bit quantization (same weights)",
                            "server_learns": "(simulation: no encryption)", "recoverable": "–",
                            "sim_s": c["sim_s_per_image"], "pbs": c["circuit"].get("programmable_bootstrap_count")})
    ric = next((x for x in out if x.get("key") == "ric"), None)
    for x in out:
        if ric and not x.get("failed"):
            for k in ("end_to_end_s", "server_s", "bytes_per_image"):
                if x.get(k) is not None and ric.get(k):
                    x[k + "_x_ric"] = x[k] / ric[k]
    return out


def markdown(rep: dict) -> str:
    L = ["# ric next to MPC and FHE private inference, measured on one machine", "",
         f"Command: `{rep['command']}`  ", f"Machine: {rep['machine']}  ", f"Date: {rep['date']}  ",
         "Task: MNIST test split, the first N images (N per row), the zoo's `mnist-cnn5`; accuracy is agreement with "
         "the plaintext model's labels. Times are seconds per image, one image at a time, 1 thread per process, "
         "`nice -n 19` on a 2-core machine shared with other jobs. Bytes: exchanged per image (ric: the ciphertext "
         "PNG up and the label down; CrypTen: exchanged between the two parties, from CrypTen's own counters; Concrete: encrypted input up and encrypted "
         "output down). Memory: peak resident set (CrypTen: both parties added).", "",
         "| peer | N | accuracy vs plaintext | client s | server s | end-to-end s | × ric | bytes / image | × ric "
         "| one-time upload | peak memory | model changed? | server learns | owner can recover the image from "
         "what the server stores |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for x in rows_of(rep):
        if x.get("failed"):
            L.append(f"| {x['peer']} | failed: {x['why']} |" + " |" * 12)
            continue
        acc = _f(100 * x["accuracy_vs_plain"], ".1f", " %") if x.get("accuracy_vs_plain") is not None else "–"
        e2e = _f(x.get("end_to_end_s"))
        if x.get("sim_s") is not None:
            e2e = f"(simulation {x['sim_s']:.3g} s; {x['pbs']:.0f} bootstraps)" if isinstance(
                x.get("pbs"), float) else f"(simulation {x['sim_s']:.3g} s)"
        L.append(f"| {x['peer']} | {x['n']} | {acc} | {_f(x.get('client_s'))} | {_f(x.get('server_s'))} | {e2e} | "
                 f"{_f(x.get('end_to_end_s_x_ric'), '.3g', '×')} | {_bytes(x.get('bytes_per_image'))} | "
                 f"{_f(x.get('bytes_per_image_x_ric'), '.3g', '×')} | {_bytes(x.get('setup_bytes'))} | "
                 f"{_f(x.get('peak_rss_mb'), '.0f', ' MiB')} | {x.get('model_changed') or '–'} | "
                 f"{x.get('server_learns') or '–'} | {x.get('recoverable') or '–'} |")
    L += ["", "Versions: " + "; ".join(f"{k}: " + ", ".join(f"{a} {b}" for a, b in v.items())
                                      for k, v in rep["versions"].items()), ""]
    L += [f"- {n}" for n in rep["notes"]]
    return "\n".join(L) + "\n"


def notes(rep: dict) -> list[str]:
    p = rep["peers"]
    out = ["What ric does not protect and the other two do: the label (ric's server computes it in the clear; "
           "the MPC and FHE servers compute it under encryption and only the client reads it), the model's "
           "weights (ric's client must hold the classifier to make a ciphertext; CrypTen secret-shares them, "
           "Concrete ML keeps them on the server), and query patterns (ric's server sees every query's label and "
           "size class, so it can profile a user's label history; the MPC and FHE servers see only that a query "
           "of fixed shape happened). ric's server stores a ciphertext the key holder decrypts bit-exactly; the "
           "MPC and FHE servers store nothing the owner could recover the image from."]
    c = p.get("crypten", {})
    if c and not c.get("failed"):
        out.append(f"CrypTen: Beaver triples from its `{c['provider']}` provider (a trusted first party, for "
                   "testing); a real deployment adds an offline phase (trusted dealer or homomorphic triples) that "
                   f"is not measured here. {c['rounds_per_image']:.0f} communication rounds per image (CrypTen's counter: "
                   "one per collective or send/receive); on a real network each adds up to a round-trip time to "
                   "the end-to-end figure (localhost here).")
    k = p.get("concrete", {})
    if k and not k.get("failed"):
        full, small = k["configs"].get("full"), k["configs"]["small"]
        if full:
            pbs_f = full["circuit"].get("programmable_bootstrap_count")
            pbs_s = small["circuit"].get("programmable_bootstrap_count")
            est = ""
            if small.get("fhe", {}).get("server_s") and isinstance(pbs_f, float) and isinstance(pbs_s, float):
                est = (f" Extrapolated, not measured: the executed configuration's server time per bootstrap "
                       f"({small['fhe']['server_s'] / pbs_s * 1e3:.2g} ms) times this count gives "
                       f"~{small['fhe']['server_s'] / pbs_s * pbs_f / 60:.0f} min per image here (larger "
                       "accumulators may cost more per bootstrap).")
            out.append(f"Concrete ML, full mnist-cnn5: compiled in {full['compile_s']:.0f} s, "
                       f"{pbs_f if not isinstance(pbs_f, float) else round(pbs_f)} programmable bootstraps per image, quantized-simulated accuracy vs the zoo "
                       f"model {100 * full['sim_accuracy_vs_plain']:.1f} % (N = {full['sim_n']}); executed only "
                       f"in simulation, no FHE timing.{est}")
        s = k["configs"]["small"]
        f = s.get("fhe", {})
        if f.get("timed_out"):
            out.append(f"Concrete ML, {s['config']}: real FHE (key generation + {k['fhe_n'] or 'the first'} image) "
                       f"did not finish in {f['after_s']:.0f} s here and was stopped: only simulation is reported.")
        elif f:
            out.append(f"Concrete ML, executed configuration ({s['config']}, trained in {k['small_train_s']:.0f} s): "
                       f"{s['circuit'].get('programmable_bootstrap_count'):.0f} bootstraps per image, compiled in "
                       f"{s['compile_s']:.0f} s, key generation {s['fhe']['keygen_s']:.1f} s, evaluation keys "
                       f"{_bytes(s['fhe']['eval_key_bytes'])} uploaded once; its float accuracy vs the zoo model "
                       f"{100 * s['float_accuracy_vs_plain']:.1f} %, FHE labels equal to simulation on "
                       f"{100 * s['fhe']['agrees_with_simulation']:.0f} % of the executed images (the simulation "
                       "models the approximate rounding's errors, not the same draw), and equal to the zoo model's "
                       f"label on {100 * s['fhe']['accuracy_vs_plain']:.0f} %.")
        out.append(f"Concrete ML simulation, {s['config']}: float accuracy vs the zoo model "
                   f"{100 * s['float_accuracy_vs_plain']:.1f} %, quantized-simulated "
                   f"{100 * s['sim_accuracy_vs_plain']:.1f} % (N = {s['sim_n']}).")
    for name, r in p.items():
        if r.get("failed"):
            out.append(f"{name} failed (rc {r['rc']}): {r['tail'][-600:]!r}")
    return out


def machine() -> str:
    cpu = ""
    try:
        cpu = next(x.split(":", 1)[1].strip() for x in Path("/proc/cpuinfo").read_text().splitlines()
                   if x.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{platform.machine()} {cpu}, {os.cpu_count()} cores (shared), Linux {platform.release()}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ric-n", type=int, default=1000)
    p.add_argument("--crypten-n", type=int, default=100)
    p.add_argument("--concrete-n", type=int, default=100)
    p.add_argument("--fhe-n", type=int, default=3)
    p.add_argument("--width", type=int, default=2)
    p.add_argument("--work", default=str(ROOT / ".peers/run"))
    p.add_argument("--out", default=str(ROOT / "docs/results/peers"))
    p.add_argument("--full-n", type=int, default=10, help="images Concrete simulates with the full network")
    p.add_argument("--epochs", type=int, default=2, help="training epochs of Concrete's small network")
    p.add_argument("--fhe-timeout", type=float, default=900)
    p.add_argument("--only", nargs="*", default=["ric", "crypten", "concrete"])
    p.add_argument("--aggregate-only", action="store_true",
                   help="rebuild the report from the JSONs the last run left under --work (no peer is run)")
    args = p.parse_args(argv)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    venv = lambda n: str(ROOT / f".peers/{n}/bin/python")  # noqa: E731
    plan = {"ric": (sys.executable, "ric_run.py", ["--n", str(args.ric_n)], 1800),
            "crypten": (venv("crypten"), "crypten_run.py", ["--n", str(args.crypten_n)], 1800),
            "concrete": (venv("concrete"), "concrete_run.py", ["--n", str(args.concrete_n), "--fhe-n",
                                                               str(args.fhe_n), "--width", str(args.width),
                                                               "--full-n", str(args.full_n), "--epochs",
                                                               str(args.epochs), "--fhe-timeout",
                                                               str(args.fhe_timeout)], 2400)}
    peers = {}
    if args.aggregate_only:
        peers = {n: json.loads((work / f"{n}.full.json").read_text()) for n in args.only
                 if (work / f"{n}.full.json").exists()}
    for name in ([] if args.aggregate_only else args.only):
        py, script, a, tmo = plan[name]
        print(f"{time.strftime('%H:%M:%S')} {name} ...", file=sys.stderr, flush=True)
        peers[name] = run_peer(name, py, script, a, work / f"{name}.json", tmo)
        print(f"{time.strftime('%H:%M:%S')} {name}: {'failed' if peers[name].get('failed') else 'ok'} "
              f"({peers[name]['run_wall_s']:.0f} s)", file=sys.stderr, flush=True)
        (work / f"{name}.full.json").write_text(json.dumps(peers[name]))
    cmdline = [x for x in (argv or sys.argv[1:]) if x != "--aggregate-only"]
    if args.aggregate_only and (work / "command.txt").exists():
        cmdline = shlex.split((work / "command.txt").read_text())
    (work / "command.txt").write_text(" ".join(shlex.quote(x) for x in cmdline))
    rep = {"command": "python benchmarks/peers/run.py " + " ".join(shlex.quote(x) for x in cmdline),
           "machine": machine(), "date": time.strftime("%Y-%m-%d"), "peers": peers,
           "versions": {k: v.get("versions", {}) for k, v in peers.items() if not v.get("failed")}}
    rep["notes"] = notes(rep)
    rep["rows"] = rows_of(rep)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    slim = {**rep, "peers": {k: {a: b for a, b in v.items() if a not in ("labels", "plain_labels")}
                             for k, v in peers.items()}}
    out.with_suffix(".json").write_text(json.dumps(slim, indent=1) + "\n")
    out.with_suffix(".md").write_text(markdown(rep))
    print(markdown(rep))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
