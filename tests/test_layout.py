"""The layout's rules, checked: no long functions, no repository paths in the package, every exception class in
``ric.errors``, no use of another module's private names, no import cycle, and the product path (keygen / encrypt /
classify / decrypt) never imports the research subpackages."""

import ast
import builtins
import subprocess
import sys
from pathlib import Path

import ric

PKG = Path(ric.__file__).resolve().parent
ROOT = Path(__file__).resolve().parents[1]  # the checkout: src/, tests/, scripts/, benchmarks/
OURS = ("ric", "tests", "scripts", "benchmarks")

# Private names still used across modules (none: keep it that way).
ALLOWED_PRIVATE: dict[str, set[str]] = {}
# Import cycles still there (none: keep it that way).
ALLOWED_CYCLES: list[set[str]] = []


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


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _is_module(dotted: str) -> bool:
    base = ROOT / "src" if dotted.split(".")[0] == "ric" else ROOT
    p = base.joinpath(*dotted.split("."))
    return p.with_suffix(".py").is_file() or (p / "__init__.py").is_file()


def private_uses(tree: ast.AST) -> set[str]:
    """``module.name`` for every private name of one of our modules that ``tree`` imports (``from m import _x``)
    or reads off an imported module (``m._x``); private submodules (``from tests import _png``) are allowed."""
    used, modules = set(), {}
    for n in ast.walk(tree):
        if isinstance(n, ast.Import):
            for a in n.names:
                modules[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
        elif isinstance(n, ast.ImportFrom) and n.level == 0 and n.module.split(".")[0] in OURS:
            for a in n.names:
                full = f"{n.module}.{a.name}"
                if _is_module(full):
                    modules[a.asname or a.name] = full
                elif _private(a.name):
                    used.add(full)
    for n in ast.walk(tree):
        if isinstance(n, ast.Attribute) and _private(n.attr):
            chain, v = [n.attr], n.value
            while isinstance(v, ast.Attribute):
                chain.append(v.attr)
                v = v.value
            if isinstance(v, ast.Name) and modules.get(v.id, "").split(".")[0] in OURS:
                used.add(".".join([modules[v.id], *reversed(chain)]))
    return used


def test_private_use_is_detected():
    code = "from ric.keys import _SALT\nfrom tests import _png\nimport ric.schemes.exact as ex\nex._HEADER.size\n"
    assert private_uses(ast.parse(code)) == {"ric.keys._SALT", "ric.schemes.exact._HEADER"}


def test_no_module_uses_another_modules_private_names():
    found = {}
    for folder in ("src/ric", "tests", "scripts", "benchmarks"):
        for p in sorted((ROOT / folder).rglob("*.py")):
            rel = str(p.relative_to(ROOT))
            extra = private_uses(ast.parse(p.read_text())) - ALLOWED_PRIVATE.get(rel, set())
            if extra:
                found[rel] = sorted(extra)
    assert not found, found
    still = {rel: names for rel, names in ALLOWED_PRIVATE.items()
             if names & private_uses(ast.parse((ROOT / rel).read_text())) != names}
    assert not still, f"no longer used, drop from ALLOWED_PRIVATE: {still}"


def import_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports (at the top or inside functions)."""
    mods = {}
    for p in PKG.rglob("*.py"):
        parts = p.relative_to(PKG.parent).with_suffix("").parts
        mods[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for m, p in mods.items():
        for n in ast.walk(ast.parse(p.read_text())):
            if isinstance(n, ast.ImportFrom) and n.level == 0 and n.module.split(".")[0] == "ric":
                targets = [f"{n.module}.{a.name}" if f"{n.module}.{a.name}" in mods else n.module for a in n.names]
            elif isinstance(n, ast.Import):
                targets = [a.name for a in n.names]
            else:
                continue
            graph[m] |= {t for t in targets if t in mods and t != m}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = {stack.pop()}
            while v not in comp:
                comp.add(stack.pop())
            if len(comp) > 1:
                found.append(comp)

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_cycles_are_detected():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]


def test_no_import_cycle():
    found = cycles(import_graph())
    assert [c for c in found if c not in ALLOWED_CYCLES] == [], found
    assert all(c in found for c in ALLOWED_CYCLES), f"gone, drop from ALLOWED_CYCLES: {ALLOWED_CYCLES}"


def scheme_name_comparisons(tree: ast.AST, names: set[str]) -> list[int]:
    """Lines where a registered scheme's name is compared with something (``==``, ``!=``, ``in``)."""
    lines = []
    for n in ast.walk(tree):
        if isinstance(n, ast.Compare):
            parts = [n.left, *n.comparators]
            if any(isinstance(p, ast.Constant) and p.value in names for p in parts):
                lines.append(n.lineno)
            for p in parts:
                if isinstance(p, (ast.Tuple, ast.List, ast.Set)) and any(
                        isinstance(e, ast.Constant) and e.value in names for e in p.elts):
                    lines.append(n.lineno)
    return lines


def test_scheme_name_comparisons_are_detected():
    tree = ast.parse("a = x == 'exact'\nb = 'paper' in y\nc = z in ('exact', 'q')\nd = x == 'other'")
    assert scheme_name_comparisons(tree, {"exact", "paper"}) == [1, 2, 3]


def test_nothing_outside_the_schemes_compares_a_scheme_name():
    """The jobs, the service, Ray and the CLI know schemes through ``Scheme`` and the registry only."""
    from ric.schemes import SCHEMES

    found = {}
    for p in sorted(PKG.rglob("*.py")):
        if "schemes" in p.relative_to(PKG).parts:
            continue
        lines = scheme_name_comparisons(ast.parse(p.read_text()), set(SCHEMES))
        if lines:
            found[str(p.relative_to(PKG))] = lines
    assert not found, found


def test_benchmarks_main_takes_argv():
    """Every benchmark is a ``main(argv=None)`` tool that parses the ``argv`` it is given."""
    wrong = []
    for p in sorted((ROOT / "benchmarks").glob("*.py")):
        tree = ast.parse(p.read_text())
        main = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "main"), None)
        parses = [n for n in ast.walk(main) if isinstance(n, ast.Call) and getattr(n.func, "attr", "") in
                  ("parse_args", "parse_known_args")] if main else []
        if not (main and [a.arg for a in main.args.args] == ["argv"] and main.args.defaults
                and parses and all(len(c.args) == 1 and getattr(c.args[0], "id", "") == "argv" for c in parses)):
            wrong.append(p.name)
    assert not wrong, wrong


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


def test_the_top_level_exports_the_safe_layer_and_every_error():
    import inspect

    from ric import errors

    classes = {n for n, o in vars(errors).items() if inspect.isclass(o) and o.__module__ == "ric.errors"}
    assert classes <= set(ric.__all__), classes - set(ric.__all__)
    for name in ("keygen", "encrypt_files", "classify_files", "decrypt_files", "Cloud", "ExactScheme", "PaperScheme"):
        assert getattr(ric, name) is not None
    for research in ("RIC", "psnr", "load_dataset", "Ciphertext"):  # primitives and research stay in subpackages
        assert research not in ric.__all__


def test_every_cli_verb_is_one_module():
    from ric import cli

    for name, mod in cli.VERBS.items():
        assert mod.__name__.startswith("ric.cli.") and callable(mod.add_arguments) and callable(mod.run), name
    out = subprocess.run([sys.executable, "-m", "ric.cli", "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and all(v in out.stdout for v in cli.VERBS)
