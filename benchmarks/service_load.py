"""The cloud service under load, crashes, abuse and hostile clients. Writes docs/results/service.{md,json}.

    python benchmarks/service_load.py                 # 2,000 requests x 16 clients, 1,000 uploads, 2 kills
    python benchmarks/service_load.py --requests 200 --uploads 100   # quick

Everything runs on 127.0.0.1: ``ric serve`` as a subprocess (one process, torch at one thread) on a free port,
and bounded request loops that stop by themselves.

* **Load:** ``--requests`` POST /v1/classify from ``--clients`` concurrent clients (one keep-alive connection
  each) over the 32 shipped samples' exact-scheme ciphertexts, with micro-batching on and off (``--no-batching``:
  one forward pass per request). Throughput, p50/p99 latency, errors (non-200 or wrong label: every label must
  equal the ciphertext's target). The rate limit is off for this part (``--rate 0``).
* **Crash:** ``--uploads`` distinct ciphertexts (the samples with a numbered, unauthenticated tEXt comment) pushed
  by 8 uploaders while the server is SIGKILLed and restarted ``--kills`` times; an upload that got no answer is
  retried (a retried upload is idempotent). Right after each kill the store folder is inspected (temp files,
  unreferenced blobs); at the end every acknowledged upload must come back byte-identical, and the store must
  hold no orphan or partial file.
* **Abuse:** no token, another tenant's token, oversized and non-PNG bodies, a plain PNG, ciphertexts naming a
  classifier the server did not load, a path as a name, a header claiming a huge image, a burst over the rate
  limit: each must get a 4xx with a JSON error, and nothing may be stored.
* **Hostile clients** (``benchmarks/service_hostile.py``): connection floods without a token and uploads that
  declare far more pixels than they send, against the old settings and today's, in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
from service_hostile import hostile_md, run_hostile  # benchmarks/ (the script's folder)

from ric.api import encrypt_files, keygen, sample_images
from ric.container import Ciphertext, read_ciphertext
from ric.keys import new_nonce
from ric.service import local
from ric.service.store import IMAGE_ID, Store

ROOT = Path(__file__).resolve().parents[1]
SIG = b"\x89PNG\r\n\x1a\n"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def pct(xs, q):
    return float(np.percentile(np.asarray(xs), q)) if xs else None


# ------------------------------------------------------------------------------------------ load
async def _load(url: str, token: str, cts: list[tuple[bytes, int]], n: int, clients: int) -> dict:
    lat: list[float] = []
    errors: dict[str, int] = {}
    counter = iter(range(n))

    async def worker():
        async with httpx.AsyncClient(timeout=60, headers={"Authorization": f"Bearer {token}",
                                                          "Content-Type": "image/png"}) as c:
            for i in counter:
                data, target = cts[i % len(cts)]
                t0 = time.perf_counter()
                try:
                    r = await c.post(url + "/v1/classify", content=data)
                    ok = r.status_code == 200 and r.json()["label"] == target
                    err = None if ok else (f"HTTP {r.status_code}" if r.status_code != 200 else "wrong label")
                except httpx.HTTPError as e:
                    err = type(e).__name__
                lat.append(time.perf_counter() - t0)
                if err:
                    errors[err] = errors.get(err, 0) + 1

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    wall = time.perf_counter() - t0
    return {"requests": n, "clients": clients, "wall_s": wall, "throughput_rps": n / wall,
            "p50_ms": 1000 * pct(lat, 50), "p99_ms": 1000 * pct(lat, 99), "mean_ms": 1000 * statistics.mean(lat),
            "errors": sum(errors.values()), "error_kinds": errors}


def run_load(work: Path, token_store: Path, token: str, cts, n: int, clients: int, batching: bool) -> dict:
    port = local.free_port()
    url = f"http://127.0.0.1:{port}"
    extra = ["--rate", "0"] + ([] if batching else ["--no-batching"])
    proc = local.start(token_store, port, *extra, log=work / f"serve-load-{batching}.log")
    try:
        asyncio.run(_load(url, token, cts, 50, min(clients, 8)))  # warm-up (not counted)
        auth = {"Authorization": f"Bearer {token}"}  # the counters need a token
        h0 = httpx.get(url + "/healthz", headers=auth).json()["batches"]
        res = asyncio.run(_load(url, token, cts, n, clients))
        h1 = httpx.get(url + "/healthz", headers=auth).json()["batches"]
    finally:
        local.stop(proc)
    req, bat = h1["requests"] - h0["requests"], h1["batches"] - h0["batches"]
    res.update(batching=batching, forward_passes=bat, mean_batch=req / bat if bat else None,
               largest_batch=h1["largest_batch"])
    return res


# ------------------------------------------------------------------------------------------ crash
def _inspect(store_dir: Path) -> dict:
    """What a crash left in the store folder (read while no server runs)."""
    db = sqlite3.connect(store_dir / "index.sqlite3")
    try:
        ids = {r[0] for r in db.execute("SELECT DISTINCT id FROM images")}
    finally:
        db.close()
    blobs = {p.name for d in (store_dir / "blobs").iterdir() if d.is_dir() for p in d.iterdir()
             if IMAGE_ID.fullmatch(p.name)}
    return {"rows": len(ids), "temp_files": len(list((store_dir / "tmp").iterdir())),
            "unreferenced_blobs": len(blobs - ids), "rows_without_blob": len(ids - blobs)}


def _with_comment(png: bytes, text: str) -> bytes:
    import struct
    import zlib

    body = b"Comment\x00" + text.encode()
    chunk = struct.pack(">I", len(body)) + b"tEXt" + body + struct.pack(">I", zlib.crc32(b"tEXt" + body))
    return png[:-12] + chunk + png[-12:]  # before IEND


def _crash_once(k: int, state: dict, store_dir: Path, port: int, serve_log: Path, url: str, token: str, blobs,
                acked_before: dict) -> dict:
    """SIGKILL the server mid-upload, look at what the crash left, restart it, and count acknowledged uploads
    that were lost or changed."""
    state["proc"].kill()  # SIGKILL, mid-upload
    state["proc"].wait()
    left = _inspect(store_dir)
    seen = serve_log.read_text(errors="replace").count("store recovery")
    r0 = time.perf_counter()
    state["proc"] = local.start(store_dir, port, "--rate", "0", log=serve_log)
    restart = time.perf_counter() - r0
    lines = [ln for ln in serve_log.read_text(errors="replace").splitlines() if "store recovery: " in ln]
    after = (json.loads(lines[-1].split("store recovery: ", 1)[1].replace("'", '"')) if len(lines) > seen else
             {"temp_files_removed": 0, "orphan_blobs_quarantined": 0, "rows_without_blob": 0})
    with httpx.Client(timeout=30, headers={"Authorization": f"Bearer {token}"}) as c:
        lost = sum(c.get(f"{url}/v1/images/{h}").content != blobs[i] for i, h in acked_before.items())
    log(f"  kill {k + 1}: {len(acked_before)} acknowledged; crash left {left}; restarted in {restart:.1f} s; "
        f"lost {lost}")
    return {"kill": k + 1, "acknowledged_before_kill": len(acked_before), "left_by_kill": left,
            "removed_on_restart": after, "restart_s": restart, "acknowledged_lost_or_changed": lost}


def run_crash(work: Path, cts, uploads: int, kills: int, uploaders: int = 8) -> dict:
    store_dir = work / "crash-store"
    st = Store(store_dir)
    token = st.add_token("owner")
    st.close()
    blobs = [_with_comment(cts[i % len(cts)][0], f"upload {i}") for i in range(uploads)]
    port = local.free_port()
    url = f"http://127.0.0.1:{port}"
    serve_log = work / "serve-crash.log"
    state = {"proc": local.start(store_dir, port, "--rate", "0", log=serve_log)}
    acked: dict[int, str] = {}
    lock = threading.Lock()
    todo = iter(range(uploads))
    retries = [0]
    failures: list[str] = []
    deadline = time.monotonic() + 900

    def uploader():
        with httpx.Client(timeout=30, headers={"Authorization": f"Bearer {token}"}) as c:
            for i in todo:
                while True:
                    if time.monotonic() > deadline:
                        failures.append(f"upload {i}: gave up (deadline)")
                        break
                    try:
                        r = c.post(url + "/v1/images", content=blobs[i], params={"name": f"u{i:04d}.png"},
                                   headers={"Content-Type": "image/png"})
                        if r.status_code in (200, 201):
                            with lock:
                                acked[i] = r.json()["id"]
                            break
                        if r.status_code < 500:
                            failures.append(f"upload {i}: HTTP {r.status_code} {r.text[:100]}")
                            break
                    except httpx.HTTPError:
                        pass
                    with lock:
                        retries[0] += 1
                    time.sleep(0.1)

    threads = [threading.Thread(target=uploader) for _ in range(uploaders)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    kill_at = [int(uploads * (k + 1) / (kills + 1)) for k in range(kills)]
    events = []
    for k, at in enumerate(kill_at):
        while len(acked) < at and any(t.is_alive() for t in threads):
            time.sleep(0.005)
        with lock:
            acked_before = dict(acked)
        events.append(_crash_once(k, state, store_dir, port, serve_log, url, token, blobs, acked_before))
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    with httpx.Client(timeout=60, headers={"Authorization": f"Bearer {token}"}) as c:
        identical = sum(c.get(f"{url}/v1/images/{h}").content == blobs[i] for i, h in acked.items())
        listed = c.get(url + "/v1/images", params={"limit": 10000}).json()["total"]
    local.stop(state["proc"])
    st = Store(store_dir)
    chk = st.check()
    st.close()
    recovery = [ln.strip() for ln in serve_log.read_text(errors="replace").splitlines() if "store recovery" in ln]
    return {"uploads": uploads, "uploaders": uploaders, "kills": kills, "wall_s": wall, "acknowledged": len(acked),
            "byte_identical": identical, "listed": listed, "retries": retries[0], "failures": failures[:20],
            "events": events, "recovery_log": recovery,
            "final_check": {"rows": chk["rows"], "blobs": chk["blobs"], "missing": len(chk["missing"]),
                            "corrupt": len(chk["corrupt"]), "orphans": len(chk["orphans"]),
                            "temp_files": len(chk["temp_files"])}}


# ------------------------------------------------------------------------------------------ abuse
def _fake_ct(classifier: str) -> bytes:
    px = np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    return Ciphertext(px, "", new_nonce(), 1, "0" * 16, tag=b"\x01" * 32, classifier=classifier, scheme="exact",
                      bits=6).to_png()


def run_abuse(work: Path, cts) -> dict:
    import struct
    import zlib

    store_dir = work / "abuse-store"
    st = Store(store_dir)
    ta, tb = st.add_token("alice"), st.add_token("bob")
    st.close()
    port = local.free_port()
    url = f"http://127.0.0.1:{port}"
    proc = local.start(store_dir, port, log=work / "serve-abuse.log")  # default limits, rate limit on
    good = cts[0][0]
    plain = SIG + b"".join(good[p:p + 12 + struct.unpack(">I", good[p:p + 4])[0]] for p in _chunks(good)
                           if good[p + 4:p + 8] != b"tEXt")
    ihdr = struct.pack(">IIBBBBB", 20000, 20000, 8, 2, 0, 0, 0)
    huge = SIG + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\0" * 64)) + _chunk(b"IEND", b"")
    rows = []
    try:
        with httpx.Client(timeout=60) as c:
            A = {"Authorization": f"Bearer {ta}"}
            B = {"Authorization": f"Bearer {tb}"}
            rec = c.post(url + "/v1/images", content=good, params={"name": "mine.png"}, headers=A).json()
            before = _inspect(store_dir)

            def case(what, method, path, headers=None, **kw):
                r = c.request(method, url + path, headers=headers or {}, **kw)
                try:
                    body = r.json()
                except ValueError:
                    body = {}
                rows.append({"case": what, "status": r.status_code, "error": body.get("error"),
                             "message": body.get("message"),
                             "ok": 400 <= r.status_code < 500 and bool(body.get("error")) and bool(body.get("message"))})

            up = "/v1/images"
            case("no token", "POST", up, content=good, params={"name": "a.png"})
            case("unknown token", "POST", up, headers={"Authorization": "Bearer ric_" + "x" * 43}, content=good)
            case("other tenant's token: GET alice's image", "GET", f"{up}/{rec['id']}", B)
            case("other tenant's token: DELETE alice's image", "DELETE", f"{up}/{rec['id']}", B)
            case("oversized body (9 MiB > 8 MiB)", "POST", up, A, content=good + b"\0" * (9 << 20),
                 params={"name": "a.png"})
            case("non-PNG body", "POST", up, A, content=b"GIF89a" + b"\0" * 100, params={"name": "a.png"})
            case("plain PNG (no RIC metadata)", "POST", up, A, content=plain, params={"name": "a.png"})
            case("ciphertext naming os:system", "POST", up, A, content=_fake_ct("os:system@0123456789abcdef"),
                 params={"name": "a.png"})
            case("ciphertext naming an unloaded classifier", "POST", up, A,
                 content=_fake_ct("faces-dlibface@0123456789abcdef"), params={"name": "a.png"})
            case("ciphertext naming svhn-cnn7 with another fingerprint", "POST", up, A,
                 content=_fake_ct("svhn-cnn7@" + "f" * 16), params={"name": "a.png"})
            case("header claims 20000x20000 pixels", "POST", up, A, content=huge, params={"name": "a.png"})
            case("name with a path (../x.png)", "POST", up, A, content=cts[1][0], params={"name": "../x.png"})
            case("classify: ciphertext naming os:system", "POST", "/v1/classify", A,
                 content=_fake_ct("os:system@0123456789abcdef"))
            case("32x32 ciphertext with a 7 MiB private chunk", "POST", up, A, params={"name": "a.png"},
                 content=good[:-12] + _chunk(b"prVt", b"\0" * (7 << 20)) + good[-12:])
            case("list with label=99999999999999999999", "GET", up, A, params={"label": "99999999999999999999"})
            after = _inspect(store_dir)
            n_a = c.get(url + up, headers=A).json()["total"]
            n_b = c.get(url + up, headers=B).json()["total"]
            burst = [c.get(url + up, headers=B).status_code for _ in range(150)]
            r429 = c.get(url + up, headers=B)
            rows.append({"case": "150 requests in a burst (limit 50/s, burst 100)", "status": r429.status_code,
                         "error": r429.json().get("error") if r429.status_code == 429 else None,
                         "message": f"{burst.count(429)} of 150 answered 429, then: "
                                    f"{r429.json().get('message') if r429.status_code == 429 else r429.status_code} "
                                    f"(Retry-After {r429.headers.get('retry-after')} s)",
                         "ok": 429 in burst and r429.status_code == 429 and set(burst) <= {200, 429}})
            still_mine = c.get(f"{url}{up}/{rec['id']}", headers=A).content == good
    finally:
        local.stop(proc)
    nothing_stored = (before == after and n_a == 1 and n_b == 0 and still_mine)
    return {"cases": rows, "all_4xx_json": all(r["ok"] for r in rows), "nothing_stored": nothing_stored,
            "store_before": before, "store_after": after}


def _chunks(png: bytes):
    import struct

    p = len(SIG)
    while p < len(png):
        yield p
        p += 12 + struct.unpack(">I", png[p:p + 4])[0]


def _chunk(typ: bytes, body: bytes) -> bytes:
    import struct
    import zlib

    return struct.pack(">I", len(body)) + typ + body + struct.pack(">I", zlib.crc32(typ + body))


# ------------------------------------------------------------------------------------------ report
def write_report(out: Path, rep: dict) -> None:
    (out / "service.json").write_text(json.dumps(rep, indent=1) + "\n")
    on, off = rep["load"]["batching_on"], rep["load"]["batching_off"]
    cr, ab = rep["crash"], rep["abuse"]
    L = [
        "# The cloud service: load, crash, abuse and hostile clients",
        "",
        f"`{rep['command']}` — {rep['machine']}, load average {rep['load_average_at_start']} when it began (the "
        f"cores are shared with other work); {rep['date']}; {rep['wall_s'] / 60:.1f} min in all. Server: "
        "`ric serve` on 127.0.0.1 (one uvicorn process, torch at 1 thread, classifier `svhn-cnn7`); the load "
        "generator runs on the same 2 cores.",
        "",
        "## Load: POST /v1/classify",
        "",
        f"{on['requests']:,} requests from {on['clients']} concurrent clients (one keep-alive connection each), "
        "exact-scheme ciphertexts of the 32 shipped SVHN samples, every label checked against the ciphertext's "
        "target; rate limit off for this part; 50 warm-up requests not counted.",
        "",
        "| micro-batching | throughput | p50 latency | p99 latency | errors | forward passes | mean batch |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in (("on (up to 64, 2 ms wait)", on), ("off (one pass per request)", off)):
        L.append(f"| {name} | {r['throughput_rps']:.1f} req/s | {r['p50_ms']:.1f} ms | {r['p99_ms']:.1f} ms | "
                 f"{r['errors']} | {r['forward_passes']:,} | {r['mean_batch']:.2f} |")
    L += [
        "",
        f"Micro-batching: {on['throughput_rps'] / off['throughput_rps']:.2f}× the throughput, p99 "
        f"{on['p99_ms']:.0f} ms against {off['p99_ms']:.0f} ms.",
        "",
        "## Crash: uploads while the server is SIGKILLed",
        "",
        f"{cr['uploads']:,} distinct ciphertexts pushed by {cr['uploaders']} concurrent uploaders; the server was "
        f"killed with SIGKILL {cr['kills']} times mid-upload and restarted on the same store; an upload without an "
        f"answer was retried ({cr['retries']} retries in all; a retried upload is idempotent). "
        f"{cr['wall_s']:.1f} s in all.",
        "",
        "| kill | acknowledged before | left by the kill: temp files / unreferenced blobs / rows without blob | "
        "on restart: temp files removed / blobs quarantined / rows without blob | restart | acknowledged lost or "
        "changed |",
        "|---|---|---|---|---|---|",
    ]
    for e in cr["events"]:
        a, b = e["left_by_kill"], e["removed_on_restart"]
        L.append(f"| {e['kill']} | {e['acknowledged_before_kill']} | {a['temp_files']} / {a['unreferenced_blobs']} / "
                 f"{a['rows_without_blob']} | {b['temp_files_removed']} / {b['orphan_blobs_quarantined']} / "
                 f"{b['rows_without_blob']} | {e['restart_s']:.1f} s | {e['acknowledged_lost_or_changed']} |")
    fc = cr["final_check"]
    L += [
        "",
        f"At the end: **{cr['acknowledged']:,} of {cr['uploads']:,} uploads acknowledged, {cr['byte_identical']:,} "
        f"byte-identical** when pulled; {cr['listed']:,} listed; the store holds {fc['rows']:,} rows and "
        f"{fc['blobs']:,} blobs, {fc['missing']} missing, {fc['corrupt']} corrupt, {fc['orphans']} orphan blobs, "
        f"{fc['temp_files']} temp files. Failures: {len(cr['failures'])}.",
        "",
        "## Abuse",
        "",
        "Server with its default limits (8 MiB bodies, 4 Mpx images, 50 requests/s per tenant with bursts of 100, "
        "classifier `svhn-cnn7` only). Tenant alice has one image; bob has none.",
        "",
        "| case | status | error | message |",
        "|---|---|---|---|",
    ]
    for r in ab["cases"]:
        msg = (r["message"] or "").replace("|", "\\|").replace("<", "&lt;")
        L.append(f"| {r['case']} | {r['status']} | `{r['error']}` | {msg} |")
    L += [
        "",
        f"Every case a 4xx with a JSON error: **{'yes' if ab['all_4xx_json'] else 'NO'}**. Nothing stored "
        f"(store folder and both tenants' listings unchanged, alice's image intact): "
        f"**{'yes' if ab['nothing_stored'] else 'NO'}**.",
        "",
    ]
    L += hostile_md(rep["hostile"])
    (out / "service.md").write_text("\n".join(L))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--uploads", type=int, default=1000)
    ap.add_argument("--kills", type=int, default=2)
    ap.add_argument("--out", type=Path, default=ROOT / "docs/results")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    load0 = round(os.getloadavg()[0], 2)  # the cores are shared: how busy they were when the run began
    with tempfile.TemporaryDirectory(prefix="ric-service-bench-") as tmp:
        work = Path(tmp)
        files, _ = sample_images()
        key = keygen(work / "secret.key")
        log("encrypting the 32 samples (exact scheme)")
        rows = encrypt_files(files, work / "ct", key)
        assert all(r["status"] == "encrypted" for r in rows)
        cts = [(p.read_bytes(), read_ciphertext(p).target) for p in sorted((work / "ct").iterdir())]
        st = Store(work / "load-store")
        token = st.add_token("load")
        st.close()
        load = {}
        for batching in (True, False):
            log(f"load: {args.requests} requests, {args.clients} clients, batching {'on' if batching else 'off'}")
            load["batching_on" if batching else "batching_off"] = r = run_load(
                work, work / "load-store", token, cts, args.requests, args.clients, batching)
            log(f"  {r['throughput_rps']:.1f} req/s, p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, "
                f"errors {r['errors']}, mean batch {r['mean_batch']:.2f}")
        log(f"crash: {args.uploads} uploads, {args.kills} SIGKILLs")
        crash = run_crash(work, cts, args.uploads, args.kills)
        log(f"  acknowledged {crash['acknowledged']}, identical {crash['byte_identical']}, final {crash['final_check']}")
        log("abuse")
        abuse = run_abuse(work, cts)
        log(f"  all 4xx+JSON: {abuse['all_4xx_json']}, nothing stored: {abuse['nothing_stored']}")
        hostile = run_hostile(work, log)
    import torch

    rep = {"command": "python benchmarks/service_load.py" + ("" if argv is None and len(sys.argv) == 1 else
                                                             " " + " ".join(sys.argv[1:] if argv is None else argv)),
           "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}, "
                      f"torch {torch.__version__}",
           "date": time.strftime("%Y-%m-%d"), "wall_s": time.perf_counter() - t0, "load_average_at_start": load0,
           "load": load, "crash": crash, "abuse": abuse, "hostile": hostile}
    args.out.mkdir(parents=True, exist_ok=True)
    write_report(args.out, rep)
    log(f"wrote {args.out}/service.md (+ .json)")
    ok = (load["batching_on"]["errors"] == 0 and load["batching_off"]["errors"] == 0
          and crash["byte_identical"] == crash["acknowledged"] == args.uploads
          and not any(crash["final_check"][k] for k in ("missing", "corrupt", "orphans", "temp_files"))
          and abuse["all_4xx_json"] and abuse["nothing_stored"]
          and hostile["after"]["flood"]["silent_300"]["ok"] == 20
          and hostile["after"]["zeros"]["growth_mib"] < 1024)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
