"""The curious cloud: a generator trained with the public classifier and unpaired real images to turn ciphertexts
into plausible plaintexts (a GAN with the classifier's label as a constraint).

Everything works on tensors in [0,1] (N×C×H×W) or uint8 pixels, so the tests run it on tiny data;
:mod:`ric.security.report` runs it on the shipped models (``ric security``)."""

from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

# ------------------------------------------------------------------------------------------ keyless leak


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
