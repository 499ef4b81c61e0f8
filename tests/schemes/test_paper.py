import numpy as np
import pytest
import torch

from ric.errors import AuthenticationError, CiphertextError, InputError
from ric.eval.metrics import psnr
from ric.keys import SecretKey, new_nonce
from ric.schemes.paper import RIC
from ric.zoo import bundles
from ric.zoo.bundles import DATASET_MODELS


def test_shipped_model_roundtrip(shipped_ric, samples, key):
    _, x, _ = samples
    x = x[:8]
    res = shipped_ric.encrypt(x, key)
    assert all(r.ciphertext is not None for r in res)
    cts = [r.ciphertext for r in res]
    t = shipped_ric.predict(x)
    c = torch.stack([torch.from_numpy(ct.pixels).permute(2, 0, 1) for ct in cts]).float() / 255
    assert torch.equal(shipped_ric.predict(c), t)  # the cloud's label equals the plaintext label
    assert [ct.target for ct in cts] == t.tolist()
    xh = shipped_ric.decrypt(cts, key)
    assert psnr(xh, x).mean() > 38
    # ciphertext does not look like the plaintext
    assert psnr(c, x).mean() < 15
    wrong = shipped_ric.decrypt(cts, SecretKey.generate(), verify=False)
    assert psnr(wrong, x).mean() < 12
    with pytest.raises(AuthenticationError):
        shipped_ric.decrypt(cts, SecretKey.generate())


def test_fresh_nonce_per_image(samples, key):
    from ric.schemes.paper import RIC

    _, x, _ = samples
    res = RIC.load("svhn-ric-v2").encrypt(torch.cat([x[:1], x[:1]]), key)  # the same image twice
    cts = [r.ciphertext for r in res if r.ciphertext]
    assert len(cts) == 2, [r.error for r in res]  # both encrypted: the comparison below is not vacuous
    assert cts[0].nonce != cts[1].nonce and not np.array_equal(cts[0].pixels, cts[1].pixels)


def test_mislabelled_ciphertexts_are_reported_not_written(samples, key):
    from ric.classifiers import load_classifier
    from ric.codec import make_codec
    from ric.schemes.paper import RIC

    # an RNI instead of an NAE cannot steer the classifier: most images must fail, and say why
    ric = RIC(make_codec({"name": "identity"}), load_classifier("svhn-cnn7"), alpha=0.8,
              attack={"name": "none"}, nae_batch=4, max_retries=1)
    res = ric.encrypt(samples[1][:8], key)
    failed = [r for r in res if r.ciphertext is None]
    assert failed and all(r.attempts == 2 and "does not label" in r.error for r in failed)
    for r in res:
        if r.ciphertext is not None:
            c = torch.from_numpy(r.ciphertext.pixels).permute(2, 0, 1)[None].float() / 255
            assert ric.predict(c).item() == r.target


def test_shape_and_model_checks(tiny_ric, shipped_ric, key, samples):
    with pytest.raises(InputError, match="expects 32x32"):
        tiny_ric.encrypt(torch.rand(1, 3, 40, 32), key)
    with pytest.raises(InputError, match="3-channel"):
        tiny_ric.encrypt(torch.rand(1, 1, 32, 32), key)
    from ric.container import Ciphertext

    ct = Ciphertext(np.zeros((32, 32, 3), np.uint8), "tiny", bytes(16), 0, key.key_id).sign(key)
    with pytest.raises(CiphertextError, match="made with model"):
        shipped_ric.decrypt([ct], key)


