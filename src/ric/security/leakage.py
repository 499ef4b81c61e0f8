"""What a ciphertext reveals without the key, measured: image statistics (brightness, contrast, dark and bright
shares) estimated keylessly from ciphertext values, analytically and by a calibrated regression, and their
correlation with the plaintexts' statistics.

Everything works on tensors in [0,1] (N×C×H×W) or uint8 pixels, so the tests run it on tiny data;
:mod:`ric.security.report` runs it on the shipped models (``ric security``)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

DARK_BELOW, BRIGHT_FROM = 64, 192  # uint8 thresholds of the dark / bright shares
STATS = ("mean", "std", "dark", "bright")


Images = np.ndarray | Sequence[np.ndarray]


def _rows(x: Images) -> list[np.ndarray]:
    """Each image's uint8 values as one flat row: ``x`` is an N×H×W×C array, or a sequence of images of any
    (even different) shapes."""
    if isinstance(x, np.ndarray):
        return list(x.reshape(len(x), -1))
    return [np.asarray(a, dtype=np.uint8).reshape(-1) for a in x]


def plaintext_stats(x: Images) -> dict[str, np.ndarray]:
    """Per-image statistics of uint8 images (N×H×W×C, or a sequence of images of any shapes), over all
    elements in [0,1]: mean, standard deviation, and the shares of dark (< 64) and bright (>= 192) elements."""
    rows = _rows(x)
    v = [r.astype(np.float64) / 255 for r in rows]
    return {"mean": np.array([a.mean() for a in v]), "std": np.array([a.std() for a in v]),
            "dark": np.array([(r < DARK_BELOW).mean() for r in rows]),
            "bright": np.array([(r >= BRIGHT_FROM).mean() for r in rows])}


def value_cdf(c: Images, alpha: float = 0.8, group: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Estimate, from ciphertexts alone (uint8 N×H×W×C), the CDF F_e of the values of e = E(x) in each image.

    Model: c = (1−α)·e + α·z before rounding, with z (the NAE) close to uniform on [0,1] and independent of
    e (for the residual codecs e is close to x; scrambling only permutes it, which no histogram sees). For
    α ≥ 1/2 the density of c is f(s) = F_e(s/(1−α))/α for s < α (the dark edge) and
    f(s) = (1 − F_e((s−α)/(1−α)))/α for s > 1−α (the bright edge): both edges of c's histogram are
    scaled copies of F_e. Each edge is cut into cells of ``group`` uint8 values (the end values 0 and 255
    collect half a bin), each cell gives F_e at its centre, the two edges are interpolated onto one grid
    and averaged. Returns (grid t in [0,1], F of shape N × len(t))."""
    a = float(alpha)
    counts = np.stack([np.bincount(r, minlength=256) / len(r) for r in _rows(c)]).astype(np.float64)
    k = np.arange(256)
    width = np.where((k == 0) | (k == 255), 0.5, 1.0) / 255  # s-interval each rounded value collects
    centre = np.where(k == 0, 0.25, np.where(k == 255, 254.75, k)) / 255

    def cells(lo: int, hi: int):  # (centres in s, densities N × cells) of value groups lo..hi
        groups = [np.arange(i, min(i + group, hi + 1)) for i in range(lo, hi + 1, group)]
        s_c = np.array([np.average(centre[g], weights=width[g]) for g in groups])
        dens = np.stack([counts[:, g].sum(1) / width[g].sum() for g in groups], 1)
        return s_c, dens

    s_lo, d_lo = cells(0, int(np.floor(255 * (1 - a))))
    s_hi, d_hi = cells(int(np.ceil(255 * a)), 255)
    t = np.linspace(0, 1, 51)
    t_lo, t_hi = s_lo / (1 - a), (s_hi - a) / (1 - a)
    f_lo = np.stack([np.interp(t, t_lo, a * d) for d in d_lo])
    f_hi = np.stack([np.interp(t, t_hi, 1 - a * d) for d in d_hi])
    return t, np.clip((f_lo + f_hi) / 2, 0, 1)


def keyless_estimates(c: Images, alpha: float = 0.8) -> dict[str, np.ndarray]:
    """Estimate each plaintext's :func:`plaintext_stats` from its ciphertext alone (uint8 N×H×W×C): no key,
    no plaintext, nothing fitted. All four come from the value CDF of :func:`value_cdf`:
    mean = ∫(1 − F), E[e²] = ∫2t(1 − F), dark = F(64/255), bright = 1 − F(192/255) (each of the last two
    averaged over ±0.04 around the threshold). They describe e = E(x), which is x for an identity codec;
    the report measures how well they track x for each trained codec."""
    t, f = value_cdf(c, alpha)
    dt = np.diff(t)

    def integral(y):  # trapezoid rule over the grid, row by row
        return ((y[:, 1:] + y[:, :-1]) / 2 * dt).sum(1)

    mean = integral(1 - f)
    second = integral(2 * t * (1 - f))

    def around(u):
        m = np.abs(t - u) <= 0.04 + 1e-9
        return f[:, m].mean(1)

    return {"mean": mean, "std": np.sqrt(np.clip(second - mean ** 2, 0, None)),
            "dark": around(DARK_BELOW / 255), "bright": 1 - around(BRIGHT_FROM / 255)}


