"""Plaintext classifier zoo.

A :class:`Classifier` takes images in ``[0,1]`` (N×C×H×W) and returns logits; normalisation is
inside it, so the NAE attack and the ciphertext see exactly what the classifier expects.
Architectures sit in :data:`ARCHITECTURES`; trained weights ship as bundles (see :mod:`ric.bundles`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from . import bundles
from .errors import InputError, UnknownNameError
from .preprocess import Preprocess
from .registry import registrar

ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {}


register_arch = registrar(ARCHITECTURES)


def _cbr(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


@register_arch("cnn7")
def cnn7(num_classes: int = 10, in_channels: int = 3, width: int = 32) -> nn.Module:
    """SVHN classifier of the paper: 7 convolutional layers and 1 fully connected layer."""
    w = width
    layers = (_cbr(in_channels, w) + _cbr(w, w) + [nn.MaxPool2d(2)]
              + _cbr(w, 2 * w) + _cbr(2 * w, 2 * w) + [nn.MaxPool2d(2)]
              + _cbr(2 * w, 4 * w) + _cbr(4 * w, 4 * w) + [nn.MaxPool2d(2)]
              + _cbr(4 * w, 8 * w) + [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.3),
                                      nn.Linear(8 * w, num_classes)])
    return nn.Sequential(*layers)


@register_arch("cnn5")
def cnn5(num_classes: int = 10, in_channels: int = 1, width: int = 32) -> nn.Module:
    """MNIST classifier of the paper: 5 convolutional layers and 1 fully connected layer."""
    w = width
    layers = (_cbr(in_channels, w) + _cbr(w, w) + [nn.MaxPool2d(2)]
              + _cbr(w, 2 * w) + _cbr(2 * w, 2 * w) + [nn.MaxPool2d(2)]
              + _cbr(2 * w, 4 * w) + [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.3),
                                      nn.Linear(4 * w, num_classes)])
    return nn.Sequential(*layers)


class _Basic(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout),
                                  nn.ReLU(inplace=True), nn.Conv2d(cout, cout, 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(cout))
        self.short = (nn.Identity() if stride == 1 and cin == cout else
                      nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)))

    def forward(self, x):
        return torch.relu(self.body(x) + self.short(x))


class ResNet18(nn.Module):
    """ResNet-18 (4 stages × 2 basic blocks). ``stem="cifar"``: 3×3 conv, no pooling (32×32 inputs);
    ``stem="imagenet"``: 7×7/2 conv + 3×3/2 max-pool (large inputs). ``width`` is the first stage's
    channel count (64 in the original; the zoo uses 32 to keep shipped weights compact).
    ``stem="s2"``: 3×3/2 conv (e.g. 64×64 inputs at the cost of a CIFAR net). ``input_size``: the net first
    resizes its input (bilinear, antialiased, differentiable) to ``input_size``², so a classifier for large
    images can run at a lower internal resolution."""

    def __init__(self, num_classes: int = 10, in_channels: int = 3, width: int = 64, stem: str = "cifar",
                 input_size: int | None = None, flip_tta: bool = False):
        super().__init__()
        w = width
        self.input_size = input_size
        self.flip_tta = flip_tta
        if stem in ("cifar", "s2"):
            self.stem = nn.Sequential(nn.Conv2d(in_channels, w, 3, 1 if stem == "cifar" else 2, 1, bias=False),
                                      nn.BatchNorm2d(w), nn.ReLU(inplace=True))
        elif stem == "imagenet":
            self.stem = nn.Sequential(nn.Conv2d(in_channels, w, 7, 2, 3, bias=False), nn.BatchNorm2d(w),
                                      nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1))
        else:
            raise InputError(f"unknown ResNet stem {stem!r}; known: cifar, s2, imagenet")
        blocks, c = [], w
        for i, cout in enumerate((w, 2 * w, 4 * w, 8 * w)):
            blocks += [_Basic(c, cout, 1 if i == 0 else 2), _Basic(cout, cout, 1)]
            c = cout
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, num_classes))

    def forward(self, x):
        if self.input_size and tuple(x.shape[-2:]) != (self.input_size, self.input_size):
            x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False,
                              antialias=True)
        if self.flip_tta and not self.training:  # average the logits of the image and its mirror image
            return 0.5 * (self.head(self.blocks(self.stem(x))) + self.head(self.blocks(self.stem(x.flip(3)))))
        return self.head(self.blocks(self.stem(x)))


@register_arch("resnet18")
def resnet18(num_classes: int = 10, in_channels: int = 3, width: int = 64, stem: str = "cifar",
             input_size: int | None = None, flip_tta: bool = False) -> nn.Module:
    return ResNet18(num_classes, in_channels, width, stem, input_size, flip_tta)


@register_arch("dlib-face")
def dlib_face(num_classes: int = 0, in_channels: int = 3, **kw) -> nn.Module:
    """dlib's pretrained face-embedding ResNet (29 convolutions, 128-d) + a linear head (:mod:`ric.dlib_face`)."""
    from .dlib_face import DlibFaceNet

    return DlibFaceNet(num_classes, in_channels, **kw)


