"""Named serving stacks, the robustness set and the verifier; ric classify --stack."""

import importlib.util
import json

import numpy as np
import pytest
import torch
from PIL import Image

from ric.classifiers import load_classifier
from ric.cli import main
from ric.keys import SecretKey
from ric.nae import DigitAttack
from ric.preprocess import Preprocess
from ric.schemes.exact import ExactScheme
from ric.stacks import STACKS, ensemble, get_stack, plan, verify
from ric.stacks.base import declared_resize
from ric.stacks.robust import Member


@pytest.fixture(scope="module")
def cifar():
    return load_classifier("cifar10-resnet18")


@pytest.fixture(scope="module")
def photos(data_root):
    """Three CIFAR-10 test images upscaled to small photo sizes (bicubic), as uint8 H×W×3."""
    imgs = np.load(data_root / "cifar10/cifar10_test.npz")["images"][:3]
    return [np.asarray(Image.fromarray(a).resize((w, h), Image.Resampling.BICUBIC))
            for a, (h, w) in zip(imgs, ((48, 64), (70, 50), (56, 56)), strict=True)]


def _x(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(a.copy()).permute(2, 0, 1)[None].float() / 255


@pytest.mark.parametrize("pre", [Preprocess("resize-crop", (32, 32), resize=36), Preprocess("resize", (28, 28)),
                                 Preprocess("resize-crop", (32, 32), resize=32)])
def test_plan_is_the_declared_preprocessing(pre):
    for h, w in ((451, 300), (250, 250), (480, 640), (32, 32), (36, 50)):
        x = torch.rand(1, 3, h, w)
        (rh, rw), (top, left) = plan(pre, h, w)
        y = declared_resize(pre, x, (rh, rw))[..., top:top + pre.size[0], left:left + pre.size[1]]
        assert torch.equal(y, pre(x)), (pre, h, w)


def test_crop_geometry():
    pre = Preprocess("resize-crop", (32, 32), resize=32)
    assert plan(pre, 64, 96, scale=1.15) == ((37, 55), (2, 12))  # 15 % larger, the same centre crop
    assert plan(pre, 64, 96, scale=1.15, offset=(2, 2)) == ((37, 55), (4, 14))
    assert plan(pre, 64, 96, scale=1.15, offset=(9, 0))[1] == (5, 12)  # clipped to the image


def test_members_are_the_libraries(cifar, photos):
    """A differentiable member computes what the real library gives (Pillow exactly, OpenCV within 1/255)."""
    ens = ensemble(cifar)
    for a in photos:
        x = _x(a)
        for m in (Member("pil-bicubic", 1.15, (2, 2)), Member("pil-lanczos"), Member("opencv-linear", 1.15)):
            lib = get_stack(m.resizer).__class__(m.resizer, m.resizer, scale=m.scale, offset=m.offset)
            d = (ens._input(m, x) - lib.inputs(cifar, x)).abs().max().item()
            assert d < (1e-6 if m.resizer.startswith("pil") else 1.01 / 255), (m, d)


def test_members_that_coincide_count_once(cifar):
    ens = ensemble(cifar)
    native = ens.distinct(32, 32)
    assert sum(m.scale == 1.0 for m in native) == 1  # every resizer leaves a 32x32 image as it is
    assert len(ens.distinct(64, 96)) > len(native)
    z = ens(torch.rand(2, 3, 64, 96))
    assert z.shape == (len(ens.distinct(64, 96)), 2, 10)


def test_stacked_members_match_each_member_alone(cifar, photos):
    """The attack's one-product path (:class:`ric.stacks.robust._Plan`) gives every member's input as the member
    alone does: equal but for rare float32 ties (one level), and the same logits to 1e-2."""
    ens = ensemble(cifar)
    for a in photos[:2]:
        x = _x(a)
        h, w = x.shape[-2:]
        ms, p = ens.distinct(h, w), ens._plan(h, w)
        assert p is not None and len(p.crops) == len(ms) > 1
        for m, fast in zip(ms, p(x), strict=True):
            slow = ens._input(m, x)
            d = (fast - slow).abs()
            assert d.max().item() < 1.01 / 255 and (d > 1e-4).float().mean().item() < 0.01, (m, d.max().item())
    x = torch.rand(1, 3, 48, 40, requires_grad=True)
    z = ens(x)
    z.sum().backward()
    assert z.shape[0] == len(ens.distinct(48, 40)) and x.grad is not None and bool(x.grad.abs().sum() > 0)


def test_robust_ciphertexts_keep_their_label_on_every_stack(cifar, photos):
    sch = ExactScheme(cifar, attack={"ensemble": "serving-v1"})
    res = sch.encrypt(photos[:1], SecretKey.generate())  # without the set: opencv-linear near chance
    assert all(r.ciphertext is not None for r in res)
    for r in res:
        x = _x(r.ciphertext.pixels)
        v = verify(cifar, x, torch.tensor([r.target]))  # every named stack, with the real libraries
        assert set(v.margins) == set(STACKS) and not v.skipped
        assert bool(v.ok[0]), {k: float(m[0]) for k, m in v.margins.items()}
    lab = STACKS["opencv-cubic"].predict(cifar, _x(res[0].ciphertext.pixels))
    assert int(lab[0]) == res[0].target  # the lead is the label: the verifier's margins are label checks


def test_digit_attack_default_unchanged_and_ensemble_settings(cifar):
    """One member that is the model itself gives the same digits as no ensemble (same loss, same steps)."""
    g = torch.Generator().manual_seed(0)
    m = torch.randint(0, 64, (2, 3, 32, 32), generator=g)
    q0 = torch.randint(0, 4, (2, 3, 32, 32), generator=g)
    off = torch.rand(2, 3, 32, 32, generator=g) - 0.5
    t = torch.tensor([3, 5])
    a = DigitAttack(steps=20)(cifar, m, q0, off, t, 6)
    b = DigitAttack(steps=20, ensemble=[cifar])(cifar, m, q0, off, t, 6)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert DigitAttack(ensemble="serving-v1").config()["ensemble"] == "serving-v1"
    assert "ensemble=None" in repr(DigitAttack())
    with pytest.raises(ValueError, match="reduce"):
        DigitAttack(reduce="median", steps=1)(cifar, m, q0, off, t, 6)
    with pytest.raises(ValueError, match="precision"):
        DigitAttack(precision="fp8", steps=1, ensemble="serving-v1")(cifar, m, q0, off, t, 6)


def test_a_bf16_surrogate_makes_carriers_the_real_stacks_keep(cifar):
    """The attack may run its members in bf16 (the default where the device runs it natively): what it makes is
    checked by the real stacks in their own precisions, and it holds there as the fp32 attack's does."""
    from ric.stacks.runtimes import native_bf16

    g = torch.Generator().manual_seed(3)
    m = torch.randint(0, 64, (2, 3, 96, 128), generator=g)
    v0 = torch.rand(2, 3, 32, 42, generator=g) * 0.5 + 0.25
    t = torch.tensor([2, 7])
    for precision in ("fp32", "bf16"):
        q, steps = DigitAttack(steps=30, ensemble="serving-v1", precision=precision).smooth(cifar, m, v0, t, 6)
        x = (q.float() * 64 + m) / 255
        assert (steps >= 0).all() and bool(verify(cifar, x, t).ok.all()), precision
    cpu = torch.device("cpu")
    assert DigitAttack().precision_on(cpu) == ("bf16" if native_bf16(cpu) else "fp32")
    assert DigitAttack(precision="fp32").precision_on(cpu) == "fp32"


def test_classify_with_a_stack(tmp_path, capsys, samples):
    files = [str(f) for f in samples[0][:4]]

    def labels(*extra):
        capsys.readouterr()
        assert main(["classify", *files, "-c", "svhn-cnn7", "--json", *extra]) == 0
        return [r["label"] for r in json.loads(capsys.readouterr().out)["items"]]

    assert labels("--stack", "torch") == labels() == labels("--stack", "pil-bicubic")  # 32x32: no resize at all


def test_stack_errors_are_one_line(samples, capsys, monkeypatch):
    f = str(samples[0][0])
    for extra, msg in ((["--stack", "nope"], "unknown stack 'nope'"),
                       (["--stack", "torch", "--workers", "2"], "drop --ray"),
                       (["--stack", "torch", "--url", "http://127.0.0.1:9", "--token-file", f], "drop --url")):
        capsys.readouterr()
        assert main(["classify", f, *extra]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and msg in err[0], err
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "cv2" else real(n, *a))
    capsys.readouterr()
    assert main(["classify", f, "--stack", "opencv-area"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "needs cv2" in err[0] and "ric[stacks]" in err[0]


def test_smooth_carriers_look_alike_to_every_resizer(cifar):
    """The attack on a smooth carrier: its high digits follow an image at the network's grid, so antialiased and
    sampling resizers see far closer network inputs than on a carrier of independent digits, and it holds."""
    from ric.stacks import smooth_grid

    h, w = 96, 128
    grid = smooth_grid(cifar, h, w)
    assert grid == (32, 42)  # the declared resize of a 96x128 image: shorter side to 32
    assert smooth_grid(cifar, 32, 32) is None and smooth_grid(cifar, 24, 20) is None  # nothing is downsampled
    g = torch.Generator().manual_seed(0)
    m = torch.randint(0, 64, (2, 3, h, w), generator=g)
    v0 = torch.rand(2, 3, *grid, generator=g) * 0.5 + 0.25
    t = torch.tensor([3, 5])
    q, steps = DigitAttack(steps=30, ensemble="serving-v1").smooth(cifar, m, v0, t, 6)
    assert (steps >= 0).all() and q.dtype == torch.uint8 and int(q.max()) <= 3
    smooth = (q.float() * 64 + m) / 255
    rough = (torch.randint(0, 4, q.shape, generator=g).float() * 64 + m) / 255

    def spread(x):  # the largest mean difference between two stacks' network inputs
        ins = [STACKS[n].inputs(cifar, x) for n in ("torch", "pil-box", "opencv-linear", "opencv-cubic")]
        return max(float((a - b).abs().mean()) for a in ins for b in ins)

    assert spread(smooth) < spread(rough) / 2
    assert bool(verify(cifar, smooth, t).ok.all())
    small = ensemble(cifar, "serving-v1").smooth()
    assert {mb.resizer for mb in small.members} == {"declared", "opencv-linear"} and len(small) == 6
    assert small.smooth() is small


def test_verify_batches_the_fp32_stacks_without_changing_them(cifar):
    from ric.stacks.robust import lead

    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, 256, (3, 3, 48, 64), generator=g).float() / 255
    t = torch.tensor([0, 1, 2])
    v = verify(cifar, x, t)
    assert list(v.margins) == [n for n in STACKS if n not in v.skipped]  # in the order of the stacks
    given = verify(cifar, x, t, pixels=(x * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy())
    assert all(torch.equal(given.margins[n], v.margins[n]) for n in v.margins)  # the caller's uint8 array: the same
    for n in ("torch", "pil-bicubic", "opencv-area", "crop-1.15-shift2", "fp16", "bf16"):
        alone = lead(STACKS[n].logits(cifar, x), t)
        assert torch.allclose(v.margins[n], alone, atol=1e-3), n


def test_the_attack_keeps_nothing_of_a_model_after_it_goes():
    """Without a robustness set the smooth attack runs the declared preprocessing as one member, kept on the model:
    it must not keep the model alive (ric.api loads a classifier per call)."""
    import gc
    import weakref

    clf = load_classifier("cifar10-resnet18")
    g = torch.Generator().manual_seed(2)
    m = torch.randint(0, 64, (1, 3, 48, 64), generator=g)
    q, steps = DigitAttack(steps=2).smooth(clf, m, torch.rand(1, 3, 32, 42, generator=g) * 0.5 + 0.25,
                                            torch.tensor([1]), 6)
    assert q.shape == m.shape
    ref = weakref.ref(clf)
    del clf
    gc.collect()
    assert ref() is None
