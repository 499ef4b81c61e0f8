"""Serving stacks: how clouds actually run a classifier, and a robustness set for the exact scheme's attack.

A cloud serves an unmodified classifier its own way: ONNX Runtime in fp32, fp16 or int8, torch in fp16/bf16,
and the image resized with Pillow, OpenCV or torch (with or without antialiasing), with its own crop geometry.

* :mod:`ric.stacks.resize`: those resizers in torch (differentiable; tested against the real libraries) and
  the real libraries themselves;
* :mod:`ric.stacks.base`: :class:`Stack` (resizer + geometry + runtime) and the named :data:`STACKS`
  (``ric classify --stack NAME``);
* :mod:`ric.stacks.runtimes`: torch and ONNX Runtime runtimes; :mod:`ric.stacks.export`: the ONNX export
  (``ric export CLASSIFIER --onnx FILE``);
* :mod:`ric.stacks.robust`: the robustness set (differentiable members the attack optimises over) and the
  verifier that checks a ciphertext's margin with the real libraries.

OpenCV and ONNX Runtime are optional (``pip install 'ric[stacks]'``); a stack that needs a missing one says so.
"""

from ric.stacks.base import STACKS, Stack, get_stack, plan, register_stack
from ric.stacks.resize import RESIZERS
from ric.stacks.robust import DEFAULT_ROBUST_SET, ROBUST_SETS, Ensemble, check_robust_set, ensemble, smooth_grid, verify

__all__ = ["DEFAULT_ROBUST_SET", "ROBUST_SETS", "RESIZERS", "STACKS", "Ensemble", "Stack", "check_robust_set",
           "ensemble", "get_stack", "plan", "register_stack", "smooth_grid", "verify"]
