"""Security evaluation of the ``exact`` scheme (:mod:`ric.schemes.exact`): what a ciphertext reveals.

The argument: a ciphertext is ``c = 2^b·q + m``. ``m`` (the ``b`` low bits) is a public header (``b``, magic,
version, key id, nonce) followed by ChaCha20-Poly1305 output under a per-image sub-key, indistinguishable from
random bits without the key. ``q`` (the high digits) starts from keyed random digits and is moved by a margin
attack whose only inputs are the classifier, ``t = C(x)`` and ``m``: it depends on ``x`` only through ``t``. So
anyone can produce ciphertexts distributed like the real ones from the label alone
(:func:`simulate_ciphertexts`), and nothing about ``x`` beyond ``t`` and its size can be learnt from ``c``.

The measurements here test that claim on real data: the keyless statistics and a distinguisher on real
ciphertexts against ciphertexts of other images with the same labels and against simulated ones; randomness
tests of the sealed low digits (chi-square, NIST SP 800-22 frequency and runs); the paper scheme's attacks
(blind filters, the known-plaintext network, the curious cloud) are run by :mod:`ric.security.report`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import numpy as np
import torch

from ric.keys import SecretKey, new_nonce
from ric.schemes import exact as ex
from ric.security import STATS, Images, ciphertext_features, plaintext_stats, stat_correlations

P_BINS = 10  # histogram bins of the p-values (NIST SP 800-22, section 4.2.2)


# ------------------------------------------------------------------------------------------ randomness
def chi2_sf(x: float, df: int) -> float:
    """P(χ²_df ≥ x): scipy's ``chi2.sf`` when scipy is installed, else the Wilson–Hilferty normal
    approximation (accurate to about 1e-3 in p for df ≥ 10)."""
    try:
        from scipy.stats import chi2

        return float(chi2.sf(x, df))
    except ImportError:
        z = ((x / df) ** (1 / 3) - (1 - 2 / (9 * df))) / math.sqrt(2 / (9 * df))
        return 0.5 * math.erfc(z / math.sqrt(2))


def digits_to_bits(digits: np.ndarray, bits: int) -> np.ndarray:
    """The bit stream (MSB first) of ``bits``-bit digits, as the scheme writes it."""
    shifts = np.arange(bits - 1, -1, -1, dtype=np.uint8)
    return ((np.asarray(digits, dtype=np.uint8).reshape(-1)[:, None] >> shifts) & 1).reshape(-1)


def chi_square_test(digits: np.ndarray, bits: int) -> float:
    """p-value of Pearson's chi-square test that ``bits``-bit digits are uniform on 0..2^bits−1."""
    k = 1 << bits
    counts = np.bincount(np.asarray(digits, dtype=np.int64).reshape(-1), minlength=k)[:k]
    expected = counts.sum() / k
    return chi2_sf(float(((counts - expected) ** 2 / expected).sum()), k - 1)


def monobit_test(bit_stream: np.ndarray) -> float:
    """NIST SP 800-22 frequency (monobit) test: p = erfc(|Σ(2ε−1)| / √(2n))."""
    n = len(bit_stream)
    s = float(2 * int(np.sum(bit_stream)) - n)
    return math.erfc(abs(s) / math.sqrt(2 * n))


def runs_test(bit_stream: np.ndarray) -> float:
    """NIST SP 800-22 runs test: p = erfc(|V − 2nπ(1−π)| / (2√(2n)·π(1−π))), V the number of runs; 0 when the
    frequency prerequisite |π − ½| < 2/√n fails (as NIST specifies)."""
    e = np.asarray(bit_stream, dtype=np.int8)
    n = len(e)
    pi = float(e.mean())
    if abs(pi - 0.5) >= 2 / math.sqrt(n):
        return 0.0
    v = 1 + int(np.count_nonzero(e[1:] != e[:-1]))
    return math.erfc(abs(v - 2 * n * pi * (1 - pi)) / (2 * math.sqrt(2 * n) * pi * (1 - pi)))


def digit_tests(digits: np.ndarray, bits: int) -> dict[str, float]:
    """The three tests on one sequence of ``bits``-bit digits: p-values."""
    stream = digits_to_bits(digits, bits)
    return {"chi_square": chi_square_test(digits, bits), "monobit": monobit_test(stream), "runs": runs_test(stream)}


