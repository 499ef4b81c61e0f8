"""Security evaluation: brute force and key sensitivity, tag checks, blind attacks, known-plaintext U-Net.

Everything works on tensors in [0,1] (N×C×H×W) and :class:`~ric.container.Ciphertext` objects, so that
the tests can run it on tiny data; ``benchmarks/security.py`` runs it on the shipped models and writes
``docs/security.md``.
"""

from __future__ import annotations

import struct
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .container import Ciphertext
from .errors import AuthenticationError
from .keys import SecretKey, new_nonce
from .metrics import psnr, ssim


def as_tensor(cts: list[Ciphertext]) -> torch.Tensor:
    return torch.stack([torch.from_numpy(ct.pixels.copy()).permute(2, 0, 1) for ct in cts]).float() / 255


# ------------------------------------------------------------------------------------------ brute force
def wrong_key_psnr(ric, cts: list[Ciphertext], x: torch.Tensor, keys: list[SecretKey],
                   progress: Callable | None = None) -> np.ndarray:
    """PSNR (dB) of every ciphertext decrypted with every key (tag check off): array keys × images."""
    out = np.zeros((len(keys), len(cts)), dtype=np.float32)
    for i, k in enumerate(keys):
        out[i] = psnr(ric.decrypt(cts, k, verify=False), x).numpy()
        if progress:
            progress(len(cts))
    return out


def one_bit_keys(key: SecretKey, bits: list[int]) -> list[SecretKey]:
    return [key.flip_bit(b) for b in bits]


def tag_rejection(cts: list[Ciphertext], key: SecretKey, wrong_keys: list[SecretKey], seed: int = 0) -> dict:
    """Fraction of wrong keys and of tampered files (pixel bit, target, nonce, model) that verification rejects;
    also checks that the right key accepts every untouched file."""
    rng = np.random.default_rng(seed)

    def rejected(ct, k):
        try:
            ct.verify(k)
            return False
        except AuthenticationError:
            return True

    accepted = sum(not rejected(ct, key) for ct in cts)
    wrong = [rejected(ct, k) for k in wrong_keys for ct in cts]
    tampered: dict[str, list] = {"pixel bit": [], "target": [], "nonce": [], "model": [], "classifier": []}
    for ct in cts:
        px = ct.pixels.copy()
        h, w, c = px.shape
        px[rng.integers(h), rng.integers(w), rng.integers(c)] ^= np.uint8(1 << int(rng.integers(8)))
        variants = {"pixel bit": replace(ct, pixels=px), "target": replace(ct, target=ct.target + 1),
                    "nonce": replace(ct, nonce=new_nonce()), "model": replace(ct, model=ct.model + "x"),
                    "classifier": replace(ct, classifier=ct.classifier + "x")}
        for name, v in variants.items():
            tampered[name].append(rejected(v, key))
    return {"right_key_accepted": accepted / len(cts), "wrong_keys_rejected": float(np.mean(wrong)),
            "wrong_key_trials": len(wrong),
            "tampered_rejected": {k: float(np.mean(v)) for k, v in tampered.items()}, "tamper_trials": len(cts)}


# ------------------------------------------------------------------------------------------ edits of real files
_PNG = b"\x89PNG\r\n\x1a\n"


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """The (type, body) chunks of a PNG file, in order."""
    if data[:8] != _PNG:
        raise ValueError("not a PNG")
    out, i = [], 8
    while i + 8 <= len(data):
        n = struct.unpack(">I", data[i:i + 4])[0]
        out.append((data[i + 4:i + 8], data[i + 8:i + 8 + n]))
        i += 12 + n
    return out


def png_bytes_of(chunks: list[tuple[bytes, bytes]]) -> bytes:
    """A PNG file from (type, body) chunks, with valid CRCs."""
    return _PNG + b"".join(struct.pack(">I", len(b)) + t + b + struct.pack(">I", zlib.crc32(t + b)) for t, b in chunks)


def _text(chunk: tuple[bytes, bytes]) -> tuple[str, str] | None:
    t, b = chunk
    if t != b"tEXt" or b"\0" not in b:
        return None
    k, v = b.split(b"\0", 1)
    return k.decode("latin-1"), v.decode("latin-1")


