"""Model bundles: a folder holding ``model.safetensors``, ``config.json`` and ``MODEL_CARD.md``.

Shipped bundles live in ``ric/models/<name>/``; a user may also point at any folder with the same
layout. ``config["kind"]`` is ``"classifier"`` or ``"ric"`` (a codec plus its settings).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

from .errors import UnknownNameError

SHIPPED_DIR = Path(__file__).resolve().parent / "models"


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def shipped() -> list[dict]:
    """Config of every shipped bundle, sorted by name."""
    rows = []
    if SHIPPED_DIR.is_dir():
        for d in sorted(SHIPPED_DIR.iterdir()):
            cfg = d / "config.json"
            if cfg.is_file():
                c = json.loads(cfg.read_text())
                c["path"] = str(d)
                rows.append(c)
    return rows


def resolve(name_or_path: str | Path, kind: str | None = None) -> Path:
    """Folder of a bundle given a shipped name or a path."""
    p = Path(name_or_path)
    if p.is_dir() and (p / "config.json").is_file():
        return p
    d = SHIPPED_DIR / str(name_or_path)
    if (d / "config.json").is_file():
        cfg = json.loads((d / "config.json").read_text())
        if kind is None or cfg.get("kind") == kind:
            return d
    names = [c["name"] for c in shipped() if kind is None or c.get("kind") == kind]
    what = {"ric": "RIC model", "classifier": "classifier"}.get(kind or "", "model")
    raise UnknownNameError(f"unknown {what} {str(name_or_path)!r}; shipped: {', '.join(names) or 'none'}")


def resolve_shipped(name: str, kind: str) -> Path:
    """Folder of the shipped bundle called exactly ``name`` of ``kind`` (``"ric"`` or ``"classifier"``).

    For names read from files (ciphertext metadata, which anyone can write): only an exact shipped name is
    accepted, never a path, ``module:factory`` or ``torchvision:`` spec, so a file cannot choose code or
    weights. Anything else raises :class:`~ric.errors.InputError` quoting the name with ``repr``."""
    from .errors import InputError, quote

    what = {"ric": "RIC model", "classifier": "classifier"}[kind]
    rows = {c["name"]: c for c in shipped() if c.get("kind") == kind}
    if not isinstance(name, str) or name not in rows or Path(rows[name]["path"]).name != name:
        raise InputError(f"the file names {what} {quote(name)}, which is not a shipped {what}; metadata may only "
                         f"name shipped ones (shipped: {', '.join(sorted(rows)) or 'none'}); pass "
                         f"{'-m/--model' if kind == 'ric' else '-c/--classifier'} to use another")
    return Path(rows[name]["path"])


def read_config(folder: Path) -> dict:
    return json.loads((Path(folder) / "config.json").read_text())


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_bundle(folder: str | Path, state: dict, config: dict, card: str) -> Path:
    """Write a bundle (weights, config, model card) atomically file by file."""
    from safetensors.torch import save

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    atomic_write_bytes(folder / "model.safetensors", save(tensors))
    config = dict(config)
    config["weights_sha256"] = sha256_file(folder / "model.safetensors")
    atomic_write_bytes(folder / "config.json", (json.dumps(config, indent=2) + "\n").encode())
    atomic_write_bytes(folder / "MODEL_CARD.md", card.encode())
    return folder


def load_codec_weights(folder: str | Path, cfg: dict) -> dict:
    """A RIC bundle's codec weights: its own ``model.safetensors``, or those of the bundle named by
    ``codec_weights_from`` (a model that reuses another dataset's codec), checked against
    ``codec_weights_sha256``."""
    src = cfg.get("codec_weights_from")
    if not src:
        return load_weights(folder)
    other = resolve(src, kind="ric")
    got = read_config(other).get("weights_sha256", "")
    if cfg.get("codec_weights_sha256") and got != cfg["codec_weights_sha256"]:
        from .errors import InputError

        raise InputError(f"model {cfg['name']} reuses the codec of {src}, but {src}'s weights changed "
                         f"({got[:12]}… instead of {cfg['codec_weights_sha256'][:12]}…)")
    return load_weights(other)


def load_weights(folder: str | Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(Path(folder) / "model.safetensors"))
