"""The security report renders from its stored results alone: ``render`` of docs/results/security[_quick].json
(with the scramble_kpa results, as ``run_security`` adds them) is exactly the stored docs/security[_quick].md.
``RIC_GENERATE_EXPECTED=1`` writes the pages again from the stored results (after a wording change of the renderers;
the numbers stay those of the run)."""

import json
import os
from pathlib import Path

import pytest

from ric.security.render import render

DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.mark.parametrize("suffix", ["_quick", ""], ids=["quick", "full"])
def test_stored_results_render_to_the_stored_report(suffix):
    rep = json.loads((DOCS / f"results/security{suffix}.json").read_text())
    sk = DOCS / "results/scramble_kpa.json"
    if sk.is_file():
        rep["scramble_kpa"] = json.loads(sk.read_text())
    md, page = render(rep), DOCS / f"security{suffix}.md"
    if os.environ.get("RIC_GENERATE_EXPECTED") == "1":
        page.write_text(md)
    assert md == page.read_text(), f"{page} is not what the renderers make of its results (RIC_GENERATE_EXPECTED=1)"


def test_renderers_import_no_runner():
    import ast

    import ric.security.exact_render as er
    import ric.security.render as r
    import ric.security.text as t

    runners = {"ric.security.report", "ric.security.exact_report", "ric.security.runs"}
    for mod in (r, er, t):
        tree = ast.parse(Path(mod.__file__).read_text())
        imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert not imported & runners, (mod.__name__, imported & runners)
