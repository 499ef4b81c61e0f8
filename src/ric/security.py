"""Security evaluation: brute force and key sensitivity, tag checks, blind attacks, known-plaintext U-Net.

Everything works on tensors in [0,1] (N×C×H×W) and :class:`~ric.container.Ciphertext` objects, so that
the tests can run it on tiny data; ``benchmarks/security.py`` runs it on the shipped models and writes
``docs/security.md``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

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
    """A small U-Net (two down/up levels) mapping ciphertexts to plaintexts."""

    def __init__(self, ch: int = 3, w: int = 32):
        super().__init__()

        def block(i, o):
            return nn.Sequential(nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU(inplace=True),
                                 nn.Conv2d(o, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU(inplace=True))

        self.e1, self.e2, self.e3 = block(ch, w), block(w, 2 * w), block(2 * w, 4 * w)
        self.u2, self.d2 = nn.ConvTranspose2d(4 * w, 2 * w, 2, 2), block(4 * w, 2 * w)
        self.u1, self.d1 = nn.ConvTranspose2d(2 * w, w, 2, 2), block(2 * w, w)
        self.out = nn.Conv2d(w, ch, 1)

    def forward(self, c):
        h1 = self.e1(c)
        h2 = self.e2(F.max_pool2d(h1, 2))
        h3 = self.e3(F.max_pool2d(h2, 2))
        d2 = self.d2(torch.cat([self.u2(h3), h2], 1))
        d1 = self.d1(torch.cat([self.u1(d2), h1], 1))
        return torch.sigmoid(self.out(d1))


def known_plaintext_attack(c_train: torch.Tensor, x_train: torch.Tensor, c_test: torch.Tensor, epochs: int = 30,
                           batch_size: int = 64, lr: float = 1e-3, width: int = 32, seed: int = 0,
                           time_budget: float | None = None, log=None, crop: int | None = None) -> torch.Tensor:
    """Train a U-Net on (ciphertext, plaintext) pairs (L1 + MSE) and return its reconstructions of ``c_test``.

    ``crop``: train on random aligned ``crop``×``crop`` patches of each pair (the U-Net is fully
    convolutional; reconstructions are made on whole images), which makes large images affordable."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    net = UNet(c_train.shape[1], width)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    steps = max(1, epochs * ((len(c_train) + batch_size - 1) // batch_size))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    t0 = time.time()
    for ep in range(epochs):
        net.train()
        perm = torch.randperm(len(c_train), generator=g)
        for i in range(0, len(c_train), batch_size):
            idx = perm[i:i + batch_size]
            cb, xb = c_train[idx], x_train[idx]
            if crop and crop < cb.shape[-1]:
                top = int(torch.randint(0, cb.shape[-2] - crop + 1, (1,), generator=g))
                left = int(torch.randint(0, cb.shape[-1] - crop + 1, (1,), generator=g))
                cb = cb[..., top:top + crop, left:left + crop]
                xb = xb[..., top:top + crop, left:left + crop]
            y = net(cb)
            loss = F.l1_loss(y, xb) + F.mse_loss(y, xb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        if log:
            log(f"KPA N={len(c_train)} epoch {ep + 1}/{epochs} loss {loss.item():.4f}")
        if time_budget and time.time() - t0 > time_budget:
            break
    net.eval()
    with torch.no_grad():
        step = 256 if c_test.shape[-1] <= 64 else 16
        return torch.cat([net(c_test[i:i + step]) for i in range(0, len(c_test), step)])


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
    """Gradient norm of every recovered pixel with respect to the RNI, ‖∇_z x̂_i(z)‖, at the right key's RNI.

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


def ball_log10_probability(radius: float, d: int) -> float:
    """log10 of the volume of a d-ball of ``radius``: an upper bound on the probability that a uniform
    random point of the unit cube [0,1]^d lies within ``radius`` of a given point."""
    import math

    if radius <= 0:
        return float("-inf")
    return (d / 2 * math.log(math.pi) + d * math.log(radius) - math.lgamma(d / 2 + 1)) / math.log(10)


def theorem61_bound(lipschitz: float, d: int, tau_db: float) -> dict:
    """The Lipschitz-ball reading of Theorem 6.1: if ‖z' − z‖ ≤ r then every recovered pixel moves by at
    most L·r, so PSNR(x̂', x̂) ≥ −20·log10(L·r). A wrong key reaches PSNR ≥ ``tau_db`` *this way* only
    inside r(τ) = 10^(−τ/20)/L, whose probability is at most the ball volume. ``tau_unit_ball_db`` is the
    PSNR guaranteed at the radius of a unit-volume ball: below it, the argument bounds nothing."""
    import math

    r = 10 ** (-tau_db / 20) / lipschitz
    r1 = math.exp(math.lgamma(d / 2 + 1) / d) / math.sqrt(math.pi)
    return {"lipschitz": lipschitz, "d": d, "tau_db": tau_db, "radius": r,
            "log10_probability_bound": ball_log10_probability(r, d),
            "unit_ball_radius": r1, "tau_unit_ball_db": -20 * math.log10(lipschitz * r1)}
