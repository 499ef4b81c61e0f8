"""What the security report's renderers share (:mod:`ric.security.render` and :mod:`ric.security.exact_render`):
names of the statistics and attacks, number formats and the known-plaintext setup line. Renderers read results
only; they import no runner."""

from __future__ import annotations

from ric.security.blind import MEAN_COLOUR, OLD_MEAN_COLOUR

PREFIX = "exact:"  # ric security --models exact:<classifier>: the exact scheme with that classifier
STAT_NAMES = {"mean": "brightness (mean)", "std": "contrast (std)", "dark": "dark share (< 64)",
              "bright": "bright share (≥ 192)"}


def blind_name(name: str) -> str:
    """The current name of a blind attack in stored results (maps the mean-colour oracle's old name)."""
    return MEAN_COLOUR if name == OLD_MEAN_COLOUR else name


def num(v) -> str:
    """A correlation or score with three decimals; ``n/a`` for a missing or constant (nan) estimate."""
    return "n/a" if v is None or v != v else f"{v:.3f}"  # nan: a constant estimate


def kpa_setup(r: dict) -> str:
    """The known-plaintext attack's network and training schedule of a model's results, as one paragraph."""
    v = next(iter(r["kpa"].values()))
    crop = f", trained on random aligned {v['train_crop']}×{v['train_crop']} patches" if v.get("train_crop") else ""
    eps = ", ".join(f"N={n}: {w['epochs']}" for n, w in r["kpa"].items())
    if "stats_head" not in v:
        return (f"The earlier, plain U-Net on raw ciphertexts: width {v.get('unet_width', 32)}{crop}; epochs {eps} "
                "(L1 + MSE, Adam, cosine schedule). Not rerun with the strengthened network of the quick report.")
    return (f"Network `KPANet`: a U-Net (width {v.get('unet_width', 32)}) on the ciphertext normalised with the pairs' "
            "per-channel mean and std, plus two coordinate planes and planes of the ciphertext's global statistics "
            "(the keyless estimator's features); a statistics head predicts the plaintext's mean colour, brightness, "
            "contrast and dark/bright shares (a fixed linear part, the ridge fit on the pairs, plus a learned MLP) "
            f"and the U-Net adds detail to the head's mean colour{crop}. L1 + MSE + L1 on the statistics, Adam, "
            "cosine schedule; "
            f"epochs {eps}; 15 % of the pairs held out, the best held-out epoch kept.")


def keyless_best(k: dict, s: str) -> float:
    """The keyless estimator's correlation for statistic ``s``: the better of the analytic and calibrated one."""
    return max((k[m][s] for m in ("analytic", "calibrated") if m in k and k[m][s] == k[m][s]), default=float("nan"))
