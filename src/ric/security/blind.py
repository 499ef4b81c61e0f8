"""Blind attacks: keyless image-processing guesses of the plaintext from one ciphertext (affine fits, median
filter, contrast stretch), scored by PSNR/SSIM against the mean-colour oracle.

Everything works on tensors in [0,1] (N×C×H×W) or uint8 pixels, so the tests run it on tiny data;
:mod:`ric.security.report` runs it on the shipped models (``ric security``)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ric.eval.metrics import psnr, ssim

# The mean-colour oracle's name in the reports' results, and its former name (still read from stored results).
MEAN_COLOUR = "oracle: the plaintext's own mean colour"
OLD_MEAN_COLOUR = "reference: mean colour of the plaintext (oracle)"


# ------------------------------------------------------------------------------------------ blind attacks
def affine_fit(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Oracle: best per-image gain/offset of ``y`` towards ``x`` (an upper bound for any blind attacker)."""
    yc, xc = y - y.mean((1, 2, 3), keepdim=True), x - x.mean((1, 2, 3), keepdim=True)
    a = (yc * xc).sum((1, 2, 3), keepdim=True) / (yc * yc).sum((1, 2, 3), keepdim=True).clamp_min(1e-12)
    return (a * yc + x.mean((1, 2, 3), keepdim=True)).clamp(0, 1)


def median_filter(c: torch.Tensor, k: int = 3) -> torch.Tensor:
    """The k×k median of each channel of N×C×H×W ``c`` (edges reflected)."""
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
           "median 3×3": median_filter(c, 3),
           "median 5×5": median_filter(c, 5),
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
    yf = affine_fit(y, x)
    return {"psnr_db": psnr(y.clamp(0, 1), x).mean().item(), "ssim": ssim(y.clamp(0, 1), x).mean().item(),
            "psnr_fit_db": psnr(yf, x).mean().item(), "ssim_fit": ssim(yf, x).mean().item()}


def mean_colour_baseline(x: torch.Tensor) -> torch.Tensor:
    """Each plaintext replaced by its own mean colour: what an attacker gets who learns nothing spatial."""
    return x.mean((2, 3), keepdim=True).expand_as(x).clone()
