"""MkDocs hook (``hooks:`` in mkdocs.yml): the site's generated pages.

* ``zoo.md``: the model zoo, built from the shipped bundles' ``config.json`` and model cards (found through the
  package: ``ric.zoo`` when it exists, else ``ric.bundles``; failing both, the ``models/`` folders inside the
  installed package).
* ``cli.md``: the CLI reference, each ``ric`` subcommand's ``--help`` as rendered by ``ric.cli.build_parser``.
* On ``api.md`` (mkdocstrings), Sphinx roles left in the docstrings (``:func:`x```) are shown as plain code.

The pages are added in memory (``on_files``), never written into ``docs/``, so ``mkdocs build --strict`` and
``mkdocs serve`` from a clean checkout produce them with no manual step. ``python scripts/docs_hooks.py zoo|cli``
prints a page, for a quick look.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HELP_WIDTH = 100  # columns of the rendered --help text


def _import_ric():
    """Import ``ric``, from the installed package or, failing that, from this checkout's ``src/``."""
    try:
        return importlib.import_module("ric")
    except ImportError:
        sys.path.insert(0, str(ROOT / "src"))
        return importlib.import_module("ric")


# ---------------------------------------------------------------- the model zoo


def shipped_bundles() -> list[dict]:
    """Config of every shipped bundle (with ``path``), sorted by name, wherever the package keeps them."""
    _import_ric()
    for name in ("ric.zoo.bundles", "ric.zoo", "ric.bundles"):
        try:
            mod = importlib.import_module(name)
        except ImportError:
            continue
        fn = getattr(mod, "shipped", None)
        if callable(fn):
            rows = fn()
            if rows:
                return sorted(rows, key=lambda r: r["name"])
    # last resort: scan the installed package for <...>/models/<name>/config.json
    spec = importlib.util.find_spec("ric")
    rows = []
    for base in spec.submodule_search_locations or []:
        for cfg in sorted(Path(base).glob("**/models/*/config.json")):
            c = json.loads(cfg.read_text())
            c.setdefault("name", cfg.parent.name)
            c["path"] = str(cfg.parent)
            rows.append(c)
    return sorted(rows, key=lambda r: r["name"])


def _card(folder: Path) -> str:
    """The bundle's model card (``MODEL_CARD.md``, else the first ``*.md``), or ''."""
    p = folder / "MODEL_CARD.md"
    if not p.is_file():
        cards = sorted(folder.glob("*.md"))
        if not cards:
            return ""
        p = cards[0]
    return p.read_text(encoding="utf-8")


def _demote(card: str, name: str) -> str:
    """The card under a ``##`` heading of ours: its own ``# name`` title dropped, other headings one level down."""
    out, in_code = [], False
    for i, line in enumerate(card.strip().splitlines()):
        if line.lstrip().startswith("```"):
            in_code = not in_code
        if not in_code and line.startswith("#"):
            if i == 0 and line.lstrip("#").strip().strip("`") == name:
                continue
            line = "##" + line
        out.append(line)
    return "\n".join(out).strip()


def _shape(cfg: dict) -> str:
    shp = cfg.get("input_shape") or cfg.get("image_shape")
    if not shp:
        return "—"
    return "×".join("any" if v is None else str(v) for v in shp)


def _summary_row(cfg: dict) -> str:
    kind = cfg.get("kind", "?")
    if kind == "classifier":
        what = f"classifier (`{cfg.get('arch', '?')}`)"
        n = len(cfg.get("class_names") or [])
        detail = f"{n} classes"
        acc = cfg.get("test_accuracy")
        if acc is not None:
            detail += f"; test accuracy in the card: {100 * acc:.2f} %"
    else:
        codec = (cfg.get("codec") or {}).get("name") or "?"
        what = f"RIC model (codec `{codec}`)"
        detail = f"classifier `{cfg.get('classifier', '?')}`, α = {cfg.get('alpha', '?')}"
        detail += ", scrambled" if cfg.get("scramble") else ""
    return f"| [`{cfg['name']}`](#{cfg['name']}) | {what} | {_shape(cfg)} | {detail} |"


