"""Hostile clients against ``ric serve``, before and after the hostile-peer issue (27), in the same run. Used by
``benchmarks/service_load.py`` (its "Hostile clients" section); alone it prints the JSON:

    python benchmarks/service_hostile.py

Two servers on the same store layout and classifier (``cifar10-resnet18``, which declares a resize-crop and so
accepts ciphertexts of any size), each a subprocess on 127.0.0.1 with torch at one thread:

* **before**: today's code with the settings ``ric serve`` had before the issue: uvicorn's ``limit_concurrency=128``
  (it counts connections), no request-head timeout, no per-address cap, no limit on requests in flight, no pixel
  checks (``min_bits_per_subpixel=0``) and no pixel budget. (The old code also inflated each upload twice and
  kept both copies; that part is not restored, so "before" understates the old memory use.)
* **after**: ``ric serve`` with its defaults.

Flood (no token needed): 300 connections that send nothing, from 20 loopback addresses (15 each), then 130 more
that send half a request head; a tenant makes 20 requests while they are held; then, 12 s later, how many of the
430 the server has closed; then 300 connections from a single address. Amplification (a tenant's token): 24
concurrent uploads of a 2048x2048 all-zero ciphertext (about 13 KB each), then 16 concurrent dense 2048x2048
uploads (random low 4 bits, about 6 MB each); the server's CPU seconds and peak resident memory (VmHWM, reset
before each part), the answers, and whether ``/healthz`` kept answering meanwhile.
"""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np

from ric.service import local

CLASSIFIER = "cifar10-resnet18"
OLD_LIMITS = {"min_bits_per_subpixel": 0, "queue_max_pixels": 1 << 40, "batch_max_pixels": 1 << 40,
              "max_in_flight": 0, "max_in_flight_per_tenant": 0}
OLD_SERVER = """
import json, sys
import torch, uvicorn
from ric.service.app import create_app
from ric.service.limits import Limits
torch.set_num_threads(1)
app = create_app(sys.argv[1], [sys.argv[3]], Limits(**json.loads(sys.argv[4])))
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning", limit_concurrency=128,
            timeout_keep_alive=5, server_header=False)
"""
HALF_HEAD = b"GET /healthz HTTP/1.1\r\nHost: x\r\n"


def _start(mode: str, store: Path, port: int, log: Path):
    if mode == "after":
        return local.start(store, port, "--classifier", CLASSIFIER, log=log)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-c", OLD_SERVER, str(store), str(port), CLASSIFIER,
                                 json.dumps(OLD_LIMITS)], env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while not local.healthy(f"http://127.0.0.1:{port}"):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"old-settings server did not start: {log.read_text()[-2000:]}")
        time.sleep(0.2)
    return proc


# ------------------------------------------------------------------------------------------ measurements
def _status(pid: int) -> dict:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        k, _, v = line.partition(":")
        if k in ("VmRSS", "VmHWM"):
            out[k] = int(v.split()[0]) * 1024
    return out


