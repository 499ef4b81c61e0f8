"""Image-quality metrics on [0,1] tensors (N×C×H×W): PSNR per image, SSIM via pytorch-msssim.

LPIPS needs AlexNet/VGG backbone weights that cannot be downloaded here, so it is not provided.
"""

from __future__ import annotations

import torch


def psnr(x: torch.Tensor, y: torch.Tensor, max_db: float = 100.0) -> torch.Tensor:
    """Per-image PSNR in dB (peak 1.0); identical images give ``max_db``."""
    mse = ((x.double() - y.double()) ** 2).flatten(1).mean(1)
    return torch.where(mse > 0, 10 * torch.log10(1.0 / mse.clamp_min(1e-30)), torch.full_like(mse, max_db)).float()


def ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-image SSIM (Gaussian window 11, σ 1.5; window shrinks for images under 11 px)."""
    from pytorch_msssim import ssim as _ssim

    win = min(11, x.shape[-1], x.shape[-2])
    win = win if win % 2 == 1 else win - 1
    return _ssim(x.float(), y.float(), data_range=1.0, size_average=False, win_size=win)


def ms_ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-image MS-SSIM (pytorch-msssim, 5 scales, the standard weights) with the largest odd Gaussian window
    ≤ 11 that its four downsamplings allow (11 needs sides over 160 px: 160-px faces get 9, 64-px images 3).
    Images too small for a 3-px window (32-px and 28-px sets) get NaN: MS-SSIM is not defined for them."""
    from pytorch_msssim import ms_ssim as _ms_ssim

    side = min(x.shape[-1], x.shape[-2])
    win = 11
    while win >= 3 and side <= (win - 1) * 16:
        win -= 2
    if win < 3:
        return torch.full((len(x),), float("nan"))
    return _ms_ssim(x.float(), y.float(), data_range=1.0, size_average=False, win_size=win)
