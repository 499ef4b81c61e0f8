"""The layout's rules, checked: no long functions, no repository paths in the package, every exception class in
``ric.errors``, and the product path (keygen / encrypt / classify / decrypt) never imports the research
subpackages."""

import ast
import builtins
import subprocess
import sys
from pathlib import Path

import ric

PKG = Path(ric.__file__).resolve().parent


def test_no_function_over_80_lines():
    long = []
    for p in PKG.rglob("*.py"):
        for n in ast.walk(ast.parse(p.read_text())):
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.end_lineno - n.lineno + 1 > 80:
                long.append(f"{p.relative_to(PKG)}:{n.name} ({n.end_lineno - n.lineno + 1} lines)")
    assert not long, long


def test_no_repository_paths_in_the_package():
    hits = [f"{p.relative_to(PKG)}:{i}" for p in PKG.rglob("*.py")
            for i, line in enumerate(p.read_text().splitlines(), 1)
            if any(s in line for s in ("docs/results", "models/ablation", "runs/"))]
    assert not hits, hits


def test_every_exception_class_lives_in_errors():
    import ric.errors

    exceptions = {n for n, v in vars(builtins).items() if isinstance(v, type) and issubclass(v, BaseException)}
    exceptions |= {n for n, v in vars(ric.errors).items() if isinstance(v, type) and issubclass(v, BaseException)}
    outside = []
    for p in PKG.rglob("*.py"):
        if p.name == "errors.py" and p.parent == PKG:
            continue
        for n in ast.walk(ast.parse(p.read_text())):
            if isinstance(n, ast.ClassDef):
                bases = {b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in n.bases}
                if bases & exceptions:
                    outside.append(f"{p.relative_to(PKG)}:{n.name}")
    assert not outside, outside


def test_product_path_imports_no_research_code(tmp_path):
    samples = sorted((PKG / "samples").glob("*.png"))[:2]
    code = f"""
import sys
from ric.cli import main
for argv in (["keygen", "-o", "k.key"], ["encrypt", *{[str(s) for s in samples]!r}, "-o", "ct", "-k", "k.key", "-q"],
             ["classify", "ct", "-q"], ["decrypt", "ct", "-o", "rec", "-k", "k.key", "-q"]):
    assert main(argv) == 0, argv
print(sorted(m for m in sys.modules if m.split(".")[:2] in (["ric", "eval"], ["ric", "security"], ["ric", "training"])))
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout
    assert len(list((tmp_path / "rec").glob("*.png"))) == 2
