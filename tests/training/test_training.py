"""Training mechanics on tiny data: logs, preview, checkpoints, resume, bundle."""

import json

import numpy as np
import pytest

from ric.datasets import ArrayDataset
from ric.schemes.paper import RIC
from ric.training import ClassifierRecipe, CodecRecipe, train_classifier, train_codec
from ric.zoo.bundles import read_config


def _tiny(n=48, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n)
    x = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    x[..., 0] = (y[:, None, None] * 25).astype(np.uint8)  # learnable signal
    return ArrayDataset("tiny", x, y.astype(np.int64), [str(i) for i in range(10)])


def test_classifier_training_resumes(tmp_path):
    r = ClassifierRecipe(name="tiny-cnn", arch="cnn7", dataset="tiny", epochs=2, batch_size=16,
                         arch_kwargs={"width": 4})
    cfg = train_classifier(r, _tiny(), _tiny(16, 1), tmp_path / "run", tmp_path / "out", log=lambda *_: None)
    assert cfg["epochs_done"] == 2 and 0 <= cfg["test_accuracy"] <= 1
    r.epochs = 3
    cfg = train_classifier(r, _tiny(), _tiny(16, 1), tmp_path / "run", tmp_path / "out", log=lambda *_: None)
    log = [json.loads(line) for line in (tmp_path / "run/log.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in log] == [1, 2, 3]  # resumed at epoch 3, not restarted
    assert read_config(tmp_path / "out")["epochs_done"] == 3


def test_codec_training_writes_a_working_bundle(tmp_path):
    from ric.classifiers import load_classifier
    from ric.keys import SecretKey

    clf = load_classifier("svhn-cnn7")
    r = CodecRecipe(name="tiny-ric", classifier="svhn-cnn7", dataset="tiny", epochs=1, batch_size=16,
                    pool_per_class=2, eval_images=8, nae_batch=4,
                    codec={"name": "ric-paper", "width": 8, "depth": 1, "se_blocks": 0, "feat": 4},
                    attack={"name": "cw-margin", "steps": 5})
    train_codec(r, clf, _tiny(32), _tiny(8, 1), tmp_path / "run", tmp_path / "out", log=lambda *_: None)
    assert (tmp_path / "run/preview.png").is_file() and (tmp_path / "run/ckpt.pt").is_file()
    rec = json.loads((tmp_path / "run/log.jsonl").read_text().splitlines()[-1])
    assert {"eval_psnr", "eval_agreement", "train_mse", "train_margin"} <= set(rec)
    r.epochs = 2
    train_codec(r, clf, _tiny(32), _tiny(8, 1), tmp_path / "run", tmp_path / "out", log=lambda *_: None)
    assert len((tmp_path / "run/log.jsonl").read_text().splitlines()) == 2
    ric = RIC.load(tmp_path / "out")
    assert ric.model_id == "tiny-ric" and ric.config["classifier_sha256"] == clf.weights_sha256
    x = _tiny(2, 3).tensors()[0]
    res = ric.encrypt(x, SecretKey.generate())
    assert len(res) == 2


def test_auxiliary_classes_are_dropped_from_the_shipped_head(tmp_path):
    from ric.classifiers import load_classifier

    rng = np.random.default_rng(5)
    aux = ArrayDataset("aux", rng.integers(0, 256, (20, 16, 16, 1), dtype=np.uint8), rng.integers(0, 4, 20),
                       [f"p{i}" for i in range(4)])
    r = ClassifierRecipe(name="tiny-aux", arch="resnet18", dataset="tiny", epochs=1, batch_size=16,
                         arch_kwargs={"width": 4, "stem": "s2", "input_size": 16}, grey_prob=0.5, jitter=0.2)
    cfg = train_classifier(r, _tiny(), _tiny(16, 1), tmp_path / "run", tmp_path / "out", log=lambda *_: None,
                           extras=[aux])
    assert cfg["class_names"] == [str(i) for i in range(10)]
    clf = load_classifier(tmp_path / "out")
    x = _tiny(16, 1).tensors()[0]
    assert clf(x).shape == (16, 10)  # 10 main classes, the 4 auxiliary ones are gone


def test_second_stage_starts_from_a_run(tmp_path):
    import torch

    r = ClassifierRecipe(name="tiny-cnn", arch="cnn7", dataset="tiny", epochs=1, batch_size=16,
                         arch_kwargs={"width": 4}, zoom=0.1, rotate=10, mixup=0.4)
    train_classifier(r, _tiny(), _tiny(16, 1), tmp_path / "a", tmp_path / "out_a", log=lambda *_: None)
    first = torch.load(tmp_path / "a/ckpt.pt", weights_only=False)["net"]
    msgs = []
    r2 = ClassifierRecipe(name="tiny-cnn", arch="cnn7", dataset="tiny", epochs=0, batch_size=16,
                          arch_kwargs={"width": 4}, init=str(tmp_path / "a"))
    train_classifier(r2, _tiny(), _tiny(16, 1), tmp_path / "b", tmp_path / "out_b", log=msgs.append)
    assert any("initialised from" in m for m in msgs)
    from ric.zoo.bundles import load_weights

    w = load_weights(tmp_path / "out_b")
    assert all(torch.equal(w[k], first[k]) for k in first)  # zero epochs: the stage-1 weights as they were


def _probe(tmp_path, **recipe):
    """A random dlib-face backbone saved as safetensors, 8 random 150x150 images in 2 classes, and a 1-epoch
    linear probe on them (the faces-dlibface recipe in miniature); returns (backbone, dataset, config)."""
    import torch
    from safetensors.torch import save_file

    from ric.classifiers.dlib_face import DlibFaceNet

    torch.manual_seed(0)
    backbone = {k: v for k, v in DlibFaceNet().state_dict().items()}
    tmp_path.mkdir(parents=True, exist_ok=True)
    save_file(backbone, str(tmp_path / "b.safetensors"))
    x = np.random.default_rng(0).integers(0, 256, (8, 150, 150, 3), dtype=np.uint8)
    ds = ArrayDataset("tinyfaces", x, (np.arange(8) % 2).astype(np.int64), ["a", "b"])
    r = ClassifierRecipe(name="probe", arch="dlib-face", dataset="tinyfaces", epochs=1, batch_size=4, pad=0,
                         backbone=str(tmp_path / "b.safetensors"), **recipe)
    return backbone, ds, train_classifier(r, ds, ds, tmp_path / "run", tmp_path / "out", log=lambda *_: None)


def test_linear_probe_on_a_frozen_backbone(tmp_path):
    """backbone + freeze_backbone (the faces-dlibface recipe): only the head moves; the bundle loads."""
    import torch
    from safetensors.torch import load_file

    from ric.classifiers import load_classifier

    backbone, _, _ = _probe(tmp_path, freeze_backbone=True, notes="test notes")
    out = load_file(str(tmp_path / "out/model.safetensors"))
    assert all(torch.equal(out[k], v) for k, v in backbone.items())
    assert set(out) - set(backbone) == {"head.weight", "head.bias"}
    assert "test notes" in (tmp_path / "out/MODEL_CARD.md").read_text()
    assert load_classifier(str(tmp_path / "out"))(torch.rand(1, 3, 150, 150)).shape == (1, 2)


def test_float16_backbone_is_trained_on_and_stored_as_shipped(tmp_path):
    """backbone_dtype=float16: the frozen backbone is rounded before training, stored in float16 (half the
    file), and the bundle as loaded reproduces the accuracy recorded at training time."""
    import torch
    from safetensors.torch import load_file

    from ric.classifiers import load_classifier
    from ric.training import evaluate_classifier

    backbone, ds, cfg = _probe(tmp_path, freeze_backbone=True, backbone_dtype="float16")
    out = load_file(str(tmp_path / "out/model.safetensors"))
    for k, v in backbone.items():
        if v.is_floating_point():
            assert out[k].dtype == torch.float16 and torch.equal(out[k], v.half())
    assert out["head.weight"].dtype == torch.float32
    xt, yt = ds.tensors()
    assert evaluate_classifier(load_classifier(str(tmp_path / "out")), xt, yt) == cfg["test_accuracy"]
    assert "float16" in (tmp_path / "out/MODEL_CARD.md").read_text()
    with pytest.raises(ValueError, match="backbone_dtype"):  # float16 storage is for a frozen backbone only
        _probe(tmp_path / "unfrozen", backbone_dtype="float16")


def test_scrambled_training_step_unscrambles_before_the_decoder():
    """With the identity codec, a scrambled pass must give back the plaintext up to the 8-bit floor; a wrong
    inverse (or none) would leave it shuffled."""
    import torch

    from ric.classifiers import load_classifier
    from ric.codec import make_codec
    from ric.eval.metrics import psnr
    from ric.training.codec import codec_step, random_perms

    gen = torch.Generator().manual_seed(0)
    clf = load_classifier("svhn-cnn7")
    x = _tiny(4, 2).tensors()[0]
    z = torch.rand(x.shape, generator=gen)
    t = clf.predict(x)
    perm = random_perms(4, x[0].numel(), gen, "cpu")
    ident = make_codec({"name": "identity"})
    c, xh, _, _ = codec_step(ident, clf, x, z, t, 0.8, 5.0, False, perm=perm)
    c0, _, _, _ = codec_step(ident, clf, x, z, t, 0.8, 5.0, False)
    assert psnr(xh.clamp(0, 1), x).min() > 43  # the identity floor: unscrambled correctly
    assert not torch.equal(c, c0)  # the ciphertext really is scrambled


def test_scrambled_crop_training_writes_a_scrambling_bundle(tmp_path):
    from ric.classifiers import load_classifier
    from ric.eval.metrics import psnr
    from ric.keys import SecretKey

    clf = load_classifier("svhn-cnn7")
    r = CodecRecipe(name="tiny-ric-v2", classifier="svhn-cnn7", dataset="tiny", epochs=1, batch_size=16,
                    pool_per_class=2, eval_images=8, nae_batch=4, lr=1e-5, scramble=True, crop=16, epoch_repeat=2,
                    codec={"name": "ric-residual", "width": 8, "depth": 1, "se_blocks": 0, "feat": 4},
                    attack={"name": "cw-margin", "steps": 5})
    train_codec(r, clf, _tiny(32), _tiny(8, 1), tmp_path / "run", tmp_path / "out", log=lambda *_: None)
    rec = json.loads((tmp_path / "run/log.jsonl").read_text().splitlines()[-1])
    assert rec["eval_psnr"] > 40  # an identity-initialised residual codec starts at the 8-bit floor
    ric = RIC.load(tmp_path / "out")
    assert ric.scramble and ric.config["scramble"] is True
    key = SecretKey.generate()
    x = _tiny(4, 3).tensors()[0]
    cts = [e.ciphertext for e in ric.encrypt(x, key) if e.ciphertext is not None]
    assert cts
    xh = ric.decrypt(cts, key)
    assert psnr(xh, x[:len(cts)]).min() > 35
