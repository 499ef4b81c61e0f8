"""Planning a batch job: its input files, their outputs, and what a job refuses to overwrite."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from ric.errors import InputError
from ric.imageio import list_images


def outputs(paths: list[Path], out_dir: Path, outs: list[Path] | None = None) -> list[Path]:
    """``out_dir/<stem>.png`` per input (or the given ``outs``); refuses two inputs with one output."""
    outs = [out_dir / (p.stem + ".png") for p in paths] if outs is None else outs
    seen: dict[Path, Path] = {}
    for p, o in zip(paths, outs, strict=True):
        if o in seen:
            raise InputError(f"{p} and {seen[o]} would both be written to {o}; rename one")
        seen[o] = p
    return outs


def refuse_overwriting_inputs(paths: list[Path], outs: list[Path]) -> None:
    """Raise :class:`InputError` if an output would be an input file (same resolved path, or the same file
    through a hard or symbolic link), before anything is written."""
    ins = {p.resolve() for p in paths}
    ids = set()
    for p in paths:
        try:
            st = os.stat(p)
            ids.add((st.st_dev, st.st_ino))
        except OSError:
            pass
    for o in outs:
        same = o.resolve() in ins
        if not same and os.path.lexists(o):
            try:
                st = os.stat(o)
                same = (st.st_dev, st.st_ino) in ids
            except OSError:
                pass
        if same:
            raise InputError(f"output {o} would overwrite an input file; choose another output folder (-o)")


def refuse_unproven(o: Path, what: str) -> None:
    """Raise :class:`InputError` for an existing output ``o`` that this job cannot prove it made (``what``: the
    proof it lacks)."""
    raise InputError(f"{o} exists and is not {what}, so this job did not make it; refusing to overwrite it: choose "
                     "another output folder (-o), or pass --force to replace it")


def plan_outputs(inputs: list, out_dir: str | Path, clashes: bool = True) -> tuple[list[Path], list[Path]]:
    """The input files of a batch job and their outputs ``out_dir/<stem>.png``; refuses name clashes (unless
    ``clashes=False``: decryption names a photo's output after its sealed name, and checks then) and an output that
    would overwrite an input (before anything is read or written)."""
    paths = list_images(inputs)
    outs = outputs(paths, Path(out_dir)) if clashes else [Path(out_dir) / (p.stem + ".png") for p in paths]
    refuse_overwriting_inputs(paths, outs)
    return paths, outs


def tick(progress: Callable | None, n: int = 1) -> None:
    if progress:
        progress(n)
