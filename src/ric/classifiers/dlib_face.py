"""dlib's face-recognition ResNet in PyTorch, and a reader for its ``.dat`` weights.

dlib (Davis E. King) ships ``dlib_face_recognition_resnet_model_v1.dat``: a 29-convolution ResNet that
maps a 150×150 RGB face chip to a 128-d embedding (99.38 % on the LFW verification benchmark, per dlib).
It is pretrained on about 3 million faces of some 7,500 identities (dlib's notes name the face scrub and
VGG-Face datasets plus images scraped from the web), so the embedding is a strong, generic face feature.
RIC uses it as the FaceNet-style embedding net of the paper's face classifier: the embedding net is frozen
and a linear head is trained on the 40 CelebA identities (recipe ``faces-dlibface``).

The ``.dat`` file is not needed at run time: :func:`read_dat` converts it once (``scripts/convert_dlib_face.py``)
into a state dict of :class:`DlibFaceNet`, which the zoo bundle stores as safetensors. The file is on PyPI in
the ``face_recognition_models`` package and on dlib.net; dlib releases it into the public domain (CC0 1.0).

Format notes (dlib's own serialisation, read here without dlib): integers are a length byte (low nibble =
number of little-endian bytes, bit 7 = negative) followed by the bytes; strings are an integer length and
the characters; a tensor is version 2, then num_samples, k, nr, nc as integers, then its float32 values in
little-endian order. Each layer starts with a versioned name (``con_4``, ``affine_``, ``fc_2``, ...); the
network is written from the input layer upwards.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ric.errors import InputError

#: dlib's input layer subtracts these per-channel means (0..255 scale) and divides by 256.
DLIB_RGB_MEAN = (122.782, 117.001, 104.298)
CHIP_SIZE = 150
EMBED_DIM = 128

# (channels, blocks, first block downsamples) from the input upwards: dlib's alevel4 ... alevel0.
_LEVELS = ((32, 3, False), (64, 4, True), (128, 3, True), (256, 3, True), (256, 1, True))


def pad_add(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """dlib's ``add_prev``: the sum over the larger shape, each operand zero-filled where it is smaller."""
    c, h, w = (max(a.shape[i], b.shape[i]) for i in (1, 2, 3))

    def grow(t):
        return F.pad(t, (0, w - t.shape[3], 0, h - t.shape[2], 0, c - t.shape[1]))
    return grow(a) + grow(b)


class _Affine(nn.Module):
    """dlib's ``affine`` layer (batch norm folded into a per-channel scale and shift)."""

    def __init__(self, ch: int):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(ch))
        self.beta = nn.Parameter(torch.zeros(ch))

    def forward(self, x):
        return x * self.gamma.view(1, -1, 1, 1) + self.beta.view(1, -1, 1, 1)


class _Block(nn.Module):
    def __init__(self, cin: int, cout: int, down: bool):
        super().__init__()
        self.down = down
        # dlib pads 3x3 convolutions by 1 at stride 1 and not at all at stride 2.
        self.conv1 = nn.Conv2d(cin, cout, 3, 2 if down else 1, 0 if down else 1)
        self.aff1 = _Affine(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1)
        self.aff2 = _Affine(cout)

    def forward(self, x):
        y = self.aff2(self.conv2(torch.relu(self.aff1(self.conv1(x)))))
        short = F.avg_pool2d(x, 2, 2) if self.down else x
        return torch.relu(pad_add(y, short))


