"""A serving stack: the resizer and crop geometry a cloud applies before the network, and the runtime it runs
the network in. :data:`STACKS` holds the named ones (``ric classify --stack NAME``)."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

import numpy as np
import torch

from ric.errors import InputError, UnknownNameError
from ric.preprocess import Preprocess
from ric.registry import registrar
from ric.stacks import resize as rs
from ric.stacks import runtimes

STACKS: dict[str, Stack] = {}
register_stack = registrar(STACKS)

DECLARED = "declared"  # the classifier's own declared preprocessing, as ric runs it (torchvision, float)


def declared(clf) -> Preprocess:
    """The preprocessing a stack starts from: the classifier's declaration, else a plain resize to its input size."""
    return clf.preprocess or Preprocess("resize", tuple(clf.input_shape[1:]))


def plan(pre: Preprocess, h: int, w: int, scale: float = 1.0, offset: tuple[int, int] = (0, 0)):
    """Where an h×w image goes: ``((rh, rw), (top, left))``, the resized size and the crop's corner; the crop
    is ``pre.size``. ``scale`` enlarges the resize target before the same crop (a cloud's own resize-crop
    geometry); ``offset`` moves the crop (clipped to the image). At ``scale`` 1 this is ``pre`` itself
    (torchvision's rules: shorter side to ``resize``, the other ``int(resize · long / short)``, centre crop)."""
    H, W = pre.size
    if scale == 1.0 and ((h, w) == (H, W) or pre.kind == "resize"):
        rh, rw = H, W
    elif pre.kind == "resize":
        rh, rw = round(H * scale), round(W * scale)
    else:
        s = pre.resize if scale == 1.0 else round(pre.resize * scale)
        rh, rw = (int(s * h / w), s) if w <= h else (s, int(s * w / h))
    top = min(max(int(round((rh - H) / 2.0)) + offset[0], 0), rh - H)
    left = min(max(int(round((rw - W) / 2.0)) + offset[1], 0), rw - W)
    return (rh, rw), (top, left)


def declared_resize(pre: Preprocess, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms.v2 import functional as F

    anti = pre.antialias and pre.interpolation != "nearest"
    return F.resize(x, list(size), interpolation=InterpolationMode(pre.interpolation), antialias=anti)


@dataclass(frozen=True)
class Stack:
    """``resizer``: :data:`DECLARED` or one of :data:`ric.stacks.resize.RESIZERS` (``pil-*`` and ``opencv-*``
    run the real library on the 8-bit image); ``runtime``: one of :data:`ric.stacks.runtimes.RUNTIMES`;
    ``scale``/``offset``: the crop geometry (:func:`plan`)."""

    name: str
    resizer: str = DECLARED
    runtime: str = "torch"
    scale: float = 1.0
    offset: tuple[int, int] = (0, 0)
    help: str = ""

    @property
    def modules(self) -> tuple[str, ...]:
        """The Python modules this stack needs beyond ric's own dependencies."""
        need = {"opencv": ("cv2",)}.get(self.resizer.split("-")[0], ())
        return need + runtimes.RUNTIMES[self.runtime].modules

    def check(self) -> None:
        """Raise :class:`InputError` naming the extra to install when a library of this stack is missing."""
        missing = [m for m in self.modules if importlib.util.find_spec(m) is None]
        if missing:
            raise InputError(f"stack {self.name} needs {', '.join(missing)}: pip install 'ric[stacks]'")

    def inputs(self, clf, x: torch.Tensor, cache: dict | None = None) -> torch.Tensor:
        """The network's input (N×C×H×W float in [0,1]) for images ``x`` (N×C×h×w, 8-bit values /255) as this
        stack makes it. ``cache``: a dict shared by calls on the same ``x`` (its 8-bit array and the declared
        resizes are made once; a caller that holds the 8-bit N×h×w×C array may put it there as ``"uint8"``); the
        returned tensor may be shared with other stacks through it (do not modify it)."""
        pre = declared(clf)
        cache = {} if cache is None else cache
        if self.resizer == DECLARED and self.scale == 1.0 and self.offset == (0, 0):
            if "declared" not in cache:  # the same input for every runtime's stack
                cache["declared"] = pre(x) if clf.preprocess is not None else x
            return cache["declared"]
        (rh, rw), (top, left) = plan(pre, *x.shape[-2:], self.scale, self.offset)
        H, W = pre.size
        if self.resizer == DECLARED:
            if ("declared", rh, rw) not in cache:  # crops of one resize share it
                cache[("declared", rh, rw)] = declared_resize(pre, x, (rh, rw))
            y = cache[("declared", rh, rw)]
        elif self.resizer.startswith("torch-"):
            y = rs.resize(x, (rh, rw), self.resizer)
        else:  # the real library, on the 8-bit image
            if "uint8" not in cache:  # contiguous: Pillow and OpenCV would each copy a strided view again
                cache["uint8"] = np.ascontiguousarray(
                    (x * 255).round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy())
            a = cache["uint8"]
            out = np.stack([rs.library_resize(img, (rh, rw), self.resizer) for img in a])
            y = torch.from_numpy(out).permute(0, 3, 1, 2).float().div(255).to(x.device)
        return y[..., top:top + H, left:left + W]

    def logits(self, clf, x: torch.Tensor, cache: dict | None = None) -> torch.Tensor:
        self.check()
        with torch.no_grad():
            return runtimes.run(self.runtime, clf, self.inputs(clf, x, cache))

    def predict(self, clf, x: torch.Tensor) -> torch.Tensor:
        """Labels of images ``x`` (N×C×h×w, 8-bit values /255) classified the way this stack does."""
        return self.logits(clf, x).argmax(1)


def get_stack(name: str) -> Stack:
    """The named stack; :class:`UnknownNameError` (exit 2) lists the known ones."""
    if name not in STACKS:
        raise UnknownNameError(f"unknown stack {name!r}; known: {', '.join(STACKS)}")
    return STACKS[name]


def _add(*stacks: Stack) -> None:
    for s in stacks:
        register_stack(s.name)(s)


_add(Stack("torch", help="ric's own: the declared preprocessing (torchvision, float) and the network in torch fp32"),
     Stack("torch-batch1", runtime="torch-batch1", help="torch fp32, one image per forward pass, one thread"),
     Stack("fp16", runtime="fp16", help="torch float16 autocast (mixed precision, channels-last)"),
     Stack("bf16", runtime="bf16", help="torch bfloat16 autocast (channels-last)"),
     Stack("onnxruntime", runtime="onnxruntime", help="the ONNX export in ONNX Runtime (CPU, fp32)"),
     Stack("onnxruntime-fp16", runtime="onnxruntime-fp16", help="the ONNX export converted to float16"),
     Stack("onnxruntime-int8", runtime="onnxruntime-int8", help="the ONNX export, dynamic int8 quantization"),
     Stack("torch-bilinear", resizer="torch-bilinear",
           help="bilinear without antialiasing (torch interpolate; TensorFlow's tf.image.resize default)"),
     *(Stack(m, resizer=m, help=f"{m.split('-')[0].replace('pil', 'Pillow').replace('opencv', 'OpenCV')} "
                                f"{m.split('-')[1]} resize of the 8-bit image")
       for m in rs.RESIZERS if not m.startswith("torch-")),
     Stack("crop-1.15", scale=1.15, help="the declared resizer to 15 % larger, then the same centre crop"),
     Stack("crop-1.15-shift2", scale=1.15, offset=(2, 2),
           help="as crop-1.15, the crop moved 2 network pixels down and right"))
