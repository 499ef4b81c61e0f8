"""Build the documentation site and check it: its numbers, and every page in a real headless browser.

1. Numbers: every measured-looking number (a decimal, a percentage, a thousands-separated count) in the
   hand-written pages and the README must appear in a file written by a benchmark (``docs/results/``,
   ``docs/security*.md``).
   Numbers inside code are skipped (commands and options), as are the few settings listed in ``ALLOWED``.
2. Build: ``mkdocs build --strict`` into a temporary folder (or ``--site DIR``: a site already built).
3. Browser (Debian's ``chromium``): serves the site on a free 127.0.0.1 port and loads every page with
   ``--dump-dom``: each must render its title and text, and every image it shows must exist. The quickstart
   must show the data owner's commands and the zoo every shipped bundle; both are screenshotted into
   ``docs/assets/`` (``--screenshots``), and a blank screenshot fails.

Exit 0 when everything passes, 1 otherwise. ``.ci/run`` runs it when ``chromium`` is installed.

    python scripts/check_docs.py [--site DIR] [--screenshots docs/assets] [--no-browser] [--chromium chromium]
"""

from __future__ import annotations

import argparse
import functools
import html
import http.server
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import unquote, urljoin, urlparse

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
GENERATED_BY_BENCHMARKS = ("results", "security", "training-logs", "security.md", "security_quick.md")
# settings and facts, not measurements: Python/PyTorch versions, the SRL weight α, the exact scheme's κ
ALLOWED = {"3.10", "2.4", "0.8"}

NUMBER = re.compile(r"(?<![\w.])[-−]?(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+\.\d+|\d+(?=\s?%))")


def _norm(token: str) -> str:
    return token.replace(",", "").lstrip("-−")


def handwritten_pages() -> list[Path]:
    out = [ROOT / "README.md"]
    for p in sorted(DOCS.rglob("*.md")):
        rel = p.relative_to(DOCS)
        if rel.parts[0] in GENERATED_BY_BENCHMARKS:
            continue
        out.append(p)
    return out


def _prose(text: str) -> str:
    """The text without fenced code blocks, inline code, link targets and image paths."""
    text = re.sub(r"^(```|~~~).*?^\1", "", text, flags=re.S | re.M)
    text = re.sub(r"`[^`\n]*`", "", text)
    text = re.sub(r"\]\([^)]*\)", "]", text)
    return re.sub(r"\{[^}\n]*\}", "", text)  # attribute lists


def check_numbers() -> list[str]:
    """Numbers on hand-written pages that no benchmark-written file contains."""
    sources = [p for p in (DOCS / "results").rglob("*") if p.suffix in (".md", ".json")]
    sources += sorted(DOCS.glob("security*.md"))
    known: set[str] = set()
    for p in sources:
        text = p.read_text(encoding="utf-8")
        known.update(_norm(m.group(1)) for m in NUMBER.finditer(text))
        known.update(re.findall(r"\d+(?:\.\d+)?", text))  # plain counts too: "1879" matches "1,879"
        # JSON keeps more digits than the tables: also accept its values rounded as the tables print them
        if p.suffix == ".json":
            for m in re.finditer(r"-?\d+\.\d+(?:e-?\d+)?", p.read_text(encoding="utf-8")):
                v = float(m.group(0))
                for digits in (1, 2, 3, 4):
                    known.add(f"{abs(v):.{digits}f}")
                    known.add(f"{abs(100 * v):.{digits}f}")
    missing = []
    for page in handwritten_pages():
        for m in NUMBER.finditer(_prose(page.read_text(encoding="utf-8"))):
            n = _norm(m.group(1))
            if n not in known and n not in ALLOWED:
                missing.append(f"{page.relative_to(ROOT)}: {m.group(0)}")
    return missing


def build(site: Path) -> float:
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(site)], cwd=ROOT,
                       env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"mkdocs build --strict failed:\n{r.stdout[-3000:]}{r.stderr[-3000:]}")
    return time.perf_counter() - t0


def chromium(binary: str, profile: Path, url: str, *args: str, timeout: float = 90) -> str:
    """scripts/check_page.py's chromium call, with a shorter script budget (the docs pages are static)."""
    from check_page import chromium as run

    return run(binary, profile, url, *args, timeout=timeout, budget_ms=5000)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # no access log on stderr
        pass


def serve(site: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(site)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}/"


def site_pages(site: Path) -> list[str]:
    """Every page of the built site as a URL path ('' for the home page), without search and 404."""
    pages = []
    for p in sorted(site.rglob("index.html")):
        rel = p.parent.relative_to(site).as_posix()
        if rel.startswith(("search", "assets")):
            continue
        pages.append("" if rel == "." else rel + "/")
    return pages