class DlibFaceNet(nn.Module):
    """dlib's face ResNet (embedding) with an optional linear head.

    Input: images already normalised the dlib way, ``(255·x − mean) / 256``; :class:`~ric.classifiers.Classifier`
    does that with ``mean = DLIB_RGB_MEAN/255`` and ``std = 256/255``. The net first crops the fraction
    ``crop`` from every side (dlib's chips are tighter than most face crops) and resizes the rest (antialiased
    bilinear, differentiable) to ``input_size``². ``num_classes = 0`` returns the embedding; otherwise logits of
    ``head(scale · embedding / ‖embedding‖)``; ``flip_tta`` averages them with the mirror image's in eval mode."""

    def __init__(self, num_classes: int = 0, in_channels: int = 3, input_size: int = CHIP_SIZE,
                 crop: float = 0.0, scale: float = 10.0, flip_tta: bool = False):
        super().__init__()
        if in_channels != 3:
            raise InputError("the dlib face net takes RGB input (3 channels)")
        if not 0 <= crop < 0.5:
            raise InputError(f"crop must be in [0, 0.5), got {crop}")
        self.input_size = input_size
        self.crop = crop
        self.scale = scale
        self.flip_tta = flip_tta
        self.stem = nn.Conv2d(3, 32, 7, 2, 0)
        self.stem_aff = _Affine(32)
        blocks, cin = [], 32
        for ch, n, down in _LEVELS:
            for i in range(n):
                blocks.append(_Block(cin, ch, down and i == 0))
                cin = ch
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(256, EMBED_DIM, bias=False)
        self.head = nn.Linear(EMBED_DIM, num_classes) if num_classes else None

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        if self.crop:
            h, w = (int(s) for s in x.shape[-2:])  # ints also under tracing (ONNX export: fixed input size)
            dy, dx = round(self.crop * h), round(self.crop * w)
            x = x[..., dy:h - dy, dx:w - dx]
        if self.input_size and tuple(x.shape[-2:]) != (self.input_size, self.input_size):
            x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear",
                              align_corners=False, antialias=True)
        x = F.max_pool2d(torch.relu(self.stem_aff(self.stem(x))), 3, 2)
        return self.fc(self.blocks(x).mean((2, 3)))

    def _logits(self, x):
        e = self.embed(x)
        if self.head is None:
            return e
        return self.head(self.scale * F.normalize(e, dim=1))

    def forward(self, x):
        out = self._logits(x)
        if self.flip_tta and not self.training:
            out = 0.5 * (out + self._logits(x.flip(3)))
        return out


# ---------------------------------------------------------------------------------------------- reader

class _Reader:
    def __init__(self, data: bytes, pos: int = 0):
        self.b, self.p = data, pos

    def int(self) -> int:
        head = self.b[self.p]
        n, neg = head & 0x0F, bool(head & 0x80)
        if n > 8 or self.p + 1 + n > len(self.b):
            raise InputError(f"dlib file: bad integer at byte {self.p}")
        v = int.from_bytes(self.b[self.p + 1:self.p + 1 + n], "little")
        self.p += 1 + n
        return -v if neg else v

    def str(self) -> str:
        n = self.int()
        s = self.b[self.p:self.p + n]
        self.p += n
        return s.decode("ascii", "replace")

    def tensor(self) -> np.ndarray:
        if self.int() != 2:
            raise InputError(f"dlib file: unknown tensor version at byte {self.p}")
        shape = tuple(self.int() for _ in range(4))
        count = int(np.prod(shape))
        end = self.p + 4 * count
        if end > len(self.b):
            raise InputError("dlib file is truncated")
        arr = np.frombuffer(self.b[self.p:end], dtype="<f4").reshape(shape).astype(np.float32)
        self.p = end
        return arr


def _layer_records(data: bytes) -> list[tuple]:
    """(kind, fields) for every parametrised or pooling layer, input first, found by their names."""
    out = []
    names = {b"con_4": "con", b"con_5": "con", b"affine_": "affine", b"fc_2": "fc", b"fc_3": "fc",
             b"max_pool_2": "max_pool", b"avg_pool_2": "avg_pool", b"add_prev_": "add_prev"}
    pos = 0
    while True:
        hits = [(data.find(bytes([1, len(k)]) + k, pos), k) for k in names]
        hits = [(i, k) for i, k in hits if i >= 0]
        if not hits:
            return out
        i, key = min(hits)
        r = _Reader(data, i + 2 + len(key))
        kind = names[key]
        if kind == "con":
            params = r.tensor().reshape(-1)
            nf, nr, nc, sy, sx, py, px = (r.int() for _ in range(7))
            out.append(("con", params, nf, nr, nc, sy, py))
        elif kind == "affine":
            out.append(("affine", r.tensor().reshape(-1)))
        elif kind == "fc":
            n_out, n_in = r.int(), r.int()
            w = r.tensor().reshape(-1)
            out.append(("fc", w, n_in, n_out))
        elif kind in ("max_pool", "avg_pool"):
            out.append((kind, *(r.int() for _ in range(6))))
        else:
            out.append((kind,))
        pos = r.p


