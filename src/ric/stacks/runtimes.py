"""Runtimes a cloud runs the network in: torch (fp32, batch of one, fp16 and bf16 autocast) and ONNX Runtime
(fp32, the whole graph in fp16, dynamic int8). Each takes the network's input (N×C×H×W float in [0,1], after
the stack's resize and crop) and returns fp32 logits; autocast runs a channels-last copy of the network (the layout
mixed-precision serving uses; on CPU, fp16 runs several times faster in it than in the default layout). Converted
models and sessions are made once per classifier and kept while it lives."""

from __future__ import annotations

import copy
import weakref
from collections import OrderedDict
from dataclasses import dataclass

import torch

_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # classifier -> {variant: model or session}
# ONNX sessions and channels-last copies by what they are made from (_shared)
_SESSIONS: OrderedDict = OrderedDict()
KEEP_SESSIONS = 12


@dataclass(frozen=True)
class Runtime:
    name: str
    modules: tuple[str, ...] = ()


RUNTIMES = {r.name: r for r in (Runtime("torch"), Runtime("torch-batch1"), Runtime("fp16"), Runtime("bf16"),
                                Runtime("onnxruntime", ("onnx", "onnxruntime")),
                                Runtime("onnxruntime-fp16", ("onnx", "onnxruntime")),
                                Runtime("onnxruntime-int8", ("onnx", "onnxruntime")))}


def _cached(clf, variant: str, make):
    per = _CACHE.setdefault(clf, {})
    if variant not in per:
        per[variant] = make()
    return per[variant]


def _net(clf, x: torch.Tensor) -> torch.Tensor:
    return clf.net((x - clf.mean) / clf.std)


def _shared(clf, variant: str, make):
    """``make()`` for this classifier, made once per process: kept by what it is made from (the classifier's ident
    covers its weights), so that a job that loads the same classifier again (each ric.api call does) does not
    export, quantize or copy it again; the last few are kept."""
    def shared():
        key = (clf.ident, type(clf.net).__module__, type(clf.net).__qualname__, tuple(clf.input_shape),
               tuple(clf.mean.flatten().tolist()), tuple(clf.std.flatten().tolist()), variant)
        if key not in _SESSIONS:
            _SESSIONS[key] = make()
            while len(_SESSIONS) > KEEP_SESSIONS:
                _SESSIONS.popitem(last=False)
        _SESSIONS.move_to_end(key)
        return _SESSIONS[key]
    return _cached(clf, variant, shared)


def _session(clf, variant: str):
    def make():
        import onnxruntime as ort

        from ric.stacks.export import convert, onnx_model

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = torch.get_num_threads()
        opts.log_severity_level = 3
        fp32 = _shared(clf, "onnx-export", lambda: onnx_model(clf, "fp32"))  # one export for the three variants
        return ort.InferenceSession(convert(fp32, variant), opts, providers=["CPUExecutionProvider"])

    return _shared(clf, "onnxruntime-" + variant, make)


def _channels_last(clf, device: torch.device):
    """A channels-last copy of the classifier's network on ``device`` (what autocast runs)."""
    def make():
        net = copy.deepcopy(clf.net).to(device, memory_format=torch.channels_last).eval()
        for p in net.parameters():  # an attack's surrogate needs gradients for its input only
            p.requires_grad_(False)
        return net

    return _shared(clf, f"channels-last-{device}", make)


def autocast_net(clf, x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """fp32 logits of the network input ``x`` under autocast to ``dtype``, in the channels-last copy (with autograd
    when ``x`` needs it: an attack's surrogate)."""
    net = _channels_last(clf, x.device)
    y = ((x - clf.mean) / clf.std).contiguous(memory_format=torch.channels_last)
    with torch.autocast(x.device.type, dtype=dtype):
        return net(y).float()


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` runs bfloat16 natively (a CPU with AVX-512 BF16 or AMX, a CUDA GPU that supports it), where
    bf16 autocast is measured 2-3x faster than fp32 for the classifiers' forward and backward passes; elsewhere it is
    emulated and slower."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        probe = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
        return bool(probe and probe())
    return False


def run(runtime: str, clf, x: torch.Tensor) -> torch.Tensor:
    """fp32 logits of the network input ``x`` in ``runtime`` (one of :data:`RUNTIMES`)."""
    with torch.no_grad():
        if runtime == "torch":
            return _net(clf, x)
        if runtime == "torch-batch1":
            threads = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                return torch.cat([_net(clf, x[i:i + 1]) for i in range(len(x))])
            finally:
                torch.set_num_threads(threads)
        if runtime in ("fp16", "bf16"):  # torch autocast (mixed precision, as AMP serving runs), channels-last
            return autocast_net(clf, x, torch.float16 if runtime == "fp16" else torch.bfloat16)
    if runtime.startswith("onnxruntime"):
        variant = runtime.removeprefix("onnxruntime").lstrip("-") or "fp32"
        sess = _session(clf, variant)
        out = sess.run(None, {sess.get_inputs()[0].name: x.detach().cpu().float().contiguous().numpy()})[0]
        return torch.from_numpy(out).float()
    raise ValueError(f"unknown runtime {runtime!r}")