class Classifier(nn.Module):
    """An image classifier on ``[0,1]`` inputs with its input contract.

    ``input_shape`` is (C, H, W); H or W may be ``None`` for classifiers that accept any size.
    """

    def __init__(self, net: nn.Module, name: str, input_shape: tuple, mean, std, class_names: list[str],
                 weights_sha256: str = ""):
        super().__init__()
        self.net = net
        self.name = name
        self.input_shape = tuple(input_shape)
        self.class_names = list(class_names)
        self.weights_sha256 = weights_sha256
        self.fingerprint = ""  # set by load_classifier: hash of the weights actually loaded
        self.spec = name
        self.preprocess: Preprocess | None = None  # declared preprocessing: any image size is then accepted
        self.exact_bits = 0  # declared low bits per sub-pixel for the exact scheme (0: the scheme's default)
        c = input_shape[0]
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, c, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, c, 1, 1))
        self.eval()

    @property
    def ident(self) -> str:
        """``name@fingerprint``: stored (authenticated) in every ciphertext."""
        if not self.fingerprint:
            self.fingerprint = fingerprint(self.net)
        return f"{self.name}@{self.fingerprint}"

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.preprocess is not None:
            x = self.preprocess(x)
        return self.net((x - self.mean) / self.std)

    def accepts_any_size(self) -> bool:
        return self.preprocess is not None

    def check_input(self, shape, strict: bool = False) -> None:
        """Raise :class:`InputError` unless ``shape`` (C,H,W) is what this classifier accepts: its input size,
        or (``strict=False``) any size when it declares its preprocessing."""
        c, h, w = shape
        ec, eh, ew = self.input_shape
        if c != ec:
            raise InputError(f"classifier {self.name} expects {ec}-channel images, got {c} channels")
        if self.preprocess is not None and not strict:
            self.preprocess.check(h, w)
            return
        if (eh is not None and h != eh) or (ew is not None and w != ew):
            raise InputError(f"classifier {self.name} expects {eh}x{ew} images, got {h}x{w}"
                             + ("" if self.preprocess is not None else " (it declares no preprocessing)"))

    def size_check(self) -> tuple | None:
        """(H, W) to check image headers against before decoding, or ``None`` when any size is accepted."""
        return None if self.preprocess is not None else tuple(self.input_shape[1:])

    @torch.no_grad()
    def predict(self, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        out = [self(x[i:i + batch_size]).argmax(1) for i in range(0, len(x), batch_size)]
        return torch.cat(out) if out else torch.empty(0, dtype=torch.long)


class _LumaInput(nn.Module):
    """Feeds a grey classifier the ITU-R BT.601 luma of an RGB input (used by grey RIC models)."""

    def __init__(self, inner: Classifier):
        super().__init__()
        self.inner = inner
        self.register_buffer("w", torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner((x * self.w).sum(1, keepdim=True))


RGB_SUFFIX = "+rgb"


def rgb_input(clf: Classifier) -> Classifier:
    """Grey policy for RIC models: a 1-channel classifier wrapped to take RGB images (it sees their luma).

    A grey plaintext is replicated to R=G=B, so the wrapped classifier gives it exactly the label the
    original gives the grey image; the ciphertext is RGB. The wrapper's name is ``<name>+rgb``."""
    if clf.input_shape[0] != 1:
        raise InputError(f"classifier {clf.name} is not a grey (1-channel) classifier")
    out = Classifier(_LumaInput(clf), clf.name + RGB_SUFFIX, (3, *clf.input_shape[1:]), (0.0, 0.0, 0.0),
                     (1.0, 1.0, 1.0), clf.class_names, clf.weights_sha256)
    out.spec = clf.spec + RGB_SUFFIX
    out.preprocess, clf.preprocess = clf.preprocess, None  # resize the RGB input, then take its luma
    out.exact_bits = clf.exact_bits
    out.requires_grad_(False)
    return out.eval()


def build(config: dict) -> Classifier:
    arch = config["arch"]
    if arch not in ARCHITECTURES:
        raise InputError(f"unknown classifier architecture {arch!r}; known: {', '.join(ARCHITECTURES)}")
    net = ARCHITECTURES[arch](num_classes=len(config["class_names"]), in_channels=config["input_shape"][0],
                              **config.get("arch_kwargs", {}))
    return declare(Classifier(net, config["name"], config["input_shape"], config["mean"], config["std"],
                              config["class_names"], config.get("weights_sha256", "")), config)


def declare(clf: Classifier, config: dict) -> Classifier:
    """Attach what a config declares besides the network: ``preprocess`` (:mod:`ric.preprocess`) and
    ``exact_bits`` (the exact scheme's low bits per sub-pixel for this classifier)."""
    clf.preprocess = Preprocess.from_config(config.get("preprocess"))
    bits = config.get("exact_bits", 0)
    if bits not in (0, 3, 4, 5, 6, 7):
        raise InputError(f"classifier config: exact_bits must be 3..7, got {bits!r}")
    clf.exact_bits = int(bits)
    return clf


def fingerprint(net: nn.Module) -> str:
    """SHA-256 (first 16 hex digits) over a module's state: names, dtypes, shapes and bytes."""
    import hashlib

    h = hashlib.sha256()
    for k, v in sorted(net.state_dict().items()):
        t = v.detach().cpu().contiguous()
        h.update(f"{k}|{t.dtype}|{tuple(t.shape)}".encode())
        h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
    return h.hexdigest()[:16]


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