def _text(dom: str) -> str:
    m = re.search(r"<article[^>]*>(.*)</article>", dom, flags=re.S)
    body = m.group(1) if m else ""
    body = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", body, flags=re.S)
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body))).strip()


def _blank(png: Path) -> bool:
    from PIL import Image, ImageStat

    with Image.open(png) as im:
        stat = ImageStat.Stat(im.convert("L"))
    return stat.stddev[0] < 5.0


def _small_png(src: Path, dst: Path) -> None:
    """A palette copy of a screenshot (a quarter of the size; the site's flat colours survive it)."""
    from PIL import Image

    with Image.open(src) as im:
        im.convert("RGB").quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(dst, optimize=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--site", type=Path, help="a site already built by `mkdocs build` (default: build one now)")
    ap.add_argument("--screenshots", type=Path, default=DOCS / "assets",
                    help="where screenshot-quickstart.png and screenshot-zoo.png go")
    ap.add_argument("--chromium", default=shutil.which("chromium") or shutil.which("chromium-browser") or "chromium")
    ap.add_argument("--no-browser", action="store_true", help="numbers and build only")
    args = ap.parse_args(argv)

    failures: list[str] = []

    def check(ok: bool, what: str) -> None:
        print(f"{'ok  ' if ok else 'FAIL'} {what}")
        if not ok:
            failures.append(what)

    missing = check_numbers()
    for line in missing:
        print(f"     not in docs/results or docs/security*.md: {line}")
    check(not missing, f"every number on the hand-written pages comes from a benchmark file ({len(missing)} not)")

    with tempfile.TemporaryDirectory(prefix="ric-docs-") as tmp:
        t = Path(tmp)
        site = args.site
        if site is None:
            site = t / "site"
            secs = build(site)
            check(True, f"mkdocs build --strict ({secs:.1f} s)")
        if args.no_browser:
            return _finish(failures)

        sys.path.insert(0, str(ROOT / "scripts"))
        from docs_hooks import shipped_bundles

        bundles = [b["name"] for b in shipped_bundles()]
        httpd, base = serve(site)
        try:
            pages = site_pages(site)
            check(len(pages) >= 15, f"{len(pages)} pages in the built site")
            for i, page in enumerate(pages):
                url = urljoin(base, page)
                dom = chromium(args.chromium, t / f"profile{i}", url, "--dump-dom")
                text = _text(dom)
                title = re.search(r"<h1[^>]*>(.*?)</h1>", dom, flags=re.S)
                imgs = re.findall(r'<img [^>]*src="([^"]+)"', re.search(r"<article.*</article>", dom, re.S).group(0)
                                  if "<article" in dom else "")
                gone = [s for s in imgs if not s.startswith("data:")
                        and not (site / unquote(urlparse(urljoin(url, s)).path).lstrip("/")).is_file()]
                ok = bool(title) and len(text) > 200 and "404 - Not found" not in dom and not gone
                name = html.unescape(re.sub("<[^>]+>", "", title.group(1))).strip(" ¶") if title else "NO TITLE"
                check(ok, f"/{page}: {name!r}, "
                          f"{len(text)} characters, {len(imgs)} images" + (f", missing {gone}" if gone else ""))
                if page == "quickstart/":
                    need = ["ric demo", "ric keygen", "ric encrypt", "ric decrypt", "ric classify"]
                    check(all(n in text for n in need), "quickstart shows the demo and the data owner's commands")
                if page == "zoo/":
                    lost = [b for b in bundles if f'id="{b}"' not in dom]
                    check(bool(bundles) and not lost,
                          f"zoo shows all {len(bundles)} shipped bundles" + (f"; missing {lost}" if lost else ""))
                if page == "cli/":
                    check("usage: ric encrypt" in text and "usage: ric serve token add" in text,
                          "CLI reference renders the subcommands' help")
                if page == "api/":
                    check(all(f"ric.{m}" in text for m in ("api", "schemes.exact", "keys", "container", "client")),
                          "API reference renders the modules' docstrings")
            args.screenshots.mkdir(parents=True, exist_ok=True)
            for page, name in (("quickstart/", "screenshot-quickstart.png"), ("zoo/", "screenshot-zoo.png")):
                shot = t / name
                chromium(args.chromium, t / f"shot-{name}", urljoin(base, page), "--hide-scrollbars",
                         "--window-size=1280,900", f"--screenshot={shot}")
                ok = shot.is_file() and shot.stat().st_size > 20_000 and not _blank(shot)
                check(ok, f"screenshot of /{page} ({shot.stat().st_size if shot.is_file() else 0} bytes, not blank)")
                if ok:
                    _small_png(shot, args.screenshots / name)
                    print(f"     -> {args.screenshots / name}")
        finally:
            httpd.shutdown()
    return _finish(failures)


def _finish(failures: list[str]) -> int:
    print("docs check: " + ("passed" if not failures else f"{len(failures)} FAILED"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
