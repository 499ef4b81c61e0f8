"""ONNX export of a classifier: the network (normalisation included) at its fixed input size, and its declared
preprocessing as JSON beside it (``ric export CLASSIFIER --onnx FILE``).

The graph takes N×C×H×W float32 in [0,1] (RGB or grey, as the classifier) with a free batch axis and returns the
logits. Resizes inside a network (``faces-resnet18``'s 160→64, ``faces-dlibface``'s crop to 150) are
antialiased in torch; ONNX Runtime's own antialiased ``Resize`` is not the same filter, so they are written as two
``MatMul`` with the constant Pillow/torch weights (:func:`ric.stacks.resize.pil_weights`), which is exactly what
torch computes. Needs ``onnx`` and ``onnxruntime`` (``pip install 'ric[stacks]'``).
"""

from __future__ import annotations

import io
import json
import logging
import tempfile
import warnings
from pathlib import Path

import torch

from ric.errors import InputError
from ric.files import atomic_write_bytes
from ric.stacks.resize import pil_weights

OPSET = 18
_REGISTERED = False


class _Network(torch.nn.Module):
    """The classifier without its declared preprocessing: [0,1] input at the network's size → logits."""

    def __init__(self, clf):
        super().__init__()
        self.clf = clf

    def forward(self, x):
        return self.clf.net((x - self.clf.mean) / self.clf.std)


def _aa_symbolic(kind: str):
    def symbolic(g, x, output_size, align_corners, scale_factors):
        from torch.onnx import symbolic_helper as sh

        h, w = sh._get_tensor_sizes(x)[-2:]
        oh, ow = sh._maybe_get_const(output_size, "is")
        wt = g.op("Constant", value_t=torch.from_numpy(pil_weights(w, ow, kind).T.copy()).float())
        wh = g.op("Constant", value_t=torch.from_numpy(pil_weights(h, oh, kind)).float())
        return g.op("MatMul", wh, g.op("MatMul", x, wt))
    return symbolic


def _register() -> None:
    global _REGISTERED
    if not _REGISTERED:
        for kind in ("bilinear", "bicubic"):
            torch.onnx.register_custom_op_symbolic(f"aten::_upsample_{kind}2d_aa", _aa_symbolic(kind), OPSET)
        _REGISTERED = True


def need_onnx() -> None:
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        raise InputError("ONNX export needs onnx and onnxruntime: pip install 'ric[stacks]'") from None


def to_onnx(clf) -> bytes:
    """The network of ``clf`` as an ONNX model (fp32, opset 18, batch axis free)."""
    need_onnx()
    c, h, w = clf.input_shape
    if h is None or w is None:
        raise InputError(f"classifier {clf.name} has no fixed input size; ONNX export needs one")
    _register()
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer and exporter notices about constant shapes
        try:
            torch.onnx.export(_Network(clf).eval(), (torch.rand(2, c, h, w),), buf, dynamo=False,
                              opset_version=OPSET, input_names=["image"], output_names=["logits"],
                              dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}})
        except RuntimeError as e:  # the exporter cannot trace this network (e.g. a TorchScript module)
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
            raise InputError(f"classifier {clf.name} cannot be exported to ONNX: {first}") from None
    return buf.getvalue()


def _fold_identities(model: bytes) -> bytes:
    """Drop ``Identity`` nodes that only rename a weight (the exporter writes them where a network runs twice,
    e.g. flip test-time augmentation); ONNX Runtime's quantizer needs the weights as direct initializers."""
    import onnx

    m = onnx.load_from_string(model)
    inits = {i.name for i in m.graph.initializer}
    outputs = {o.name for o in m.graph.output}
    alias = {n.output[0]: n.input[0] for n in m.graph.node
             if n.op_type == "Identity" and n.input[0] in inits and n.output[0] not in outputs}
    if not alias:
        return model
    keep = [n for n in m.graph.node if not (n.op_type == "Identity" and n.output[0] in alias)]
    for n in keep:
        n.input[:] = [alias.get(i, i) for i in n.input]
    del m.graph.node[:]
    m.graph.node.extend(keep)
    return m.SerializeToString()


def onnx_model(clf, variant: str = "fp32") -> bytes:
    """``to_onnx(clf)`` as ``fp32``, converted to ``fp16`` (inputs and outputs stay float32) or dynamically
    quantized to ``int8`` (ONNX Runtime's ``quantize_dynamic``, unsigned 8-bit weights)."""
    return convert(_fold_identities(to_onnx(clf)), variant)


def convert(model: bytes, variant: str) -> bytes:
    """An fp32 model of :func:`onnx_model` as ``variant`` (``fp32``: unchanged), so that one export serves all."""
    if variant == "fp32":
        return model
    import onnx

    if variant == "fp16":
        from onnxruntime.transformers.float16 import convert_float_to_float16

        return convert_float_to_float16(onnx.load_from_string(model), keep_io_types=True).SerializeToString()
    if variant == "int8":
        from onnxruntime.quantization import QuantType, quantize_dynamic

        with tempfile.TemporaryDirectory() as d:
            (Path(d) / "in.onnx").write_bytes(model)
            root = logging.getLogger()
            level, root.level = root.level, logging.ERROR  # its advice to pre-process goes to the root logger
            try:
                quantize_dynamic(Path(d) / "in.onnx", Path(d) / "out.onnx", weight_type=QuantType.QUInt8)
            finally:
                root.level = level
            return (Path(d) / "out.onnx").read_bytes()
    raise ValueError(f"unknown ONNX variant {variant!r}")


def preprocessing(clf) -> dict:
    """What the JSON beside an exported model says: the input the graph takes and how to make it from an image."""
    c, h, w = clf.input_shape
    return {"classifier": clf.ident, "input": {"name": "image", "shape": ["batch", c, h, w], "dtype": "float32",
                                               "range": [0, 1], "channels": "RGB" if c == 3 else "grey"},
            "normalization": {"mean": clf.mean.view(-1).tolist(), "std": clf.std.view(-1).tolist(),
                              "applied": "inside the graph"},
            "preprocess": clf.preprocess.config() if clf.preprocess is not None else None,
            "class_names": clf.class_names, "opset": OPSET}


def export_onnx(clf, path: str | Path, force: bool = False) -> tuple[Path, Path]:
    """Write ``clf``'s network to ``path`` and its preprocessing to ``path`` with ``.json``; refuses to replace
    either file unless ``force``."""
    need_onnx()
    path = Path(path)
    side = path.with_suffix(".json")
    if side == path:
        raise InputError(f"the ONNX file needs another extension than .json: {path}")
    for p in (path, side):
        if p.exists() and not force:
            raise InputError(f"{p} exists; pass --force to replace it")
    model = to_onnx(clf)
    atomic_write_bytes(path, model)
    atomic_write_bytes(side, (json.dumps(preprocessing(clf), indent=1) + "\n").encode())
    return path, side