def test_scrambled_model_recovers_like_the_plain_one(samples, key):
    """svhn-ric-scrambled: same codec and NAEs as svhn-ric, encoder output permuted by a secret per-image
    permutation; the cloud's labels and the recovery are unchanged, the ciphertext pixels differ."""
    from ric.schemes.paper import RIC

    _, x, _ = samples
    x = x[:8]
    plain, scr = RIC.load("svhn-ric", refine=False), RIC.load("svhn-ric-scrambled", refine=False)
    assert scr.scramble and not plain.scramble
    res = scr.encrypt(x, key)
    cts = [r.ciphertext for r in res]
    assert all(cts)
    c = torch.stack([torch.from_numpy(ct.pixels).permute(2, 0, 1) for ct in cts]).float() / 255
    assert torch.equal(scr.predict(c), plain.predict(x))
    xh = scr.decrypt(cts, key)
    assert psnr(xh, x).mean() > 38
    # the same NAEs without the permutation give the plain model's ciphertexts, which differ
    z = scr.nae(key, [ct.nonce for ct in cts], torch.tensor([ct.target for ct in cts]), (3, 32, 32))
    c_plain = plain.encode_with(x, z)
    assert not torch.equal(c_plain, c)
    perm = scr.perms(key, [ct.nonce for ct in cts], (3, 32, 32))
    assert torch.equal(scr.encode_with(x, z, perm), c)
    assert torch.allclose(scr.decode_with(c, z, perm), xh)
    with pytest.raises(InputError, match="scrambles"):
        scr.decode_with(c, z)
    # wrong key: garbage, as for the plain model
    assert psnr(scr.decrypt(cts, SecretKey.generate(), verify=False), x).mean() < 12


def test_ciphertext_of_another_model_version_is_refused(shipped_ric, samples, key, tmp_path):
    """The ciphertext names the model's settings fingerprint (authenticated): a model of the same name whose
    NAE settings changed cannot regenerate the noise, so it refuses the file instead of returning garbage;
    files from before the field (no fingerprint) still decrypt; stripping the field breaks the tag."""
    from dataclasses import replace

    from ric.container import read_ciphertext
    from ric.schemes.paper import RIC

    ct = shipped_ric.encrypt(samples[1][:1], key)[0].ciphertext
    assert ct.model_fp == shipped_ric.fingerprint and len(ct.model_fp) == 16
    assert read_ciphertext(ct.save(tmp_path / "c.png")).model_fp == ct.model_fp
    changed = RIC(shipped_ric.codec, shipped_ric.classifier, alpha=0.8,
                  attack={**shipped_ric.attack.config(), "steps": 99}, model_id=shipped_ric.model_id)
    assert changed.fingerprint != shipped_ric.fingerprint
    with pytest.raises(CiphertextError, match="another version of model 'svhn-ric'"):
        changed.decrypt([ct], key)
    with pytest.raises(AuthenticationError):
        replace(ct, model_fp="").verify(key)
    legacy = replace(ct, model_fp="").sign(key)  # as written before the field existed
    assert torch.equal(shipped_ric.decrypt([legacy], key), shipped_ric.decrypt([ct], key))


def _recovery_vs_floor(ric, x, key):
    """Mean recovery PSNR of ``ric`` and of the identity codec on the same images and the same NAEs."""
    from ric.codec import make_codec
    from ric.eval.metrics import psnr
    from ric.keys import new_nonce

    nonces = [new_nonce() for _ in range(len(x))]
    shape = tuple(x.shape[1:])
    z = ric.nae(key, nonces, ric.predict(x), shape)
    perm = ric.perms(key, nonces, shape)
    xh = ric.decode_with(ric.encode_with(x, z, perm), z, perm)
    ident = RIC(make_codec({"name": "identity"}), ric.classifier, alpha=ric.alpha)
    x_id = ident.decode_with(ident.encode_with(x, z), z)
    return psnr(xh, x).mean().item(), psnr(x_id, x).mean().item()


def test_shipped_svhn_v2_codec_beats_the_identity_floor(samples, key):
    """The second-generation SVHN codec must do better than doing nothing clever (DESIGN.md's 8-bit floor) on
    the shipped SVHN samples (test-split images), with the same NAEs for both; and it scrambles."""
    _, x, _ = samples
    ric = RIC.load("svhn-ric-v2")
    assert ric.scramble
    ours, floor = _recovery_vs_floor(ric, x[:16], key)
    assert ours > floor + 0.5, (ours, floor)


