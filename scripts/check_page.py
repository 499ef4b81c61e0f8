"""Check the service's page (/) in a real headless browser (Debian's chromium).

Starts ``ric serve`` on a free 127.0.0.1 port with a fresh store, encrypts the shipped samples, pushes them as one
tenant, then loads the page in chromium three times: with the token in the URL fragment (``/#token=...``: every
stored ciphertext must be shown, grouped by the labels the API reports), without a token (the token form), and
with a wrong token (an error, no images), and ``/docs`` (Swagger UI, offline). Keeps a screenshot in
docs/results/service_page.png. Exit 0 when every check passes, 1 otherwise. .ci/run runs it when ``chromium`` is
installed (``apt-get install -y chromium``).

    python scripts/check_page.py [--screenshot docs/results/service_page.png] [--chromium chromium]
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def chromium(binary: str, profile: Path, url: str, *args: str, timeout: float = 90, budget_ms: int = 15000) -> str:
    """Run headless chromium on ``url`` (``budget_ms`` of virtual time for scripts) and return its stdout."""
    cmd = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--no-first-run", "--disable-extensions", "--disable-sync",
           f"--user-data-dir={profile}", f"--virtual-time-budget={budget_ms}", *args, url]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"chromium exited with {r.returncode}: {r.stderr[-1000:]}")
    return r.stdout


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--screenshot", type=Path, default=ROOT / "docs/results/service_page.png")
    ap.add_argument("--chromium", default=shutil.which("chromium") or shutil.which("chromium-browser") or "chromium")
    args = ap.parse_args(argv)

    from ric.api import encrypt_files, keygen, sample_images
    from ric.client import Cloud, push_files
    from ric.service import local
    from ric.service.store import Store

    failures: list[str] = []

    def check(ok: bool, what: str) -> None:
        print(f"{'ok  ' if ok else 'FAIL'} {what}")
        if not ok:
            failures.append(what)

    with tempfile.TemporaryDirectory(prefix="ric-page-") as tmp:
        t = Path(tmp)
        files, _ = sample_images()
        key = keygen(t / "secret.key")
        rows = encrypt_files(files, t / "ct", key)
        assert all(r["status"] == "encrypted" for r in rows), rows
        store = Store(t / "store")
        token = store.add_token("owner")
        store.close()
        port = local.free_port()
        url = f"http://127.0.0.1:{port}"
        proc = local.start(t / "store", port, log=t / "serve.log")
        try:
            with Cloud(url, token) as cloud:
                push_files([t / "ct"], cloud)
                listing = cloud.list()
            want = Counter(r["label"] for r in listing)
            dom = chromium(args.chromium, t / "profile1", f"{url}/#token={token}", "--dump-dom")
            check('data-state="ready"' in dom, "page finished loading with the token from the URL fragment")
            figures = re.findall(r'<figure data-id="([0-9a-f]{64})" data-label="(\d+)"', dom)
            imgs = re.findall(r'<img [^>]*src="blob:', dom)
            check(len(figures) == len(listing) == len(imgs) == len(files),
                  f"{len(figures)} thumbnails shown ({len(imgs)} loaded) for {len(listing)} stored ciphertexts")
            check({i for i, _ in figures} == {r["id"] for r in listing}, "the thumbnails are the stored images")
            groups = {int(a): int(b) for a, b in re.findall(r'<section class="group" data-label="(\d+)" '
                                                            r'data-count="(\d+)"', dom)}
            check(groups == dict(want), f"groups by label match the API: {dict(sorted(groups.items()))}")
            check(all(int(lab) == next(r["label"] for r in listing if r["id"] == i) for i, lab in figures),
                  "every thumbnail sits under its own label")
            m = re.search(r'id="summary"[^>]*>([^<]*)<', dom)
            check(bool(m) and m.group(1) == f"{len(listing)} ciphertexts in {len(want)} labels",
                  f"summary line: {m.group(1) if m else None!r}")
            check(token not in dom, "the token does not appear in the page")

            dom = chromium(args.chromium, t / "profile2", f"{url}/", "--dump-dom")
            check('data-state="login"' in dom and "<figure" not in dom, "without a token: the token form, no images")
            dom = chromium(args.chromium, t / "profile3", f"{url}/#token=ric_wrong", "--dump-dom")
            check('data-state="error"' in dom and "<figure" not in dom and "unknown or revoked token" in dom,
                  "with a wrong token: an error, no images")
            dom = chromium(args.chromium, t / "profile5", f"{url}/docs", "--dump-dom")
            check("opblock" in dom and "/v1/classify" in dom,
                  "/docs: Swagger UI rendered the API from the vendored files (no CDN)")

            args.screenshot.parent.mkdir(parents=True, exist_ok=True)
            shot = t / "page.png"
            chromium(args.chromium, t / "profile4", f"{url}/#token={token}", "--hide-scrollbars",
                     "--window-size=1100,1250", f"--screenshot={shot}")
            check(shot.is_file() and shot.stat().st_size > 10_000, f"screenshot ({shot.stat().st_size} bytes)")
            shutil.copyfile(shot, args.screenshot)
            print(f"screenshot: {args.screenshot}")
        finally:
            local.stop(proc)
    print("page check: " + ("passed" if not failures else f"{len(failures)} FAILED"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