def read_dat(path: str | Path) -> dict[str, torch.Tensor]:
    """State dict of :class:`DlibFaceNet` (embedding part) from dlib's ``dlib_face_recognition_resnet_model_v1.dat``."""
    data = Path(path).read_bytes()
    if b"loss_metric_" not in data[:64] or b"input_rgb_image_sized" not in data[:1024]:
        raise InputError(f"{path} is not a dlib face-recognition network (dlib_face_recognition_resnet_model_v1.dat)")
    recs = _layer_records(data)
    net = DlibFaceNet()
    convs = [net.stem] + [m for b in net.blocks for m in (b.conv1, b.conv2)]
    affs = [net.stem_aff] + [m for b in net.blocks for m in (b.aff1, b.aff2)]
    con_recs = [r for r in recs if r[0] == "con"]
    aff_recs = [r for r in recs if r[0] == "affine"]
    fc_recs = [r for r in recs if r[0] == "fc"]
    if len(con_recs) != len(convs) or len(aff_recs) != len(affs) or len(fc_recs) != 1:
        raise InputError(f"{path}: expected {len(convs)} convolutions, {len(affs)} affine layers and 1 fc, found "
                         f"{len(con_recs)}, {len(aff_recs)}, {len(fc_recs)}")
    state = {}
    names = {id(m): n for n, m in net.named_modules()}
    for m, (_, params, nf, nr, nc, stride, pad) in zip(convs, con_recs, strict=True):
        w_shape = tuple(m.weight.shape)
        if (nf, nr, nc, stride, pad) != (w_shape[0], w_shape[2], w_shape[3], m.stride[0], m.padding[0]):
            raise InputError(f"{path}: convolution {names[id(m)]} does not match dlib's layout")
        n_w = int(np.prod(w_shape))
        if params.size != n_w + nf:
            raise InputError(f"{path}: convolution {names[id(m)]} has {params.size} parameters, expected {n_w + nf}")
        state[names[id(m)] + ".weight"] = torch.from_numpy(params[:n_w].reshape(w_shape).copy())
        state[names[id(m)] + ".bias"] = torch.from_numpy(params[n_w:].copy())
    for m, (_, params) in zip(affs, aff_recs, strict=True):
        ch = m.gamma.numel()
        if params.size != 2 * ch:
            raise InputError(f"{path}: affine layer {names[id(m)]} has {params.size} parameters, expected {2 * ch}")
        state[names[id(m)] + ".gamma"] = torch.from_numpy(params[:ch].copy())
        state[names[id(m)] + ".beta"] = torch.from_numpy(params[ch:].copy())
    _, w, n_in, n_out = fc_recs[0]
    if (n_in, n_out) != (256, EMBED_DIM):
        raise InputError(f"{path}: fc layer is {n_in}->{n_out}, expected 256->{EMBED_DIM}")
    state["fc.weight"] = torch.from_numpy(w.reshape(n_in, n_out).T.copy())  # dlib computes x·W
    pools = [r for r in recs if r[0] in ("max_pool", "avg_pool")]
    expect = [("max_pool", 3, 3, 2, 2, 0, 0)] + [("avg_pool", 2, 2, 2, 2, 0, 0)] * 4 + [("avg_pool", 0, 0, 1, 1, 0, 0)]
    if [tuple(p) for p in pools] != expect:
        raise InputError(f"{path}: pooling layers {pools} do not match dlib's face network")
    return state