def test_shipped_faces_v2_codec_beats_the_identity_floor(data_root, key):
    from ric.datasets import load_dataset

    ds = load_dataset("faces", "test", data_root)
    x = torch.from_numpy(ds.images[:2]).permute(0, 3, 1, 2).float() / 255
    ours, floor = _recovery_vs_floor(RIC.load("faces-ric-v2"), x, key)
    assert ours > floor + 0.5, (ours, floor)


def test_shipped_v3_codecs_beat_v2_on_the_same_naes(samples, data_root, key):
    """The third-generation codecs replaced v2 as the sets' models only because they recover better: on the same
    images and NAEs (no refinement on either side, so only the codec differs)."""
    from ric.datasets import load_dataset

    _, x, _ = samples
    faces = load_dataset("faces", "test", data_root)
    xf = torch.from_numpy(faces.images[:2]).permute(0, 3, 1, 2).float() / 255
    for new, old, imgs in (("svhn-ric-v3", "svhn-ric-v2", x[:16]), ("faces-ric-v3", "faces-ric-v2", xf)):
        a, b = RIC.load(new, refine=False), RIC.load(old, refine=False)
        assert a.scramble and DATASET_MODELS[bundles.dataset_of(new)] == new
        t = b.predict(imgs)
        nonces = [new_nonce() for _ in imgs]
        z = b.nae(key, nonces, t, tuple(imgs.shape[1:]))
        perm = b.perms(key, nonces, tuple(imgs.shape[1:]))
        pa = psnr(a.decode_with(a.encode_with(imgs, z, perm), z, perm), imgs).mean()
        pb = psnr(b.decode_with(b.encode_with(imgs, z, perm), z, perm), imgs).mean()
        assert pa > pb, (new, float(pa), float(pb))


def test_bundles_can_turn_refinement_off(tmp_path):
    """A bundle's config may turn refinement off (``"refine": false``) or tune it; the card says which."""
    import json
    import shutil

    from ric.training.codec import codec_card

    assert RIC.load("faces-ric-v3").refinement is not None and RIC.load("svhn-ric-v3").refinement is not None
    for refine, expect in ((False, None), ({"steps": 5}, 5)):
        d = shutil.copytree(bundles.resolve("svhn-ric-v3"), tmp_path / f"b{expect}")
        cfg = {**bundles.read_config(d), "refine": refine}
        (d / "config.json").write_text(json.dumps(cfg))
        r = RIC.load(d).refinement
        assert (r is None) if expect is None else (r.steps == expect)
        assert ("): off" in codec_card(cfg)) == (expect is None)


def test_refinement_is_the_default_and_never_recovers_worse(samples, key):
    """Shipped models refine their ciphertexts (ric.codec.refine); on the same NAEs the refined ciphertexts decode
    at least as well, image by image, and keep the label."""
    from ric.keys import new_nonce
    from ric.schemes.paper import RIC

    _, x, _ = samples
    x = x[:4]
    ref, raw = RIC.load("svhn-ric-v2"), RIC.load("svhn-ric-v2", refine=False)
    assert ref.refinement is not None and raw.refinement is None
    t = raw.predict(x)
    nonces = [new_nonce() for _ in x]
    a, b = ref.encrypt_traced(x, t, key, nonces), raw.encrypt_traced(x, t, key, nonces)
    first = [i for i in range(4) if a.attempts[i] == 1 and b.attempts[i] == 1]
    assert first and torch.equal(a.z[first], b.z[first])  # the same NAEs: only the refinement differs
    pa = psnr(ref.decode_with(a.c, a.z, a.perm), x)[first]
    pb = psnr(raw.decode_with(b.c, b.z, b.perm), x)[first]
    assert (pa >= pb - 1e-3).all() and pa.mean() > pb.mean()
    assert torch.equal(a.labels[first], t[first])


def test_refinement_switch_reaches_the_scheme():
    from ric.schemes import load_scheme

    assert load_scheme("paper").ric.refinement is not None
    assert load_scheme("paper", refine=False).ric.refinement is None
