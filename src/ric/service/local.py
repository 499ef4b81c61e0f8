"""``ric serve`` as a local subprocess on 127.0.0.1 (for tests, scripts/check_page.py and benchmarks)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def healthy(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/healthz", timeout=timeout) as r:
            return r.status == 200
    except OSError:
        return False


def start(store: str | Path, port: int, *extra: str, wait: float = 120.0, log: str | Path | None = None):
    """Start ``ric serve --store STORE --port PORT EXTRA...`` (torch at one thread) and return the process once
    ``/healthz`` answers; raise ``RuntimeError`` with its output if it exits or does not come up in ``wait`` s."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 (closed with the process)
    proc = subprocess.Popen([sys.executable, "-m", "ric.cli", "serve", "--store", str(store), "--port", str(port),
                             "--log-level", "warning", *extra], env=env, stdout=out, stderr=subprocess.STDOUT)
    if log:
        out.close()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = Path(log).read_text(errors="replace")[-2000:] if log else ""
            raise RuntimeError(f"ric serve exited with {proc.returncode}: {tail}")
        if healthy(url):
            return proc
        time.sleep(0.2)
    proc.kill()
    proc.wait()
    raise RuntimeError(f"ric serve did not come up within {wait:g} s")


def stop(proc, timeout: float = 20.0) -> None:
    """SIGTERM, then SIGKILL if it does not exit within ``timeout`` s."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
