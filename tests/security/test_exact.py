"""The exact scheme's security measurements on small data: the randomness tests separate random from biased
bits, the simulator makes label-only ciphertexts the classifier accepts, the distinguisher has power, and the
report's exact section runs end to end on a handful of images."""

import json
import os
import sys

import numpy as np
import pytest

from ric.keys import SecretKey, new_nonce
from ric.schemes import exact as ex
from ric.security.exact import (
    chi2_sf,
    chi_square_test,
    digit_tests,
    digits_to_bits,
    distinguish,
    label_reference,
    matched_partners,
    monobit_test,
    p_value_summary,
    payload_digits,
    randomness_tests,
    runs_test,
)


def _urandom_digits(n, bits=6):
    return np.frombuffer(os.urandom(n), dtype=np.uint8) & ((1 << bits) - 1)


def test_nist_examples():
    """SP 800-22 rev. 1a, sections 2.1.8 and 2.3.8."""
    assert monobit_test(np.array([int(c) for c in "1011010101"])) == pytest.approx(0.527089, abs=1e-6)
    assert runs_test(np.array([int(c) for c in "1001101011"])) == pytest.approx(0.147232, abs=1e-6)


def test_random_digits_give_uniform_p_values():
    per = [digit_tests(_urandom_digits(3000), 6) for _ in range(300)]
    for k in ("chi_square", "monobit", "runs"):
        s = p_value_summary([p[k] for p in per])
        assert s["share_below_0.01"] <= 0.04, (k, s)
        assert 0.3 < s["median"] < 0.7 and s["uniformity_p"] > 1e-4, (k, s)


def test_biased_bits_fail():
    rng = np.random.default_rng(0)
    stream = (rng.random(6 * 3000) < 0.55).astype(np.uint8)  # 55 % ones
    digits = (stream.reshape(-1, 6) * (1 << np.arange(5, -1, -1))).sum(1)
    p = digit_tests(digits, 6)
    assert p["chi_square"] < 1e-6 and p["monobit"] < 1e-6 and p["runs"] < 1e-6
    alternating = np.tile([0, 1], 9000).astype(np.uint8)  # balanced, far too many runs
    assert monobit_test(alternating) == 1.0 and runs_test(alternating) < 1e-10
    assert chi_square_test(np.zeros(3000, dtype=np.uint8), 6) < 1e-10
    assert np.array_equal(digits_to_bits(digits, 6), stream)


def test_chi_square_fallback_without_scipy(monkeypatch):
    exact = chi2_sf(80.0, 63)
    monkeypatch.setitem(sys.modules, "scipy.stats", None)  # import scipy.stats now raises ImportError
    approx = chi2_sf(80.0, 63)
    assert approx == pytest.approx(exact, abs=2e-3) and 0.05 < approx < 0.1


def test_payload_digits_skip_the_header():
    key = SecretKey.generate()
    shape, plain = (16, 16, 3), np.full((16, 16, 3), 7, dtype=np.uint8)
    m = ex.seal(key, new_nonce(), 6, shape, plain)
    digits, bits = payload_digits(m)
    assert bits == 6 and len(digits) == 16 * 16 * 3 - 1 - 36 and digits.max() < 64
    assert np.array_equal(digits, m.reshape(-1)[37:])
    r = randomness_tests(np.stack([ex.seal(key, new_nonce(), 6, shape, plain) for _ in range(20)]))
    assert r["ciphertexts"] == 20 and r["b"] == 6 and r["digits_per_ciphertext"] == len(digits)
    assert r["monobit"]["share_below_0.01"] <= 0.1  # a constant image sealed: random-looking digits