def _cpu_s(pid: int) -> float:
    f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def _reset_peak(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # VmHWM := VmRSS (Linux)


def _connect(port: int, src: str, head: bytes = b"") -> socket.socket:
    s = socket.socket()
    s.bind((src, 0))
    s.connect(("127.0.0.1", port))
    if head:
        s.sendall(head)
    return s


def _closed(socks) -> int:
    """How many of ``socks`` the server has closed (EOF or reset), without waiting."""
    p = select.poll()
    for s in socks:
        p.register(s, select.POLLIN | select.POLLHUP | select.POLLERR)
    n = 0
    for fd, _ in p.poll(0):
        try:
            n += socket.socket(fileno=os.dup(fd)).recv(1) == b""
        except ConnectionResetError:
            n += 1
    return n


def _tenant(url: str, token: str, n: int = 20) -> dict:
    codes: Counter = Counter()
    lat = []
    with httpx.Client(timeout=10, headers={"Authorization": f"Bearer {token}"}) as c:
        for _ in range(n):
            t0 = time.perf_counter()
            try:
                codes[str(c.get(url + "/v1/images").status_code)] += 1
            except httpx.HTTPError as e:
                codes[type(e).__name__] += 1
            lat.append(time.perf_counter() - t0)
    return {"requests": n, "ok": codes.get("200", 0), "answers": dict(codes), "max_ms": 1000 * max(lat)}


# ------------------------------------------------------------------------------------------ the two attacks
def flood(url: str, port: int, token: str, wait_s: float = 12.0) -> dict:
    socks = [_connect(port, f"127.0.0.{2 + i % 20}") for i in range(300)]
    try:
        time.sleep(0.5)
        silent = _tenant(url, token)
        socks += [_connect(port, f"127.0.0.{2 + i % 20}", HALF_HEAD) for i in range(130)]
        time.sleep(0.5)
        half = _tenant(url, token)
        time.sleep(wait_s)
        closed = _closed(socks)
    finally:
        for s in socks:
            s.close()
    one = [_connect(port, "127.0.0.99") for _ in range(300)]
    try:
        time.sleep(0.5)
        one_addr = {"refused_at_once": _closed(one), **_tenant(url, token)}
    finally:
        for s in one:
            s.close()
    return {"silent_300": silent, "half_sent_130_more": half, "closed_by_server_after_s": wait_s,
            "closed_by_server": closed, "held": 430, "one_address_300": one_addr}


def amplification(url: str, pid: int, token: str, data: bytes, n: int) -> dict:
    """``n`` concurrent POST /v1/classify of ``data``; /healthz probed every 0.25 s meanwhile."""
    probes: list = []
    stop = threading.Event()

    def probe():
        with httpx.Client(timeout=10) as c:
            while not stop.is_set():
                t0 = time.perf_counter()
                try:
                    ok = c.get(url + "/healthz").status_code == 200
                except httpx.HTTPError:
                    ok = False
                probes.append((ok, time.perf_counter() - t0))
                stop.wait(0.25)

    def one(_):
        try:
            return str(httpx.post(url + "/v1/classify", content=data, timeout=300,
                                  headers={"Authorization": f"Bearer {token}", "Content-Type": "image/png"}).status_code)
        except httpx.HTTPError as e:
            return type(e).__name__

    _reset_peak(pid)
    rss0, cpu0, t0 = _status(pid)["VmRSS"], _cpu_s(pid), time.perf_counter()
    th = threading.Thread(target=probe, daemon=True)
    th.start()
    with ThreadPoolExecutor(n) as ex:
        answers = Counter(ex.map(one, range(n)))
    wall = time.perf_counter() - t0
    stop.set()
    th.join()
    st = _status(pid)
    return {"uploads": n, "upload_bytes": len(data), "answers": dict(answers), "wall_s": wall,
            "server_cpu_s": _cpu_s(pid) - cpu0, "rss_before_mib": rss0 / 2**20, "peak_rss_mib": st["VmHWM"] / 2**20,
            "growth_mib": (st["VmHWM"] - rss0) / 2**20, "healthz_probes": len(probes),
            "healthz_ok": sum(ok for ok, _ in probes), "healthz_max_ms": 1000 * max((t for _, t in probes), default=0)}


# ------------------------------------------------------------------------------------------ report
def _answers(a: dict) -> str:
    return ", ".join(f"{n} × {k}" for k, n in sorted(a.items(), key=lambda kv: -kv[1]))


def _amp_rows(what: str, b: dict, a: dict) -> list[str]:
    return [
        f"| {what}: answers | {_answers(b['answers'])} | {_answers(a['answers'])} |",
        f"| … server CPU / wall time | {b['server_cpu_s']:.2f} s / {b['wall_s']:.1f} s | "
        f"{a['server_cpu_s']:.2f} s / {a['wall_s']:.1f} s |",
        f"| … server peak memory (growth) | {b['peak_rss_mib']:,.0f} MiB (+{b['growth_mib']:,.0f}) | "
        f"{a['peak_rss_mib']:,.0f} MiB (+{a['growth_mib']:,.0f}) |",
        f"| … `/healthz` meanwhile (every 0.25 s) | {b['healthz_ok']} of {b['healthz_probes']} answered, slowest "
        f"{b['healthz_max_ms']:.0f} ms | {a['healthz_ok']} of {a['healthz_probes']} answered, slowest "
        f"{a['healthz_max_ms']:.0f} ms |",
    ]


def hostile_md(h: dict) -> list[str]:
    """The "Hostile clients" section of docs/results/service.md."""
    b, a = h["before"], h["after"]
    fb, fa = b["flood"], a["flood"]

    def ok(r):
        return f"{r['ok']} of {r['requests']} answered 200" + ("" if r["ok"] == r["requests"] else
                                                               f" ({_answers(r['answers'])})")

    L = ["## Hostile clients", "",
         f"Both servers load `{h['classifier']}` (it declares a resize-crop, so it accepts ciphertexts of any size). "
         "**Before**: the settings `ric serve` had before the hostile-peer issue, on today's code: uvicorn's "
         "`limit_concurrency=128` (it counts connections), no request-head timeout, no per-address cap, no limit "
         "on requests in flight, no pixel checks and no pixel budget (the old double inflation of each upload is "
         "not restored, so *before* understates the old memory use). **After**: `ric serve` with its defaults. "
         "Flood clients hold no token; the uploads come with a tenant's token. Memory is the server process's "
         "peak resident set (VmHWM, reset before each part).", "",
         "| attack | before | after |", "|---|---|---|",
         f"| 300 connections that send nothing (20 addresses): a tenant's 20 requests meanwhile | "
         f"{ok(fb['silent_300'])} | {ok(fa['silent_300'])} |",
         f"| … and 130 more that send half a request head | {ok(fb['half_sent_130_more'])} | "
         f"{ok(fa['half_sent_130_more'])} |",
         f"| … of the {fa['held']}, closed by the server {fa['closed_by_server_after_s']:g} s later | "
         f"{fb['closed_by_server']} | {fa['closed_by_server']} |",
         f"| 300 connections from one address: closed at once; a tenant's 20 requests | "
         f"{fb['one_address_300']['refused_at_once']}; {ok(fb['one_address_300'])} | "
         f"{fa['one_address_300']['refused_at_once']}; {ok(fa['one_address_300'])} |"]
    L += _amp_rows(f"{b['zeros']['uploads']} concurrent uploads declaring 2048×2048 all-zero pixels "
                   f"({b['zeros']['upload_bytes']:,} B each)", b["zeros"], a["zeros"])
    L += _amp_rows(f"{b['dense']['uploads']} concurrent dense 2048×2048 uploads "
                   f"({b['dense']['upload_bytes']:,} B each)", b["dense"], a["dense"])
    L += ["", "After: the idle connections hold no request slot and are closed after the 10 s request-head "
          "timeout; one address holds at most 32 connections; an upload that declares more sub-pixels than "
          "8 × its bytes / 3 cannot be a ciphertext and is refused from its header; dense uploads beyond the "
          "budget of decoded pixels (64 Mi sub-pixels) get 503 at once instead of piling up in memory.", ""]
    return L


# ------------------------------------------------------------------------------------------ run
def _uploads(log) -> tuple[bytes, bytes]:
    from ric.classifiers import load_classifier
    from ric.container import Ciphertext
    from ric.imageio import png_bytes
    from ric.keys import new_nonce

    ident = load_classifier(CLASSIFIER).ident

    def ct(px):  # compressed as well as zlib can: the attacker's choice (ric itself writes stored blocks)
        c = Ciphertext(px, "", new_nonce(), 1, "0" * 16, tag=b"\x01" * 32, classifier=ident, scheme="exact", bits=6)
        return png_bytes(c.pixels, c.text_chunks(), 9)

    zero = ct(np.zeros((2048, 2048, 3), np.uint8))
    dense = ct(np.random.default_rng(0).integers(0, 16, (2048, 2048, 3), dtype=np.uint8))
    log(f"hostile: uploads of {len(zero):,} B (2048x2048 zeros) and {len(dense):,} B (2048x2048 dense)")
    return zero, dense


def run_hostile(work: Path, log=print) -> dict:
    from ric.service.store import Store

    zero, dense = _uploads(log)
    out = {"classifier": CLASSIFIER, "old_limits": OLD_LIMITS}
    for mode in ("before", "after"):
        store = work / f"hostile-{mode}"
        st = Store(store)
        token = st.add_token("tenant")
        st.close()
        port = local.free_port()
        url = f"http://127.0.0.1:{port}"
        proc = _start(mode, store, port, work / f"serve-hostile-{mode}.log")
        try:
            log(f"hostile ({mode}): flood")
            res = {"flood": flood(url, port, token)}
            log(f"  {res['flood']}")
            for name, data, n in (("zeros", zero, 24), ("dense", dense, 16)):
                log(f"hostile ({mode}): {n} concurrent {name} uploads")
                res[name] = amplification(url, proc.pid, token, data, n)
                log(f"  {res[name]}")
            res["after_all_healthz"] = local.healthy(url)
        finally:
            local.stop(proc)
        out[mode] = res
    return out


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory(prefix="ric-hostile-") as tmp:
        print(json.dumps(run_hostile(Path(tmp), log=lambda m: print(m, file=sys.stderr, flush=True)), indent=1))


def main(argv: list[str] | None = None) -> None:
    """Run the hostile-client measurements alone and print their Markdown (``service_load.py`` runs them in its report)."""
    import argparse
    import tempfile

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", action="store_true", help="print the results as JSON instead of Markdown")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ric-hostile-") as tmp:
        rep = run_hostile(Path(tmp), log=lambda *a: print(*a, file=sys.stderr))
    print(json.dumps(rep, indent=1) if args.json else "\n".join(hostile_md(rep)))


if __name__ == "__main__":
    main()
