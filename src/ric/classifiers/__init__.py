"""Plaintext classifiers: architectures (registry), the :class:`Classifier` wrapper, and loading (zoo names,
bundle folders, torchvision, bring-your-own)."""

from ric.classifiers.architectures import ARCHITECTURES, register_arch
from ric.classifiers.base import RGB_SUFFIX, Classifier, build, declare, fingerprint, rgb_input
from ric.classifiers.loading import load_classifier, load_trusted_name

__all__ = ["ARCHITECTURES", "RGB_SUFFIX", "Classifier", "build", "declare", "fingerprint", "load_classifier",
           "load_trusted_name", "register_arch", "rgb_input"]
