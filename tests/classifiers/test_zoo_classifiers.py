import pytest
import torch

from ric.classifiers import ARCHITECTURES, load_classifier
from ric.errors import InputError, UnknownNameError
from ric.zoo.bundles import sha256_file, shipped


@pytest.mark.parametrize("cfg", [c for c in shipped() if c["kind"] == "classifier"], ids=lambda c: c["name"])
def test_shipped_classifiers_load_and_match_their_hash(cfg):
    clf = load_classifier(cfg["name"])
    assert sha256_file(f"{cfg['path']}/model.safetensors") == cfg["weights_sha256"]
    c, h, w = clf.input_shape
    out = clf(torch.rand(2, c, h, w))
    assert out.shape == (2, len(cfg["class_names"]))
    assert not any(p.requires_grad for p in clf.parameters())


def test_input_contract():
    clf = load_classifier("svhn-cnn7")
    clf.check_input((3, 32, 32))
    with pytest.raises(InputError, match="3-channel"):
        clf.check_input((1, 32, 32))
    clf.check_input((3, 64, 48))  # it declares its preprocessing (resize to 32x32): any size but tiny ones
    with pytest.raises(InputError, match="smaller than"):
        clf.check_input((3, 4, 64))
    with pytest.raises(InputError, match="32x32"):
        clf.check_input((3, 64, 64), strict=True)  # the paper scheme takes the input size only
    clf.preprocess = None
    with pytest.raises(InputError, match="declares no preprocessing"):
        clf.check_input((3, 64, 64))
    with pytest.raises(UnknownNameError):
        load_classifier("nope")


def test_architectures():
    assert {"cnn7", "cnn5", "resnet18"} <= set(ARCHITECTURES)
    for name, shape in (("cnn7", (3, 32, 32)), ("cnn5", (1, 28, 28))):
        m = ARCHITECTURES[name](num_classes=10, in_channels=shape[0]).eval()
        assert m(torch.rand(1, *shape)).shape == (1, 10)
    m = ARCHITECTURES["resnet18"](num_classes=40, width=8, stem="imagenet").eval()
    assert m(torch.rand(1, 3, 160, 160)).shape == (1, 40)


def test_resnet_internal_resize_and_mirror_averaging():
    torch.manual_seed(0)
    m = ARCHITECTURES["resnet18"](num_classes=5, width=4, stem="s2", input_size=16, flip_tta=True).eval()
    x = torch.rand(2, 3, 40, 40, requires_grad=True)
    out = m(x)
    assert out.shape == (2, 5)
    m.flip_tta = False
    assert torch.allclose(out, 0.5 * (m(x) + m(x.flip(3))), atol=1e-5)  # mirror-averaged logits
    out.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0  # differentiable: the NAE attack can use it
    with pytest.raises(InputError):
        ARCHITECTURES["resnet18"](stem="nope")