def _set_field(chunks, field: str, value: str | None):
    """Replace (``value``) or remove (``None``) the tEXt chunk ``ric:<field>``."""
    out = []
    for c in chunks:
        kv = _text(c)
        if kv and kv[0] == f"ric:{field}":
            if value is not None:
                out.append((b"tEXt", f"ric:{field}".encode() + b"\0" + value.encode("latin-1")))
        else:
            out.append(c)
    return out


def _duplicate_field(chunks, field: str, value: str | None = None):
    """A second ``ric:<field>`` chunk right after the first (same value, or ``value``)."""
    out = []
    for c in chunks:
        out.append(c)
        kv = _text(c)
        if kv and kv[0] == f"ric:{field}":
            out.append((b"tEXt", f"ric:{field}".encode() + b"\0" + (kv[1] if value is None else value).encode()))
    return out


def _reencode(data: bytes, keep_text: bool, jpeg: bool = False) -> bytes:
    """What an image tool does: decode and save again (as PNG; ``jpeg``: through a JPEG at quality 95 first),
    copying the text chunks or dropping them."""
    import io

    from PIL import Image, PngImagePlugin

    img = Image.open(io.BytesIO(data))
    img.load()
    info = PngImagePlugin.PngInfo()
    for k, v in (img.text if keep_text else {}).items():
        info.add_text(k, v)
    px = img.convert("RGB") if img.mode != "RGB" else img
    if jpeg:
        buf = io.BytesIO()
        px.save(buf, "JPEG", quality=95)
        px = Image.open(io.BytesIO(buf.getvalue())).convert(img.mode)
    out = io.BytesIO()
    px.save(out, "PNG", pnginfo=info, compress_level=9)
    return out.getvalue()


def file_edits(ct: Ciphertext, other_key_id: str) -> dict[str, bytes]:
    """Edited copies (PNG bytes) of the file of ``ct``: metadata edits, removed and duplicated chunks, and
    re-encodings. Every one must be refused (:class:`CiphertextError` or :class:`AuthenticationError`)."""
    data = ct.to_png()
    ch = png_chunks(data)
    meta = {kv[0]: kv[1] for kv in map(_text, ch) if kv}
    fp = meta.get("ric:model-fp", "0" * 16)
    flipped = ("1" if fp[0] == "0" else "0") + fp[1:]
    return {
        "key-id edited": png_bytes_of(_set_field(ch, "key-id", other_key_id)),
        "model-fp edited": png_bytes_of(_set_field(ch, "model-fp", flipped)),
        "model-fp removed": png_bytes_of(_set_field(ch, "model-fp", None)),
        "nonce removed": png_bytes_of(_set_field(ch, "nonce", None)),
        "tag removed": png_bytes_of(_set_field(ch, "tag", None)),
        "target duplicated (other value)": png_bytes_of(_duplicate_field(ch, "target", str(ct.target + 1))),
        "target duplicated (same value)": png_bytes_of(_duplicate_field(ch, "target")),
        "tag duplicated (same value)": png_bytes_of(_duplicate_field(ch, "tag")),
        "re-encoded, metadata dropped": _reencode(data, keep_text=False),
        "re-encoded through JPEG q95, metadata kept": _reencode(data, keep_text=True, jpeg=True),
    }


def file_edit_rejection(cts: list[Ciphertext], key: SecretKey, folder: str | Path) -> dict:
    """Write each ciphertext as a real PNG, apply every edit of :func:`file_edits`, read the file back with
    :func:`~ric.container.read_ciphertext` and verify it under the right key. Returns, per edit, how often it
    was refused and by which error; ``accepted`` counts files that passed (each is a failure of the check),
    ``other`` any other exception (a bug). Also checks that a lossless re-encoding that keeps the pixels and
    every field is accepted (the tag covers the content, not the PNG encoding)."""
    from .container import read_ciphertext
    from .errors import CiphertextError

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    other = SecretKey.generate().key_id
    res: dict[str, dict] = {}

    def outcome(data: bytes, name: str) -> str:
        p = folder / name
        p.write_bytes(data)
        try:
            read_ciphertext(p).verify(key)
            return "accepted"
        except AuthenticationError:
            return "AuthenticationError"
        except CiphertextError:
            return "CiphertextError"
        except Exception as e:  # noqa: BLE001 - reported, not swallowed: any other exception is a bug
            return f"other: {type(e).__name__}"
        finally:
            p.unlink(missing_ok=True)

    lossless = 0
    for i, ct in enumerate(cts):
        for name, data in file_edits(ct, other).items():
            r = res.setdefault(name, {"files": 0, "rejected": 0, "by": {}})
            o = outcome(data, f"{i}.png")
            r["files"] += 1
            r["rejected"] += o in ("AuthenticationError", "CiphertextError")
            r["by"][o] = r["by"].get(o, 0) + 1
        lossless += outcome(_reencode(ct.to_png(), keep_text=True), f"{i}.png") == "accepted"
    for r in res.values():
        r["rejected_share"] = r["rejected"] / r["files"]
    return {"edits": res, "files": len(cts), "lossless_reencode_accepted": lossless / max(1, len(cts))}