def zoo_page() -> str:
    rows = shipped_bundles()
    ric_models = [r for r in rows if r.get("kind") == "ric"]
    classifiers = [r for r in rows if r.get("kind") == "classifier"]
    other = [r for r in rows if r.get("kind") not in ("ric", "classifier")]
    lines = [
        "# Model zoo",
        "",
        "!!! note \"Generated page\"",
        "    Built at site build time by `scripts/docs_hooks.py` from the bundles shipped inside the package "
        "(`config.json` and model card of each); `ric models` lists the same bundles. The numbers below are "
        "the model cards' own, written by the commands each card names; the same measurements are tabulated in "
        "[the classifiers table](results/classifiers.md) and [the paper's tables](results/paper_tables.md).",
        "",
        f"{len(rows)} bundles: {len(classifiers)} plaintext classifiers and {len(ric_models)} RIC models of the "
        "paper scheme. The exact scheme needs no RIC model: it uses a classifier directly "
        "(`ric encrypt -c NAME`).",
        "",
        "| name | kind | input (C×H×W) | summary |",
        "|---|---|---|---|",
    ]
    lines += [_summary_row(r) for r in classifiers + ric_models + other]
    for title, group in (("Classifiers", classifiers), ("RIC models (paper scheme)", ric_models), ("Other", other)):
        if not group:
            continue
        lines += ["", f"## {title}"]
        for cfg in group:
            name = cfg["name"]
            folder = Path(cfg["path"])
            lines += ["", f"### `{name}` {{#{name}}}", ""]
            facts = [f"kind `{cfg.get('kind', '?')}`", f"input {_shape(cfg)}"]
            if cfg.get("weights_sha256"):
                facts.append(f"weights sha256 `{cfg['weights_sha256'][:16]}…`")
            if cfg.get("preprocess"):
                pp = cfg["preprocess"]
                size = _shape({"input_shape": pp.get("size")})
                facts.append(f"declared preprocessing `{pp.get('kind', '?')}` to {size}")
            lines.append("*" + "; ".join(facts) + f"; bundle folder `{folder.parent.name}/{folder.name}/`.*")
            card = _demote(_card(folder), name)
            lines += ["", card if card else "*(no model card in this bundle)*"]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- the CLI reference


def _subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, str, argparse.ArgumentParser]]:
    """(name, one-line help, parser) of each subcommand of ``parser``, in declaration order."""
    out = []
    for action in parser._actions:  # argparse keeps no public accessor for this
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            for name, sub in action.choices.items():
                out.append((name, helps.get(name, ""), sub))
    return out


def _help(parser: argparse.ArgumentParser) -> str:
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(HELP_WIDTH)
    try:
        return parser.format_help().rstrip()
    finally:
        if old is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = old


def cli_page() -> str:
    _import_ric()
    from ric.cli import build_parser

    root = build_parser()
    lines = [
        "# CLI reference",
        "",
        "!!! note \"Generated page\"",
        "    Rendered at site build time by `scripts/docs_hooks.py` from `ric.cli.build_parser()`: each block is "
        "exactly what `ric <command> --help` prints. The [quickstart](quickstart.md) and the tutorials show the "
        "commands in use.",
        "",
        "| command | what it does |",
        "|---|---|",
    ]
    subs = _subcommands(root)
    lines += [f"| [`ric {n}`](#ric-{n}) | {h.replace('|', '/')} |" for n, h, _ in subs]
    lines += ["", "## `ric`", "", "```text", _help(root), "```"]

    def walk(prefix: str, items, depth: int) -> None:
        for name, hlp, sub in items:
            full = f"{prefix} {name}"
            anchor = full.replace(" ", "-")
            lines.extend(["", f"{'#' * depth} `{full}` {{#{anchor}}}", ""])
            if hlp:
                lines.extend([hlp[0].upper() + hlp[1:] + ("" if hlp.endswith(".") else "."), ""])
            lines.extend(["```text", _help(sub), "```"])
            walk(full, _subcommands(sub), min(depth + 1, 4))

    walk("ric", subs, 2)
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- MkDocs hook entry points

GENERATED = {"zoo.md": zoo_page, "cli.md": cli_page}


def on_files(files, config, **kwargs):
    from mkdocs.structure.files import File

    for uri, make in GENERATED.items():
        if files.get_file_from_path(uri) is not None:  # a hand-written page of that name wins
            continue
        files.append(File.generated(config, uri, content=make()))
    return files


SPHINX_ROLE = re.compile(r":(?:class|func|meth|mod|data|attr|exc|obj):(<code>)~?([^<]*</code>)")


def on_page_content(html, page, config, files, **kwargs):
    """The docstrings use Sphinx roles (``:class:`~ric.keys.SecretKey```); show them as plain code."""
    if page.file.src_uri == "api.md":
        html = SPHINX_ROLE.sub(r"\1\2", html)
    return html


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="print a generated documentation page")
    ap.add_argument("page", choices=sorted(p.removesuffix(".md") for p in GENERATED))
    args = ap.parse_args(argv)
    sys.stdout.write(GENERATED[args.page + ".md"]())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