def test_distinguisher_has_power_and_no_false_alarm():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(200, 10)), rng.normal(size=(200, 10))
    same = distinguish(a, b, permutations=100)
    assert same["band_95"][0] - 0.03 <= same["accuracy"] <= same["band_95"][1] + 0.03
    assert same["p_value"] > 0.01
    shifted = distinguish(a, b + np.r_[0.8, np.zeros(9)])
    assert shifted["accuracy"] > 0.6 and shifted["p_value"] < 0.01 and shifted["accuracy"] > shifted["band_95"][1]
    # both sets hold the same 40 labels, and the features cluster by label: grouped folds and within-label
    # relabellings keep the accuracy inside its null band
    labels = np.repeat(np.arange(40), 2)
    centre = rng.normal(size=(40, 20)) * 3
    fa, fb = centre[labels] + rng.normal(size=(80, 20)), centre[labels] + rng.normal(size=(80, 20))
    grouped = distinguish(fa, fb, labels, labels, permutations=100)
    assert grouped["grouped"] and grouped["band_95"][0] - 0.02 <= grouped["accuracy"]
    assert abs(grouped["chance"] - 0.5) < 0.05


def test_label_reference_and_partners():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 50)
    x = np.stack([np.full((4, 4, 3), 40 if c == 0 else 200, np.uint8) for c in labels])
    x = (x + rng.integers(0, 10, x.shape)).astype(np.uint8)
    r = label_reference(labels, x, labels, x)
    assert r["mean"] > 0.9  # brightness follows the label here: the label alone reveals it
    idx = matched_partners(labels, np.array([0, 1, 1, 2]))
    assert labels[idx[0]] == 0 and labels[idx[1]] == 1 and idx[1] != idx[2] and idx[3] == -1


@pytest.fixture(scope="module")
def svhn_scheme():
    from ric.classifiers import load_classifier

    return ex.ExactScheme(load_classifier("svhn-cnn7"))


def test_simulated_ciphertexts_carry_the_label_and_header(svhn_scheme, samples):
    from ric.security.exact import simulate_ciphertexts

    key = SecretKey.generate()
    targets = [0, 3, 7, 9]
    px, attempts = simulate_ciphertexts(svhn_scheme, targets, (32, 32, 3), key.key_id)
    assert (attempts > 0).all()
    assert svhn_scheme._predict(px).tolist() == targets
    hd = ex.read_header(px[0])
    assert hd.key_id == key.key_id and hd.bits == svhn_scheme.bits
    with pytest.raises(Exception):  # noqa: B017 - no plaintext in there: the payload does not open
        ex.open_sealed(key, px[0])


def test_exact_section_end_to_end(tmp_path, monkeypatch, data_root):
    """evaluate_exact_model on a handful of SVHN images, rendered into the report; the keyless statistics are
    loosely at noise level and the distinguisher's control is caught."""
    from ric.security import exact_report as xr
    from ric.security.render import render

    monkeypatch.setitem(xr.EXACT_SIZES, ("svhn", True), dict(n_eval=48, kpa=[32], kpa_epochs=1, cloud_epochs=1,
                                                              cloud_size=32, n_cal=96))

    def small_pool(data, sch, dataset, root):  # 300 other test images instead of every other image
        pool = data.test.images[np.setdiff1d(np.arange(len(data.test.images)), data.sel)[:300]]
        return pool, sch._predict(pool).numpy()

    monkeypatch.setattr(xr, "_pool", small_pool)
    r = xr.evaluate_exact_model("exact:svhn-cnn7", True, tmp_path / "run", tmp_path, data_root, log=lambda *_: None)
    r = json.loads(json.dumps(r))  # as stored
    assert r["bit_exact"] == 1.0 and r["simulation"]["simulated_hit"] == 1.0
    assert all(abs(v) < 0.7 for v in r["keyless"]["calibrated"].values())  # noise band ±0.28
    control = r["simulation"]["distinguisher_control"]  # caught: above its own chance band (on 96 images its
    assert control["accuracy"] > control["band_95"][1] and control["p_value"] < 0.05  # accuracy is 0.79-0.83)
    assert r["randomness"]["ciphertexts"] == 48 + 32
    md = render({"command": "c", "machine": "x", "quick": True, "seconds": 1, "models": {"exact:svhn-cnn7": r}})
    assert "Scheme `exact`" in md and "### E2. Randomness" in md and "simulated from the label" in md
    assert (tmp_path / "svhn-cnn7-exact_simulation.png").is_file()
