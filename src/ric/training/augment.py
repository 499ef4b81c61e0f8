"""Training-time augmentation on N×C×H×W tensors in [0,1], driven by an explicit ``torch.Generator``
(so a resumed run continues the same random stream)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def augment(x: torch.Tensor, pad: int, flip: bool, gen: torch.Generator) -> torch.Tensor:
    """Random translation by up to ``pad`` pixels (reflect padding) and optional horizontal flip."""
    n, _, h, w = x.shape
    if pad:
        xp = F.pad(x, (pad, pad, pad, pad), mode="reflect")
        dx = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
        dy = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
        idx_y = (dy.view(n, 1) + torch.arange(h).view(1, h)).to(x.device)
        idx_x = (dx.view(n, 1) + torch.arange(w).view(1, w)).to(x.device)
        xp = xp.gather(2, idx_y.view(n, 1, h, 1).expand(n, x.shape[1], h, xp.shape[3]))
        x = xp.gather(3, idx_x.view(n, 1, 1, w).expand(n, x.shape[1], h, w))
    if flip:
        m = (torch.rand(n, generator=gen) < 0.5).to(x.device)
        x = torch.where(m.view(n, 1, 1, 1), x.flip(3), x)
    return x


def geometric(x: torch.Tensor, zoom: float, rotate: float, gen: torch.Generator) -> torch.Tensor:
    """Random per-image scale and rotation about the centre (bilinear, reflection at the borders)."""
    if not zoom and not rotate:
        return x
    n = len(x)
    s = 1 + zoom * (2 * torch.rand(n, generator=gen) - 1)
    a = torch.deg2rad(rotate * (2 * torch.rand(n, generator=gen) - 1))
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 0, 1] = torch.cos(a) / s, -torch.sin(a) / s
    theta[:, 1, 0], theta[:, 1, 1] = torch.sin(a) / s, torch.cos(a) / s
    grid = F.affine_grid(theta.to(x.device), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def photometric(x: torch.Tensor, grey_prob: float, jitter: float, gen: torch.Generator) -> torch.Tensor:
    n = len(x)
    if jitter:
        b = 1 + jitter * (2 * torch.rand(n, 1, 1, 1, generator=gen) - 1)
        c = 1 + jitter * (2 * torch.rand(n, 1, 1, 1, generator=gen) - 1)
        m = x.mean((1, 2, 3), keepdim=True)
        x = ((x - m) * c.to(x.device) + m * b.to(x.device)).clamp(0, 1)
    if grey_prob and x.shape[1] == 3:
        g = (x * torch.tensor([0.299, 0.587, 0.114], device=x.device).view(1, 3, 1, 1)).sum(1, keepdim=True)
        sel = (torch.rand(n, generator=gen) < grey_prob).to(x.device).view(n, 1, 1, 1)
        x = torch.where(sel, g.expand_as(x), x)
    return x


def random_crop(x: torch.Tensor, size: int, gen: torch.Generator) -> torch.Tensor:
    """One random ``size``×``size`` window per image."""
    n, _, h, w = x.shape
    if size >= min(h, w):
        return x
    dy = torch.randint(0, h - size + 1, (n,), generator=gen).tolist()
    dx = torch.randint(0, w - size + 1, (n,), generator=gen).tolist()
    return torch.stack([x[i, :, a:a + size, b:b + size] for i, (a, b) in enumerate(zip(dy, dx, strict=True))])
