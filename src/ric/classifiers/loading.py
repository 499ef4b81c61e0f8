"""Loading classifiers: shipped zoo names, bundle folders, torchvision models, and bring-your-own
``module:factory`` specs (operator-given only; names read from files go through :func:`load_trusted_name`).
"""

from __future__ import annotations

from pathlib import Path

import torch

from ric.classifiers.base import RGB_SUFFIX, Classifier, build, declare, fingerprint, rgb_input
from ric.errors import InputError, UnknownNameError
from ric.zoo import bundles

_CONFIG_KEYS = ("input_shape", "mean", "std", "class_names")


def _byo_config(spec: str, config: dict | str | Path | None) -> dict:
    import json

    if config is None:
        side = Path(str(spec) + ".json")
        if not side.is_file():
            raise InputError(f"classifier {spec!r} needs a config (input_shape, mean, std, class_names): "
                             f"pass --classifier-config FILE or put it in {side}")
        config = side
    if not isinstance(config, dict):
        try:
            config = json.loads(Path(config).read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise InputError(f"cannot read classifier config {config}: {e}") from None
    missing = [k for k in _CONFIG_KEYS if k not in config]
    if missing:
        raise InputError(f"classifier config lacks {', '.join(missing)}")
    if len(config["input_shape"]) != 3 or len(config["mean"]) != config["input_shape"][0]:
        raise InputError("classifier config: input_shape is [C, H, W] and mean/std have C entries")
    return config


def _load_state(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"classifier weights not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    return torch.load(path, map_location="cpu", weights_only=True)


def _load_bundle(folder: Path) -> Classifier:
    cfg = bundles.read_config(folder)
    clf = build(cfg)
    clf.net.load_state_dict(bundles.load_weights(folder))
    return clf


def load_trusted_name(name: str, device: str | torch.device = "cpu") -> Classifier:
    """Load a classifier named by untrusted data (a ciphertext's ``ric:classifier``): a shipped zoo name, or a
    shipped grey classifier's name + ``+rgb`` (the grey wrapper), nothing else. Paths, ``module:factory`` and
    ``torchvision:`` specs are refused with :class:`InputError` before anything is imported or read; they are
    accepted only from the operator (:func:`load_classifier`, ``-c``). The caller compares the fingerprint."""
    base = name[:-len(RGB_SUFFIX)] if isinstance(name, str) and name.endswith(RGB_SUFFIX) else name
    folder = bundles.resolve_shipped(base, "classifier")
    clf = _load_bundle(folder)
    clf.requires_grad_(False)
    clf.fingerprint = fingerprint(clf.net)
    clf.spec = base
    if base != name:
        clf = rgb_input(clf)
    return clf.to(device).eval()


def load_classifier(spec: str | Path, device: str | torch.device = "cpu",
                    config: dict | str | Path | None = None) -> Classifier:
    """Load a frozen classifier in eval mode. ``spec`` is one of

    * a zoo name (``ric models``) or a bundle folder;
    * a TorchScript file (``torch.jit.save``);
    * ``torchvision:NAME`` (e.g. ``torchvision:resnet18``), built with ``len(class_names)`` outputs and the
      state dict named by the config's ``weights`` (nothing is downloaded);
    * ``package.module:factory``, a callable returning an ``nn.Module`` (``factory_kwargs`` and ``weights``
      from the config are used if present).

    The last three need a config with ``input_shape`` [C, H, W] (H/W may be null), ``mean``, ``std`` and
    ``class_names`` (``config`` argument, or a ``<file>.json`` beside a TorchScript file)."""
    spec_s = str(spec)
    if spec_s.endswith(RGB_SUFFIX):
        return rgb_input(load_classifier(spec_s[:-len(RGB_SUFFIX)], device, config)).to(device)
    p = Path(spec_s)
    if (p.is_dir() and (p / "config.json").is_file()) or (bundles.SHIPPED_DIR / spec_s / "config.json").is_file():
        clf = _load_bundle(bundles.resolve(spec_s, kind="classifier"))
    elif p.is_file():
        cfg = _byo_config(spec_s, config)
        try:
            net = torch.jit.load(str(p), map_location="cpu")
        except (RuntimeError, ValueError) as e:
            raise InputError(f"{p} is not a TorchScript file: {str(e).splitlines()[0]}") from None
        clf = declare(Classifier(net, cfg.get("name", p.stem), cfg["input_shape"], cfg["mean"], cfg["std"],
                                 cfg["class_names"]), cfg)
    elif spec_s.startswith("torchvision:") or (":" in spec_s and not p.exists()):
        cfg = _byo_config(spec_s, config)
        if spec_s.startswith("torchvision:"):
            import torchvision

            name = spec_s.split(":", 1)[1]
            try:
                net = torchvision.models.get_model(name, weights=None, num_classes=len(cfg["class_names"]))
            except ValueError:
                raise UnknownNameError(f"unknown torchvision model {name!r}") from None
        else:
            import importlib

            mod, _, fn = spec_s.partition(":")
            try:
                factory = getattr(importlib.import_module(mod), fn)
            except (ImportError, AttributeError) as e:
                raise UnknownNameError(f"cannot import classifier factory {spec_s!r}: {e}") from None
            net = factory(**cfg.get("factory_kwargs", {}))
        if cfg.get("weights"):
            try:
                net.load_state_dict(_load_state(cfg["weights"]))
            except RuntimeError as e:
                raise InputError(f"weights {cfg['weights']} do not fit {spec_s}: {str(e).splitlines()[0]}") from None
        clf = declare(Classifier(net, cfg.get("name", spec_s), cfg["input_shape"], cfg["mean"], cfg["std"],
                                 cfg["class_names"]), cfg)
    else:
        bundles.resolve(spec_s, kind="classifier")  # raises the 'unknown classifier' error
        raise AssertionError("unreachable")
    clf.requires_grad_(False)
    clf.fingerprint = fingerprint(clf.net)
    clf.spec = spec_s
    return clf.to(device).eval()