# ------------------------------------------------------------------------------------------ keyless leak
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


# ------------------------------------------------------------------------------------------ blind attacks
def _affine_fit(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Oracle: best per-image gain/offset of ``y`` towards ``x`` (an upper bound for any blind attacker)."""
    yc, xc = y - y.mean((1, 2, 3), keepdim=True), x - x.mean((1, 2, 3), keepdim=True)
    a = (yc * xc).sum((1, 2, 3), keepdim=True) / (yc * yc).sum((1, 2, 3), keepdim=True).clamp_min(1e-12)
    return (a * yc + x.mean((1, 2, 3), keepdim=True)).clamp(0, 1)


def _median(c: torch.Tensor, k: int = 3) -> torch.Tensor:
    p = k // 2
    u = F.pad(c, (p, p, p, p), mode="reflect").unfold(2, k, 1).unfold(3, k, 1)
    return u.reshape(*u.shape[:4], -1).median(-1).values


def _stretch(c: torch.Tensor) -> torch.Tensor:
    lo = c.amin((2, 3), keepdim=True)
    hi = c.amax((2, 3), keepdim=True)
    return (c - lo) / (hi - lo).clamp_min(1e-6)


def blind_attacks(c: torch.Tensor, alpha: float = 0.8) -> dict[str, torch.Tensor]:
    """What a sceptic tries first on single ciphertexts, with no key and no pairs."""
    from torchvision.transforms.functional import gaussian_blur

    out = {"ciphertext as is": c,
           "gaussian blur σ=1": gaussian_blur(c, 5, 1.0),
           "gaussian blur σ=2": gaussian_blur(c, 9, 2.0),
           "median 3×3": _median(c, 3),
           "median 5×5": _median(c, 5),
           "subtract expected noise (c−α/2)/(1−α)": ((c - alpha * 0.5) / (1 - alpha)).clamp(0, 1),
           "blur σ=2 + contrast stretch": _stretch(gaussian_blur(c, 9, 2.0))}
    try:
        from skimage.restoration import denoise_nl_means, denoise_tv_chambolle

        nlm, tv = [], []
        for img in c.permute(0, 2, 3, 1).numpy():
            nlm.append(denoise_nl_means(img, h=0.25, patch_size=3, patch_distance=5, channel_axis=-1))
            tv.append(denoise_tv_chambolle(img, weight=0.3, channel_axis=-1))
        out["non-local means (skimage)"] = torch.from_numpy(np.stack(nlm)).permute(0, 3, 1, 2).float()
        out["total variation (skimage)"] = torch.from_numpy(np.stack(tv)).permute(0, 3, 1, 2).float()
    except ImportError:  # optional dependency (pip install -e '.[security]')
        pass
    return out


def score(y: torch.Tensor, x: torch.Tensor) -> dict:
    """PSNR/SSIM of ``y`` to the plaintext, raw and after the oracle affine fit."""
    yf = _affine_fit(y, x)
    return {"psnr_db": psnr(y.clamp(0, 1), x).mean().item(), "ssim": ssim(y.clamp(0, 1), x).mean().item(),
            "psnr_fit_db": psnr(yf, x).mean().item(), "ssim_fit": ssim(yf, x).mean().item()}


def mean_colour_baseline(x: torch.Tensor) -> torch.Tensor:
    """Each plaintext replaced by its own mean colour: what an attacker gets who learns nothing spatial."""
    return x.mean((2, 3), keepdim=True).expand_as(x).clone()


# ------------------------------------------------------------------------------------------ known plaintext
class UNet(nn.Module):
    """A small U-Net (two down/up levels) mapping ciphertexts to plaintexts (``ch`` channels in, ``out``
    channels out, default ``ch``)."""

    def __init__(self, ch: int = 3, w: int = 32, out: int | None = None):
        super().__init__()

        def block(i, o):
            return nn.Sequential(nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU(inplace=True),
                                 nn.Conv2d(o, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU(inplace=True))

        self.e1, self.e2, self.e3 = block(ch, w), block(w, 2 * w), block(2 * w, 4 * w)
        self.u2, self.d2 = nn.ConvTranspose2d(4 * w, 2 * w, 2, 2), block(4 * w, 2 * w)
        self.u1, self.d1 = nn.ConvTranspose2d(2 * w, w, 2, 2), block(2 * w, w)
        self.out = nn.Conv2d(w, out or ch, 1)

    def logits(self, c):
        h1 = self.e1(c)
        h2 = self.e2(F.max_pool2d(h1, 2))
        h3 = self.e3(F.max_pool2d(h2, 2))
        d2 = self.d2(torch.cat([self.u2(h3), h2], 1))
        d1 = self.d1(torch.cat([self.u1(d2), h1], 1))
        return self.out(d1)

    def forward(self, c):
        return torch.sigmoid(self.logits(c))


class KPANet(nn.Module):
    """The known-plaintext network: a U-Net over the normalised ciphertext, two coordinate planes (so that it
    can learn the data set's average layout) and ``planes`` learned projections of the ciphertext's global
    statistics (:func:`ciphertext_features`, the keyless estimator's inputs). A statistics head predicts the
    plaintext's mean colour (``ch`` values) and its :data:`STATS` (mean, std, dark and bright shares) from the
    same features: a linear layer (the ridge fit on the training pairs, kept fixed) plus an MLP that starts
    at zero. The U-Net's output is added to the head's mean colour in logit space; with ``match_brightness``
    (outside training) the result is shifted, all channels alike, to the head's brightness.
    :func:`known_plaintext_attack` decides on the held-out pairs whether to do so."""

    def __init__(self, ch: int, w: int, n_feat: int, planes: int = 8, match_brightness: bool = True):
        super().__init__()
        self.ch = ch
        self.proj = nn.Linear(n_feat, planes)
        self.unet = UNet(ch + 2 + planes, w, out=ch)
        nn.init.zeros_(self.unet.out.bias)
        n_out = ch + len(STATS)
        self.linear = nn.Linear(n_feat, n_out)
        self.mlp = nn.Sequential(nn.Linear(n_feat, 64), nn.ReLU(inplace=True), nn.Linear(64, n_out))
        nn.init.zeros_(self.mlp[2].weight)
        nn.init.zeros_(self.mlp[2].bias)
        self.match_brightness = match_brightness

    def stats(self, feats):
        """(mean colour N×ch, STATS N×4) predicted from normalised features."""
        s = self.linear(feats) + self.mlp(feats)
        return s[:, :self.ch], s[:, self.ch:]

    def forward(self, c, coords, feats):
        colour, st = self.stats(feats)
        colour = colour.clamp(1e-3, 1 - 1e-3)
        planes = self.proj(feats)[:, :, None, None].expand(-1, -1, *c.shape[2:])
        y = torch.sigmoid(torch.logit(colour)[:, :, None, None]
                          + self.unet.logits(torch.cat([c, coords, planes], 1)))
        if self.match_brightness and not self.training:  # one shift for all channels: the head's brightness
            y = (y + (st[:, :1] - y.mean((1, 2, 3))[:, None])[:, :, None, None]).clamp(0, 1)
        return y, colour, st


def _coords(n: int, h: int, w: int) -> torch.Tensor:
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
    return torch.stack([yy, xx])[None].expand(n, -1, -1, -1)


def _stats_tensor(x: torch.Tensor) -> torch.Tensor:
    """Training targets of the statistics head: mean colour (N×C) then :data:`STATS` (N×4) of images in [0,1]."""
    st = plaintext_stats(_to_uint8(x))
    return torch.cat([x.mean((2, 3)), torch.from_numpy(np.stack([st[k] for k in STATS], 1)).float()], 1)


def _to_uint8(c: torch.Tensor) -> np.ndarray:
    return (c.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


class _KPA:
    """The state of one known-plaintext training run (see :func:`known_plaintext_attack`): the network, the
    training/held-out split, the input normalisation and the statistics targets."""

    def __init__(self, c_train: torch.Tensor, x_train: torch.Tensor, width: int, g: torch.Generator,
                 plain: bool, alpha: float, val: float):
        self.c, self.x, self.plain, self.alpha = c_train, x_train, plain, alpha
        self.ch, h, w = c_train.shape[1:]
        self.feats = self.x_stats = self.xy = None
        if plain:
            self.net: nn.Module = UNet(self.ch, width)
            self.tr, self.va = torch.arange(len(c_train)), torch.arange(0)
            return
        order = torch.randperm(len(c_train), generator=g)
        n_val = max(2, int(round(val * len(c_train)))) if val > 0 and len(c_train) >= 8 else 0
        self.tr, self.va = order[n_val:], order[:n_val]
        tr = self.tr
        self.mu = c_train[tr].mean((0, 2, 3), keepdim=True)
        self.sd = c_train[tr].std((0, 2, 3), keepdim=True).clamp_min(1e-6)
        feats = torch.from_numpy(ciphertext_features(_to_uint8(c_train), alpha))
        self.f_mu, self.f_sd = feats[tr].mean(0), feats[tr].std(0).clamp_min(1e-6)
        self.feats = (feats - self.f_mu) / self.f_sd
        self.x_stats = _stats_tensor(x_train)
        self.net = KPANet(self.ch, width, self.feats.shape[1])
        self.xy = _coords(1, h, w)
        with torch.no_grad():  # the linear part of the statistics head: the ridge fit
            a = torch.cat([self.feats[tr], torch.ones(len(tr), 1)], 1).double()
            reg = 1e-3 * len(a) * torch.eye(a.shape[1], dtype=torch.float64)
            reg[-1, -1] = 0
            wb = torch.linalg.solve(a.T @ a + reg, a.T @ self.x_stats[tr].double()).float()
            self.net.linear.weight.copy_(wb[:-1].T)
            self.net.linear.bias.copy_(wb[-1])
        self.net.linear.requires_grad_(False)  # kept at the ridge fit; the MLP learns a correction

    def run(self, cb, fb, xyb):
        """(reconstruction, head: mean colour and STATS, or None for the plain U-Net)."""
        if self.plain:
            return self.net(cb), None
        y, colour, st = self.net((cb - self.mu) / self.sd, xyb.expand(len(cb), -1, -1, -1), fb)
        return y, torch.cat([colour, st], 1)

    @staticmethod
    def loss(y, xb, head, sb):
        loss = F.l1_loss(y, xb) + F.mse_loss(y, xb)
        return loss if head is None else loss + F.l1_loss(head, sb)

    def batch(self, idx, crop: int | None, g: torch.Generator):
        """(ciphertexts, plaintexts, features, statistics, coordinates) of the pairs ``idx``, cropped."""
        cb, xb = self.c[idx], self.x[idx]
        fb, sb, xyb = (None, None, None) if self.plain else (self.feats[idx], self.x_stats[idx], self.xy)
        if crop and crop < cb.shape[-1]:
            top = int(torch.randint(0, cb.shape[-2] - crop + 1, (1,), generator=g))
            left = int(torch.randint(0, cb.shape[-1] - crop + 1, (1,), generator=g))
            cb = cb[..., top:top + crop, left:left + crop]
            xb = xb[..., top:top + crop, left:left + crop]
            xyb = None if self.plain else xyb[..., top:top + crop, left:left + crop]
        return cb, xb, fb, sb, xyb

    def epoch(self, opt, sched, batch_size: int, crop: int | None, g: torch.Generator) -> float:
        """One pass over the training pairs; the last batch's loss."""
        self.net.train()
        perm = self.tr[torch.randperm(len(self.tr), generator=g)]
        loss = torch.tensor(float("nan"))
        for i in range(0, len(perm), batch_size):
            idx = perm[i:i + batch_size]
            if len(idx) < 2 and len(perm) > 1:  # BatchNorm needs two rows
                continue
            cb, xb, fb, sb, xyb = self.batch(idx, crop, g)
            y, head = self.run(cb, fb, xyb)
            loss = self.loss(y, xb, head, sb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        return loss.item()

    def held_out(self, match: bool) -> float:
        """Loss on the held-out pairs, with or without the head's brightness."""
        self.net.eval()
        self.net.match_brightness = match
        vl = 0.0
        with torch.no_grad():
            for j in range(0, len(self.va), 16):
                vb = self.va[j:j + 16]
                y, head = self.run(self.c[vb], self.feats[vb], self.xy)
                vl += self.loss(y, self.x[vb], head, self.x_stats[vb]).item() * len(vb) / len(self.va)
        return vl

    def predict(self, c_test: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Reconstructions of ``c_test`` and the head's STATS (None for the plain U-Net)."""
        self.net.eval()
        step = 256 if c_test.shape[-1] <= 64 else 16
        out, stats = [], []
        with torch.no_grad():
            for i in range(0, len(c_test), step):
                cb = c_test[i:i + step]
                if self.plain:
                    out.append(self.net(cb))
                    continue
                fb = (torch.from_numpy(ciphertext_features(_to_uint8(cb), self.alpha)) - self.f_mu) / self.f_sd
                y, head = self.run(cb, fb, self.xy)
                out.append(y)
                stats.append(head[:, self.ch:])
        return torch.cat(out), (torch.cat(stats) if stats else None)


def known_plaintext_attack(c_train: torch.Tensor, x_train: torch.Tensor, c_test: torch.Tensor, epochs: int = 30,
                           batch_size: int = 64, lr: float = 1e-3, width: int = 32, seed: int = 0,
                           time_budget: float | None = None, log=None, crop: int | None = None,
                           plain: bool = False, alpha: float = 0.8, val: float = 0.15, return_stats: bool = False):
    """Train a network on (ciphertext, plaintext) pairs (L1 + MSE) and return its reconstructions of ``c_test``.

    Default: :class:`KPANet` on ciphertexts normalised with the training pairs' per-channel mean and standard
    deviation, with coordinate planes and the ciphertext's global statistics (:func:`ciphertext_features` of
    the whole image, ``alpha`` for the estimator); its statistics head gets an extra L1 loss to the
    plaintext's mean colour and :data:`STATS`. A share ``val`` of the pairs (at least 2) is held out; the
    weights of the epoch with the lowest held-out loss are kept (so that long training cannot overfit a few
    pairs), with or without shifting the output to the head's brightness, whichever did better there.
    ``plain=True``: the earlier bare :class:`UNet` on raw ciphertexts, trained on all pairs for
    ``epochs`` (for comparison with earlier reports).

    ``crop``: train on random aligned ``crop``×``crop`` patches of each pair (the networks are fully
    convolutional; reconstructions are made on whole images), which makes large images affordable.
    ``return_stats``: return ``(reconstructions, head)`` with the statistics head's predictions of
    :data:`STATS` for ``c_test`` (a dict of arrays; ``None`` for ``plain``)."""
    import copy

    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    kpa = _KPA(c_train, x_train, width, g, plain, alpha, val)
    opt = torch.optim.Adam(kpa.net.parameters(), lr=lr)
    steps = max(1, epochs * ((len(kpa.tr) + batch_size - 1) // batch_size))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    best, best_loss = None, float("inf")
    t0 = time.time()
    for ep in range(epochs):
        msg = f"KPA N={len(c_train)} epoch {ep + 1}/{epochs} loss {kpa.epoch(opt, sched, batch_size, crop, g):.4f}"
        for match in ((False, True) if len(kpa.va) else ()):  # with and without the head's brightness
            vl = kpa.held_out(match)
            if vl < best_loss:
                best, best_loss = (copy.deepcopy(kpa.net.state_dict()), match), vl
            msg += f", held-out {vl:.4f}" + (" (head's brightness)" if match else "")
        if log:
            log(msg)
        if time_budget and time.time() - t0 > time_budget:
            break
    if best is not None:
        kpa.net.load_state_dict(best[0])
        kpa.net.match_brightness = best[1]
    rec, stats = kpa.predict(c_test)
    if not return_stats:
        return rec
    return rec, (None if plain else {k: stats[:, i].numpy() for i, k in enumerate(STATS)})


# ------------------------------------------------------------------------------------------ curious cloud
class _CloudEncoder(nn.Module):
    def __init__(self, ch: int, size: int, latent: int, w: int):
        super().__init__()
        layers, c, s = [], ch, size
        while s > 4:
            layers += [nn.Conv2d(c, w, 4, 2, 1), nn.BatchNorm2d(w), nn.LeakyReLU(0.2, inplace=True)]
            c, s, w = w, s // 2, min(2 * w, 256)
        self.body = nn.Sequential(*layers, nn.Flatten(), nn.Linear(c * 16, latent))

    def forward(self, c):
        return self.body(c)


class _Generator(nn.Module):
    def __init__(self, ch: int, size: int, latent: int, w: int):
        super().__init__()
        n_up = int(round(np.log2(size // 4)))
        c = w * 2 ** (n_up - 1)
        self.fc = nn.Linear(latent, c * 16)
        self.c0 = c
        layers = []
        for i in range(n_up):
            o = ch if i == n_up - 1 else c // 2
            layers.append(nn.ConvTranspose2d(c, o, 4, 2, 1))
            if i < n_up - 1:
                layers += [nn.BatchNorm2d(o), nn.ReLU(inplace=True)]
            c = o
        self.body = nn.Sequential(*layers)

    def forward(self, h):
        return torch.sigmoid(self.body(F.relu(self.fc(h)).view(len(h), self.c0, 4, 4)))


class _Discriminator(nn.Module):
    def __init__(self, ch: int, size: int, w: int):
        super().__init__()
        self.enc = _CloudEncoder(ch, size, 1, w)

    def forward(self, x):
        return self.enc(x).squeeze(1)


def curious_cloud_attack(classifier, c_train: torch.Tensor, real: torch.Tensor, c_test: torch.Tensor,
                         size: int = 32, latent: int = 128, width: int = 32, epochs: int = 20, batch_size: int = 64,
                         lr: float = 2e-4, lam_adv: float = 0.1, lam_var: float = 1.0, seed: int = 0,
                         time_budget: float | None = None, log=None) -> torch.Tensor:
    """The honest-but-curious cloud of the paper's Appendix B, trained on ciphertexts and the classifier only.

    An encoder maps a ciphertext to a latent code, a generator maps the code to an image; the loss is the
    classifier's cross-entropy to the ciphertext's label C(c) (the cloud knows it), plus ``lam_adv`` × a
    non-saturating GAN loss against a discriminator trained alongside on ``real`` images of the domain
    (unpaired: not the victim's plaintexts), plus ``lam_var`` × a latent-variance regulariser. The paper
    only says this term "penalises the average variance of each latent dimension to promote diversity";
    we read it as a hinge that keeps every dimension's batch standard deviation at 1 or more, so that the
    code cannot collapse to one image per class. Images are generated at ``size``² and resized to the
    ciphertext size for the classifier and the metrics. Returns the reconstructions of ``c_test``."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    ch, hw = c_train.shape[1], tuple(c_train.shape[2:])

    def to_gen(x):
        return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True) \
            if tuple(x.shape[2:]) != (size, size) else x

    def to_full(x):
        return F.interpolate(x, size=hw, mode="bilinear", align_corners=False) if (size, size) != hw else x

    enc, gen, disc = _CloudEncoder(ch, size, latent, width), _Generator(ch, size, latent, width), \
        _Discriminator(ch, size, width)
    opt_g = torch.optim.Adam(list(enc.parameters()) + list(gen.parameters()), lr=lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(disc.parameters(), lr=lr, betas=(0.5, 0.999))
    with torch.no_grad():
        t_train = torch.cat([classifier(c_train[i:i + 256]).argmax(1) for i in range(0, len(c_train), 256)])
    real_small = to_gen(real)
    t0 = time.time()
    for ep in range(epochs):
        enc.train(), gen.train(), disc.train()
        perm = torch.randperm(len(c_train), generator=g)
        for i in range(0, len(c_train) - 1, batch_size):
            idx = perm[i:i + batch_size]
            if len(idx) < 2:
                continue
            h = enc(to_gen(c_train[idx]))
            fake = gen(h)
            xr = real_small[torch.randint(0, len(real_small), (len(idx),), generator=g)]
            d_loss = F.softplus(-disc(xr)).mean() + F.softplus(disc(fake.detach())).mean()
            opt_d.zero_grad()
            d_loss.backward()
            opt_d.step()
            ce = F.cross_entropy(classifier(to_full(fake)), t_train[idx])
            adv = F.softplus(-disc(fake)).mean()
            var = F.relu(1 - h.std(0)).mean()
            loss = ce + lam_adv * adv + lam_var * var
            opt_g.zero_grad()
            loss.backward()
            opt_g.step()
        if log:
            log(f"curious cloud epoch {ep + 1}/{epochs}: CE {ce.item():.3f} adv {adv.item():.3f} "
                f"D {d_loss.item():.3f} var {var.item():.3f}")
        if time_budget and time.time() - t0 > time_budget:
            break
    enc.eval(), gen.eval()
    with torch.no_grad():
        return torch.cat([to_full(gen(enc(to_gen(c_test[i:i + 256])))) for i in range(0, len(c_test), 256)])


# ------------------------------------------------------------------------------------------ Theorem 6.1
def nes_pixel_gradient_norms(ric, ct: Ciphertext, key: SecretKey, directions: int = 32,
                             sigma: float = 1e-3, seed: int = 0) -> torch.Tensor:
    """Gradient norm of every recovered pixel with respect to the RNI, ‖∇_z x̂_i(z)‖, at the right key's RNI
    (a local slope at one point: a heuristic input to :func:`theorem61_heuristic`, not a Lipschitz constant).

    Appendix A of the paper estimates this gradient with NES (Gaussian directions and antithetic finite
    differences). We use the unbiased form for the *norm*: for u ~ N(0, I), E[(u·∇f)²] = ‖∇f‖², so
    ‖∇f_i‖² ≈ mean_k ((f_i(z+σu_k) − f_i(z−σu_k)) / 2σ)². f is the whole decryption: NAE attack on the
    RNI, SRL un-mixing and the decoder, on a fixed ciphertext. Pixels in [0,1]; returns one value per pixel."""
    from .keys import random_noise_image

    shape = (ct.pixels.shape[2], *ct.pixels.shape[:2])
    z = random_noise_image(key, ct.nonce, shape)
    g = torch.Generator().manual_seed(seed)
    u = torch.randn((directions, *shape), generator=g)
    zs = torch.cat([z + sigma * u, z - sigma * u])
    t = torch.full((len(zs),), ct.target, dtype=torch.long)
    c = as_tensor([ct]).expand(len(zs), -1, -1, -1)
    perm = ric.perms(key, [ct.nonce], shape)  # the right key's scrambling (None without): only z varies here
    perm = None if perm is None else perm.expand(len(zs), -1)
    f = ric.decode_with(c, ric.nae_from_rni(zs, t), perm).flatten(1)  # 2n × pixels
    dd = (f[:directions] - f[directions:]) / (2 * sigma)
    return dd.pow(2).mean(0).sqrt()


def ball_log10_volume(radius: float, d: int) -> float:
    """log10 of the volume of a d-ball of ``radius`` (the largest share of the unit cube [0,1]^d it can cover)."""
    import math

    if radius <= 0:
        return float("-inf")
    return (d / 2 * math.log(math.pi) + d * math.log(radius) - math.lgamma(d / 2 + 1)) / math.log(10)


def theorem61_heuristic(grad_norm: float, d: int, tau_db: float) -> dict:
    """A heuristic reading of Theorem 6.1, *not* a bound. ``grad_norm`` is a finite-difference estimate of
    the largest gradient norm of a recovered pixel at one point (the right key's RNI); it is not a Lipschitz
    constant, since the slope elsewhere is unknown. If it held everywhere, every recovered pixel would move
    by about L·r when the RNI moves by r, so a wrong key would need its RNI within about
    r(τ) = 10^(−τ/20)/L of the right one to reach PSNR τ; ``log10_ball_volume`` is the log10 volume of that
    ball (the share of the unit cube it covers). ``tau_unit_ball_db`` is the PSNR the same reading gives at
    the radius of a unit-volume ball (the analogue of the paper's 5.64 dB)."""
    import math

    r = 10 ** (-tau_db / 20) / grad_norm
    r1 = math.exp(math.lgamma(d / 2 + 1) / d) / math.sqrt(math.pi)
    return {"gradient_norm": grad_norm, "d": d, "tau_db": tau_db, "radius": r,
            "log10_ball_volume": ball_log10_volume(r, d),
            "unit_ball_radius": r1, "tau_unit_ball_db": -20 * math.log10(grad_norm * r1)}