def ciphertext_features(c: Images, alpha: float = 0.8, bins: int = 16) -> np.ndarray:
    """Per-image features a keyless attacker computes from ciphertexts (uint8 N×H×W×C): the analytic
    :func:`keyless_estimates` and a ``bins``-bin histogram of the values. N × (4 + bins), float32."""
    rows = _rows(c)
    est = keyless_estimates(rows, alpha)
    hist = np.stack([np.bincount(r >> (8 - int(np.log2(bins))), minlength=bins) / len(r) for r in rows])
    return np.concatenate([np.stack([est[k] for k in STATS], 1), hist], 1).astype(np.float32)


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    a, b = a - a.mean(), b - b.mean()
    d = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / d) if d > 0 else float("nan")  # nan: one side is constant


def stat_correlations(estimates: dict[str, np.ndarray], truth: dict[str, np.ndarray]) -> dict[str, float]:
    """Pearson correlation of each estimated statistic with the true one (nan where either is constant)."""
    return {k: _pearson(estimates[k], truth[k]) for k in STATS if k in estimates}


def noise_band(n: int) -> float:
    """Half-width of the ≈95 % band of a Pearson correlation over ``n`` independent pairs whose true
    correlation is zero (1.96/√n): correlations inside it are at noise level."""
    return 1.96 / np.sqrt(max(n, 1))


def fit_calibration(c_fit: Images, x_fit: Images, alpha: float = 0.8, ridge: float = 1e-3) -> dict:
    """Ridge regression from :func:`ciphertext_features` to each plaintext statistic, fitted on the
    attacker's *own* pairs: public images encrypted with the public model under a key the attacker made
    (every key is uniformly random, so these pairs are distributed exactly as the victim's)."""
    f = ciphertext_features(c_fit, alpha).astype(np.float64)
    mu, sd = f.mean(0), f.std(0) + 1e-9
    a = np.concatenate([(f - mu) / sd, np.ones((len(f), 1))], 1)
    truth = plaintext_stats(x_fit)
    reg = ridge * len(f) * np.eye(a.shape[1])
    reg[-1, -1] = 0
    w = {k: np.linalg.solve(a.T @ a + reg, a.T @ truth[k]) for k in STATS}
    return {"alpha": alpha, "mu": mu, "sd": sd, "w": w, "n": len(f)}


def apply_calibration(cal: dict, c: Images) -> dict[str, np.ndarray]:
    f = (ciphertext_features(c, cal["alpha"]).astype(np.float64) - cal["mu"]) / cal["sd"]
    a = np.concatenate([f, np.ones((len(f), 1))], 1)
    return {k: a @ cal["w"][k] for k in STATS}


def leak_correlations(ciphertexts: Images, plaintexts: Images, alpha: float = 0.8,
                      fit_ciphertexts: Images | None = None, fit_plaintexts: Images | None = None) -> dict:
    """How much of each plaintext's global statistics (:func:`plaintext_stats`) its ciphertext reveals
    without the key. ``ciphertexts`` and ``plaintexts`` are uint8 N×H×W×C arrays in the same order (shapes
    may differ between them), or sequences of per-image uint8 arrays of any shapes. Returns Pearson
    correlations over the N images of the truth with

    * ``analytic``: :func:`keyless_estimates` (nothing fitted; written for the paper's blend with ``alpha``),
    * ``calibrated`` (when ``fit_*`` are given): :func:`fit_calibration` on the attacker's own pairs,
      applied to ``ciphertexts``; also its mean absolute error (``calibrated_mae``, in the statistic's units),

    with ``noise_band_95`` (correlations within ±it are at noise level) and ``above_noise`` per statistic
    (the larger of the two |r| exceeds the band). ``histogram``: the mean absolute error of the CDF of the
    values estimated by :func:`value_cdf` (``cdf_mae``) against that of the population's average CDF, taken
    from these plaintexts (``cdf_mae_population``, an oracle prior: the estimate sees each image's own
    histogram when its error is the smaller). Scheme-agnostic: a scheme that leaks nothing gives
    correlations at noise level for any ``alpha``."""
    truth = plaintext_stats(plaintexts)
    n = len(truth["mean"])
    band = noise_band(n)
    out: dict = {"n": n, "noise_band_95": band, "thresholds": {"dark_below": DARK_BELOW, "bright_from": BRIGHT_FROM},
                 "alpha": alpha, "analytic": stat_correlations(keyless_estimates(ciphertexts, alpha), truth)}
    if fit_ciphertexts is not None and fit_plaintexts is not None:
        cal = fit_calibration(fit_ciphertexts, fit_plaintexts, alpha)
        est = apply_calibration(cal, ciphertexts)
        out["calibrated"] = stat_correlations(est, truth)
        out["calibrated_mae"] = {k: float(np.abs(est[k] - truth[k]).mean()) for k in STATS}
        out["fit_pairs"] = cal["n"]
    t, f_est = value_cdf(ciphertexts, alpha)
    f_true = np.stack([np.searchsorted(np.sort(r), np.floor(t * 255 + 1e-6), side="right") / len(r)
                       for r in _rows(plaintexts)])  # share of values <= t
    out["histogram"] = {"cdf_mae": float(np.abs(f_est - f_true).mean()),
                        "cdf_mae_population": float(np.abs(f_true.mean(0) - f_true).mean())}
    out["truth_spread"] = {k: float(truth[k].std()) for k in STATS}
    out["above_noise"] = {k: bool(max(abs(np.nan_to_num(out[m].get(k, 0.0))) for m in ("analytic", "calibrated")
                                      if m in out) > band) for k in STATS}
    return out
