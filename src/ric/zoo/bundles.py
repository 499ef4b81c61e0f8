"""Model bundles: a folder holding ``model.safetensors``, ``config.json`` and ``MODEL_CARD.md``.

Shipped bundles live in ``ric/zoo/models/<name>/``; a user may also point at any folder with the same
layout. ``config["kind"]`` is ``"classifier"`` or ``"ric"`` (a codec plus its settings).
"""

from __future__ import annotations

import json
from pathlib import Path

from ric.errors import UnknownNameError
from ric.files import atomic_write_bytes, sha256_file  # noqa: F401  (re-exported)

SHIPPED_DIR = Path(__file__).resolve().parent / "models"
# The shipped models of each data set: the paper scheme's RIC model, and the zoo classifier (the exact scheme's, and
# the one the RIC model was made for). Evaluation, the security report and the benchmarks all read these.
DATASET_MODELS = {"svhn": "svhn-ric-v3", "cifar10": "cifar10-ric-v2", "mnist": "mnist-ric-v2", "faces": "faces-ric-v3",
                  "tinyimagenet": "tinyimagenet-ric-v2"}
DEFAULT_MODEL = DATASET_MODELS["svhn"]  # the paper scheme's default model (ric encrypt -m, ric demo, RIC.load)
DATASET_CLASSIFIERS = {"svhn": "svhn-cnn7", "cifar10": "cifar10-resnet18", "mnist": "mnist-cnn5",
                       "faces": "faces-dlibface", "tinyimagenet": "tinyimagenet-resnet18"}
DEFAULT_CLASSIFIER = DATASET_CLASSIFIERS["svhn"]  # the exact scheme's default (ric encrypt -c, the service)


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
    from ric.errors import InputError, quote

    what = {"ric": "RIC model", "classifier": "classifier"}[kind]
    rows = {c["name"]: c for c in shipped() if c.get("kind") == kind}
    if not isinstance(name, str) or name not in rows or Path(rows[name]["path"]).name != name:
        raise InputError(f"the file names {what} {quote(name)}, which is not a shipped {what}; metadata may only "
                         f"name shipped ones (shipped: {', '.join(sorted(rows)) or 'none'}); pass "
                         f"{'-m/--model' if kind == 'ric' else '-c/--classifier'} to use another")
    return Path(rows[name]["path"])


def read_config(folder: Path) -> dict:
    return json.loads((Path(folder) / "config.json").read_text())


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


def dataset_of(name: str) -> str:
    """The data set a shipped or folder bundle belongs to: a classifier's training set, or for a RIC model that of
    the classifier it was made for (one fact, read from the bundles, not a table)."""
    cfg = read_config(resolve(name))
    if cfg.get("kind") == "ric":
        cfg = read_config(resolve(cfg["classifier"], kind="classifier"))
    return (cfg.get("recipe") or {}).get("dataset", "")


def codec_sha256(cfg: dict) -> str:
    """SHA-256 of the codec weights a RIC bundle config stands for: its own ``weights_sha256``, or the
    ``codec_weights_sha256`` of the bundle whose codec it reuses; ``codec_sha256`` when a study swapped codecs."""
    return cfg.get("codec_sha256") or cfg.get("codec_weights_sha256") or cfg.get("weights_sha256", "")


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
        from ric.errors import InputError

        raise InputError(f"model {cfg['name']} reuses the codec of {src}, but {src}'s weights changed "
                         f"({got[:12]}… instead of {cfg['codec_weights_sha256'][:12]}…)")
    return load_weights(other)


def load_weights(folder: str | Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(Path(folder) / "model.safetensors"))
