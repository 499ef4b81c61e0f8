"""Encoder-side refinement (ric.codec.refine): integer ciphertexts within the offset bound, recovery never worse,
and the label kept with its margin wherever the ciphertext changed."""

import pytest
import torch

from ric.classifiers import load_classifier
from ric.codec import encrypt_pixels, make_codec, recover
from ric.codec.refine import Refinement
from ric.nae import margin


@pytest.mark.parametrize("method,lr", [("normalized", 0.6), ("adam", 0.1)])
def test_refinement_improves_recovery_and_keeps_the_label(method, lr):
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    clf = load_classifier("svhn-cnn7")
    # an untrained small codec: its decoder is not the identity's exact inverse of rounding, so there is room to gain
    codec = make_codec({"name": "ric-paper", "width": 8, "depth": 1, "se_blocks": 0, "feat": 4}).eval()
    codec.requires_grad_(False)
    x = torch.rand(6, 3, 32, 32, generator=gen)
    z = torch.rand(6, 3, 32, 32, generator=gen)
    c = encrypt_pixels(codec, x, z, 0.8)
    t = clf.predict(c)  # the codec's own ciphertexts carry the target
    ref = Refinement(steps=40, lr=lr, max_offset=2, kappa=0.5, method=method)
    cr = ref(codec, clf, x, c, z, t, 0.8)
    levels = cr * 255
    assert torch.equal(levels, levels.round()) and (levels - c * 255).abs().max() <= 2
    err = lambda cc: ((recover(codec, cc, z, 0.8).clamp(0, 1) - x) ** 2).flatten(1).mean(1)  # noqa: E731
    assert (err(cr) <= err(c)).all() and err(cr).mean() < err(c).mean()
    changed = (cr != c).flatten(1).any(1)
    assert changed.any()
    assert (margin(clf(cr[changed]), t[changed], 0.5) <= -0.5).all()


def test_nothing_to_gain_over_the_identity_codec():
    """With the identity codec the codec's c is already the nearest integer: refinement must return it as is."""
    gen = torch.Generator().manual_seed(1)
    clf = load_classifier("svhn-cnn7")
    codec = make_codec({"name": "identity"})
    x, z = torch.rand(2, 3, 32, 32, generator=gen), torch.rand(2, 3, 32, 32, generator=gen)
    c = encrypt_pixels(codec, x, z, 0.8)
    assert torch.equal(Refinement(steps=10, lr=0.1)(codec, clf, x, c, z, clf.predict(c), 0.8), c)


def test_zero_steps_is_the_identity():
    c = torch.rand(2, 3, 8, 8)
    assert Refinement(steps=0)(None, None, c, c, c, torch.zeros(2, dtype=torch.long), 0.8) is c


def test_unknown_update_rule_is_refused():
    with pytest.raises(ValueError, match="unknown refinement method"):
        Refinement(method="sgd")
