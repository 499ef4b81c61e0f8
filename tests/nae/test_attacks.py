import pytest
import torch

from ric.errors import UnknownNameError
from ric.keys import random_noise_images
from ric.nae import ATTACKS, CWMarginAttack, make_attack, margin


def test_margin():
    logits = torch.tensor([[1.0, 3.0, 2.0], [10.0, 0.0, 0.0]])
    t = torch.tensor([1, 1])
    assert margin(logits, t, kappa=5).tolist() == [-1.0, 10.0]
    assert margin(torch.tensor([[0.0, 20.0]]), torch.tensor([1]), kappa=5).item() == -5


def test_registry():
    assert {"cw-margin", "none"} <= set(ATTACKS)
    assert isinstance(make_attack(None), CWMarginAttack)
    assert make_attack({"name": "cw-margin", "steps": 7}).steps == 7
    with pytest.raises(UnknownNameError):
        make_attack({"name": "pgd-nope"})


def test_nae_hits_target_and_stays_valid(tiny_ric, key):
    clf = tiny_ric.classifier
    z0 = random_noise_images(key, [bytes([i]) * 16 for i in range(10)], (3, 32, 32))
    t = torch.arange(10)
    z = CWMarginAttack(steps=100)(clf, z0, t)
    assert z.min() >= 0 and z.max() <= 1
    assert (clf(z).argmax(1) == t).all()
    assert (z - z0).abs().mean() < 0.2  # still noise-like: stays near its RNI


def test_nae_chunks_do_not_depend_on_other_rows(tiny_ric, key):
    nonces = [bytes([i]) * 16 for i in range(6)]
    t = torch.tensor([3, 1, 4, 1, 5, 9])
    full = tiny_ric.nae(key, nonces, t, (3, 32, 32))
    part = tiny_ric.nae(key, nonces[4:], t[4:], (3, 32, 32))  # padded chunk
    assert torch.equal(full[4:], part)
    one = tiny_ric.nae(key, nonces[1:2], t[1:2], (3, 32, 32))
    assert torch.equal(full[1:2], one)


def test_no_attack_is_rni(key):
    z0 = random_noise_images(key, [bytes(16)], (3, 4, 4))
    assert torch.equal(make_attack({"name": "none"})(None, z0, torch.tensor([0])), z0)