def payload_digits(pixels: np.ndarray) -> tuple[np.ndarray, int]:
    """(low digits of the sealed payload region, ``b``) of one exact-scheme ciphertext (uint8 H×W×C): every
    sub-pixel after sub-pixel 0 (which holds ``b``) and after the digits that hold any bit of the public
    header (magic, version, key id, nonce)."""
    flat = np.ascontiguousarray(pixels, dtype=np.uint8).reshape(-1)
    bits = int(flat[0] & 7)
    start = 1 + -(-8 * ex.HEADER.size // bits)
    return flat[start:] & ((1 << bits) - 1), bits


def p_value_summary(p: Sequence[float]) -> dict:
    """Share below 0.01 (≈1 % for random data; its 95 % binomial band), the 10-bin histogram of the p-values and
    NIST's uniformity p-value of that histogram (chi-square, 9 degrees of freedom)."""
    p = np.asarray(p, dtype=np.float64)
    hist = np.histogram(p, bins=P_BINS, range=(0, 1))[0]
    exp = len(p) / P_BINS
    band = 1.96 * math.sqrt(0.01 * 0.99 / max(len(p), 1))
    return {"n": len(p), "share_below_0.01": float((p < 0.01).mean()), "band_95": [max(0.0, 0.01 - band), 0.01 + band],
            "histogram": hist.tolist(), "uniformity_p": chi2_sf(float(((hist - exp) ** 2 / exp).sum()), P_BINS - 1),
            "min": float(p.min()), "median": float(np.median(p))}


def randomness_tests(ciphertexts: Images) -> dict:
    """:func:`digit_tests` on the payload digits of every ciphertext (uint8 N×H×W×C or a sequence of images),
    summarised per test by :func:`p_value_summary`; also the digits and bits each test saw per ciphertext."""
    per = [digit_tests(*payload_digits(c)) for c in (ciphertexts if not isinstance(ciphertexts, np.ndarray)
                                                    else list(ciphertexts))]
    d, b = payload_digits(ciphertexts[0])
    out = {k: p_value_summary([r[k] for r in per]) for k in ("chi_square", "monobit", "runs")}
    out.update(ciphertexts=len(per), digits_per_ciphertext=len(d), bits_per_ciphertext=len(d) * b, b=b,
               chi_square_p="scipy.stats.chi2.sf" if _has_scipy() else "Wilson-Hilferty approximation")
    return out


def _has_scipy() -> bool:
    try:
        import scipy.stats  # noqa: F401
    except ImportError:
        return False
    return True


# ------------------------------------------------------------------------------------------ simulation
def _label_only_digits(key_id: str, nonce: bytes, bits: int, shape: tuple[int, int, int]) -> np.ndarray:
    """Low digits made without any plaintext: ``b``, the public header, then random bytes in place of the
    sealed payload (``os.urandom``)."""
    n = shape[0] * shape[1] * shape[2]
    header = ex.HEADER.pack(ex.MAGIC, ex.VERSION, bytes.fromhex(key_id), nonce)
    body = os.urandom(ex.capacity_bytes(shape, bits) - len(header))
    return np.concatenate([[bits], ex.to_digits(header + body, bits, n - 1)]).astype(np.uint8).reshape(shape)


def simulate_ciphertexts(scheme: ex.ExactScheme, targets: Sequence[int], shape: tuple[int, int, int],
                         key_id: str, sim_key: SecretKey | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Ciphertext pixels (uint8 N×H×W×C) made from the labels ``targets`` alone: random digits in place of
    the sealed payload under the public header of ``key_id``, and the scheme's own attack on the high digits
    (:meth:`~ric.schemes.exact.ExactScheme.adversarial_digits`, started from ``sim_key``, a key of the
    simulator's) until it passes the scheme's own checks (:meth:`~ric.schemes.exact.ExactScheme.holds`: the
    label, and every serving stack with a robustness set); misses are retried with a fresh nonce like the scheme
    does. Returns
    (pixels, attempts per image); an image that never hits keeps its last try (attempts = −1)."""
    sim_key = sim_key or SecretKey.generate()
    t = torch.as_tensor(list(targets), dtype=torch.long)
    out = np.zeros((len(t), *shape), dtype=np.uint8)
    attempts = np.zeros(len(t), dtype=np.int64)
    pending = list(range(len(t)))
    for _ in range(1 + scheme.max_retries):
        if not pending:
            break
        still = []
        for s in range(0, len(pending), scheme.batch_size):
            part = pending[s:s + scheme.batch_size]
            nonces = [new_nonce() for _ in part]
            m = np.stack([_label_only_digits(key_id, n, scheme.bits, shape) for n in nonces])
            q, steps = scheme.adversarial_digits(m, nonces, t[part].to(scheme.device), shape, sim_key)
            c = ((q.cpu().permute(0, 2, 3, 1).numpy().astype(np.uint8) << scheme.bits) | m).astype(np.uint8)
            hit = scheme.holds(c, t[part], steps)
            for j, i in enumerate(part):
                out[i] = c[j]
                attempts[i] += 1
                if not hit[j]:
                    still.append(i)
        pending = still
    attempts[pending] = -1
    return out, attempts


# ------------------------------------------------------------------------------------------ distinguisher
def distinguisher_features(ciphertexts: np.ndarray, bits: int) -> np.ndarray:
    """Per-image features of ciphertexts (uint8 N×H×W×C) a keyless distinguisher can use: the keyless
    estimator's :func:`~ric.security.ciphertext_features`, the histogram of the high digits, per-channel means
    and standard deviations of the high and low digits, and the mean absolute difference of neighbouring
    high digits (across rows and columns). N × F, float64."""
    c = np.asarray(ciphertexts, dtype=np.uint8)
    q, m = (c >> bits).astype(np.float64), (c & ((1 << bits) - 1)).astype(np.float64)
    nq = 1 << (8 - bits)
    qh = np.stack([np.bincount(r.astype(np.int64), minlength=nq)[:nq] / r.size for r in q.reshape(len(c), -1)])
    parts = [ciphertext_features(c).astype(np.float64), qh, q.mean((1, 2)), q.std((1, 2)), m.mean((1, 2)),
             m.std((1, 2)), np.abs(np.diff(q, axis=1)).mean((1, 2, 3))[:, None],
             np.abs(np.diff(q, axis=2)).mean((1, 2, 3))[:, None]]
    return np.concatenate(parts, 1)


def _logistic(xtr: np.ndarray, ytr: np.ndarray, ridge: float, iters: int = 30) -> np.ndarray:
    """L2-regularised logistic regression by Newton's method (bias unregularised): weights incl. bias."""
    a = np.concatenate([xtr, np.ones((len(xtr), 1))], 1)
    w = np.zeros(a.shape[1])
    reg = ridge * np.eye(a.shape[1])
    reg[-1, -1] = 0
    for _ in range(iters):
        p = 1 / (1 + np.exp(-np.clip(a @ w, -30, 30)))
        g = a.T @ (p - ytr) + reg @ w
        h = (a * (p * (1 - p))[:, None]).T @ a + reg + 1e-9 * np.eye(a.shape[1])
        w -= np.linalg.solve(h, g)
    return w


def _folds(y: np.ndarray, groups: np.ndarray | None, folds: int, rng: np.random.Generator) -> np.ndarray:
    """Fold of every row: whole groups per fold when ``groups`` are given, else stratified by ``y``."""
    if groups is not None:
        u = np.unique(groups)
        of = dict(zip(u[rng.permutation(len(u))].tolist(), (np.arange(len(u)) % folds).tolist(), strict=True))
        return np.array([of[v] for v in groups.tolist()])
    fold = np.empty(len(y), dtype=np.int64)
    for part in (np.flatnonzero(y == 0), np.flatnonzero(y == 1)):
        fold[part[rng.permutation(len(part))]] = np.arange(len(part)) % folds
    return fold


def _cv_accuracy(x: np.ndarray, y: np.ndarray, fold: np.ndarray, ridge: float) -> float:
    """Cross-validated accuracy of :func:`_logistic` (features standardised on each training fold)."""
    correct = 0
    for f in np.unique(fold):
        tr, te = fold != f, fold == f
        mu, sd = x[tr].mean(0), x[tr].std(0) + 1e-9
        w = _logistic((x[tr] - mu) / sd, y[tr], ridge)
        z = np.concatenate([(x[te] - mu) / sd, np.ones((int(te.sum()), 1))], 1) @ w
        correct += int(((z > 0) == (y[te] > 0.5)).sum())
    return correct / len(x)


def _relabel(y: np.ndarray, groups: np.ndarray | None, rng: np.random.Generator) -> np.ndarray:
    """A random relabelling under the null: within each group when ``groups`` are given."""
    if groups is None:
        return rng.permutation(y)
    out = y.copy()
    for g in np.unique(groups):
        idx = np.flatnonzero(groups == g)
        out[idx] = y[idx[rng.permutation(len(idx))]]
    return out


def distinguish(feats_a: np.ndarray, feats_b: np.ndarray, groups_a=None, groups_b=None, folds: int = 5,
                ridge: float = 1.0, seed: int = 0, permutations: int = 200) -> dict:
    """Cross-validated accuracy of a logistic regression telling set ``a`` from set ``b``, against its own
    chance distribution: the same procedure on ``permutations`` random relabellings of the pooled sets.

    ``groups_*`` (e.g. the labels, when both sets hold the same labels): folds take whole groups and the
    relabellings shuffle within groups, the valid null when the sets are exchangeable given the group. This
    matters when the features cluster by group (the high digits carry the label): a held-out point's group
    mates of the other set would otherwise pull its prediction the wrong way, and cross-validation would score
    well *below* 50 % without any signal. Without groups the folds are stratified. Returns the accuracy, the
    null's mean and 2.5–97.5 % band, and the one-sided permutation p-value (the share of relabellings that
    score at least as well)."""
    x = np.concatenate([feats_a, feats_b])
    y = np.concatenate([np.zeros(len(feats_a)), np.ones(len(feats_b))])
    groups = None if groups_a is None else np.concatenate([np.asarray(groups_a), np.asarray(groups_b)])
    rng = np.random.default_rng(seed)
    fold = _folds(y, groups, folds, rng)
    acc = _cv_accuracy(x, y, fold, ridge)
    null = np.array([_cv_accuracy(x, _relabel(y, groups, rng), fold, ridge) for _ in range(permutations)])
    return {"accuracy": acc, "chance": float(null.mean()), "band_95": [float(np.percentile(null, 2.5)),
                                                                        float(np.percentile(null, 97.5))],
            "p_value": float((1 + (null >= acc).sum()) / (1 + permutations)), "permutations": permutations,
            "grouped": groups is not None, "n": len(x), "features": x.shape[1], "folds": folds}


# ------------------------------------------------------------------------------------------ label reference
def label_reference(train_labels: np.ndarray, train_plaintexts: Images, labels: np.ndarray,
                    plaintexts: Images) -> dict[str, float]:
    """What the label alone (which the scheme reveals by design) says about each statistic: predict each image's
    :func:`~ric.security.plaintext_stats` by the mean over the training images with the same label, and
    correlate with the truth (Pearson r; nan where constant)."""
    st_tr, truth = plaintext_stats(train_plaintexts), plaintext_stats(plaintexts)
    train_labels, labels = np.asarray(train_labels), np.asarray(labels)
    est = {}
    for k in STATS:
        overall = st_tr[k].mean()
        means = {int(c): st_tr[k][train_labels == c].mean() for c in np.unique(train_labels)}
        est[k] = np.array([means.get(int(c), overall) for c in labels])
    return stat_correlations(est, truth)


def matched_partners(pool_labels: np.ndarray, labels: np.ndarray, seed: int = 0) -> np.ndarray:
    """For each of ``labels``, the index of a pool image with the same label (drawn without replacement while
    the pool's images of that label last, then with replacement); −1 when the pool has none."""
    rng = np.random.default_rng(seed)
    pool_labels = np.asarray(pool_labels)
    queues = {int(c): list(rng.permutation(np.flatnonzero(pool_labels == c))) for c in np.unique(pool_labels)}
    out = np.full(len(labels), -1, dtype=np.int64)
    for i, c in enumerate(np.asarray(labels)):
        q = queues.get(int(c), [])
        if q:
            out[i] = q.pop() if len(q) > 1 else q[0]
    return out


# The randomness tests of :func:`randomness_tests`, by their result keys, as the report names them.
TEST_NAMES = {"chi_square": "chi-square of the b-bit digits", "monobit": "NIST frequency (monobit)",
              "runs": "NIST runs"}
