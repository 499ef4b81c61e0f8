"""The :class:`Classifier` wrapper: a network on ``[0,1]`` inputs with its input contract.

A :class:`Classifier` takes images in ``[0,1]`` (N×C×H×W) and returns logits; normalisation is inside it, so the
NAE attack and the ciphertext see exactly what the classifier expects. :func:`build` makes one from a bundle config,
:func:`declare` attaches what a config declares besides the network (preprocessing, the exact scheme's bits).
"""

from __future__ import annotations

import torch
from torch import nn

from ric.classifiers.architectures import ARCHITECTURES
from ric.errors import InputError
from ric.preprocess import Preprocess


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
