"""Known-plaintext attack: a U-Net (with coordinate and statistics heads) trained on (ciphertext, plaintext) pairs
under one key, then applied to ciphertexts it has not seen.

Everything works on tensors in [0,1] (N×C×H×W) or uint8 pixels, so the tests run it on tiny data;
:mod:`ric.security.report` runs it on the shipped models (``ric security``)."""

from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ric.imageio import to_pixels
from ric.security.leakage import STATS, ciphertext_features, plaintext_stats


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
    st = plaintext_stats(to_pixels(x))
    return torch.cat([x.mean((2, 3)), torch.from_numpy(np.stack([st[k] for k in STATS], 1)).float()], 1)



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
        feats = torch.from_numpy(ciphertext_features(to_pixels(c_train), alpha))
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
                fb = (torch.from_numpy(ciphertext_features(to_pixels(cb), self.alpha)) - self.f_mu) / self.f_sd
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
    ``plain=True``: the bare :class:`UNet` baseline on raw ciphertexts, trained on all pairs for
    ``epochs`` (no statistics head, nothing held out).

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
