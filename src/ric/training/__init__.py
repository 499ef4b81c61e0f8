"""Training: plaintext classifiers for the zoo and the paper scheme's codec (classifier frozen).

:mod:`~ric.training.loop` (run folder, checkpoints, resume, budget, schedules), :mod:`~ric.training.augment`,
:mod:`~ric.training.classifier`, :mod:`~ric.training.codec`, and :mod:`~ric.training.recipes` (the named recipes
behind ``ric train``).
"""

from ric.training.classifier import ClassifierRecipe, evaluate_classifier, train_classifier
from ric.training.codec import CodecRecipe, NAEPool, train_codec

__all__ = ["ClassifierRecipe", "CodecRecipe", "NAEPool", "evaluate_classifier", "train_classifier", "train_codec"]
