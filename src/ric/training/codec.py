"""Training the paper scheme's codec (F, E, D) with the classifier frozen, through the scheme's own
encode → scramble → mix → quantize composition; resumable, written as a RIC bundle with its model card."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from ric.classifiers import Classifier
from ric.codec import encrypt_pixels, make_codec, recover
from ric.datasets import ArrayDataset
from ric.distributed.ddp import Dist
from ric.eval.metrics import psnr
from ric.nae import make_attack, margin
from ric.training.augment import augment, random_crop
from ric.training.loop import Budget, RunFolder, cosine, set_lr
from ric.zoo import bundles


# ---------------------------------------------------------------------------------------------- codec
@dataclass
class CodecRecipe:
    name: str
    classifier: str
    dataset: str
    codec: dict = field(default_factory=lambda: {"name": "ric-paper", "width": 50, "depth": 3, "se_blocks": 2})
    alpha: float = 0.8
    attack: dict = field(default_factory=lambda: {"name": "cw-margin", "steps": 100, "lr": 0.01, "c": 10.0,
                                                  "kappa": 5.0})
    nae_batch: int = 8
    beta: float = 10.0
    kappa: float = 5.0
    lr: float = 4e-4
    lr_final_ratio: float = 0.02
    batch_size: int = 128
    epochs: int = 200
    pool_per_class: int = 512
    pad: int = 2
    flip: bool = True
    seed: int = 0
    eval_images: int = 256
    description: str = ""
    # Secret per-image scrambling of the encoder output (``ric.schemes.paper``); training draws random permutations.
    scramble: bool = False
    # Train on random square crops of this size (0: whole images); the codec is fully convolutional.
    crop: int = 0
    # Weight of the margin term (0: MSE only, the NAE alone carries the label, as with crops; every encryption
    # still checks C(c) = t). Near the 8-bit floor the margin's gradients swamp β·MSE (≈3e-4).
    margin_weight: float = 1.0
    epoch_repeat: int = 1  # passes over the training images per logged epoch (small sets, e.g. 600 faces)
    train_limit: int = 0  # the first N training images only (0: all), e.g. for a short trial run


class NAEPool:
    """Training NAEs grouped by target class.

    An NAE depends only on (RNI, target, classifier), not on the image, so training pairs each image
    with a random pool NAE of the image's predicted class. Training RNIs come from torch's generator
    (training needs the distribution, not secrecy); products always derive them from the key."""

    def __init__(self, classifier, attack, num_classes: int, shape, per_class: int, device, gen: torch.Generator,
                 chunk: int = 1024, log=print, dist: Dist | None = None):
        self.per_class = per_class
        self.attack = attack
        dist = dist or Dist(device=str(device))
        zs = []
        t_all = torch.arange(num_classes).repeat_interleave(per_class)
        for i in range(0, len(t_all), chunk):
            t = t_all[i:i + chunk]
            z0 = torch.rand((len(t), *shape), generator=gen)  # every rank draws all (one generator stream)
            if not dist.active:
                zs.append(attack(classifier, z0.to(device), t.to(device)))
                continue
            sl, z = dist.share(len(t)), torch.zeros_like(z0, device=device)  # each rank attacks its share
            if len(t[sl]):
                z[sl] = attack(classifier, z0[sl].to(device), t[sl].to(device))
            zs.append(dist.sum_(z))
        self.z = torch.cat(zs).view(num_classes, per_class, *shape)
        with torch.no_grad():
            pred = torch.cat([classifier(self.z.flatten(0, 1)[i:i + 512]).argmax(1)
                              for i in range(0, num_classes * per_class, 512)])
        self.success = (pred.cpu() == t_all).float().mean().item()
        log(f"NAE pool: {num_classes}x{per_class}, attack success {100 * self.success:.2f}%")

    def sample(self, targets: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        j = torch.randint(0, self.per_class, (len(targets),), generator=gen).to(targets.device)
        return self.z[targets, j]


def random_perms(n: int, numel: int, gen: torch.Generator, device) -> torch.Tensor:
    """Uniformly random permutations of ``numel`` elements, one per row (training stand-in for the keyed ones)."""
    return torch.rand(n, numel, generator=gen).argsort(1).to(device)


def codec_step(codec, clf, x, z, t, alpha: float, kappa: float, training: bool,
                perm: torch.Tensor | None = None, use_margin: bool = True):
    """One pass through :mod:`ric.codec.compose` (the scheme's own composition): ciphertext, recovery, per-image MSE
    and margin. ``use_margin=False`` (crops: the classifier needs whole images) gives a zero margin."""
    c = encrypt_pixels(codec, x, z, alpha, perm, training=training)
    lm = margin(clf(c), t, kappa) if use_margin else torch.zeros(len(x), device=x.device)
    xh = recover(codec, c, z, alpha, perm)
    mse = ((xh - x) ** 2).flatten(1).mean(1)
    return c, xh, mse, lm


class _CodecStep(torch.nn.Module):
    """:func:`codec_step` as a module's forward, so that DistributedDataParallel sees the codec's training pass."""

    def __init__(self, codec, clf):
        super().__init__()
        self.codec, self.clf = codec, clf

    def forward(self, x, z, t, alpha: float, kappa: float, perm=None, use_margin: bool = True):
        return codec_step(self.codec, self.clf, x, z, t, alpha, kappa, True, perm=perm, use_margin=use_margin)


@dataclass
class _CodecRun:
    """Everything one codec training run holds: model, optimiser, data on the device, NAE pool, eval set."""

    recipe: CodecRecipe
    clf: torch.nn.Module
    codec: torch.nn.Module
    opt: torch.optim.Optimizer
    gen: torch.Generator
    dev: torch.device
    xtr: torch.Tensor
    pool: NAEPool
    xte: torch.Tensor
    tte: torch.Tensor
    zte: torch.Tensor
    pte: torch.Tensor | None
    dist: Dist
    step: torch.nn.Module  # _CodecStep, in DistributedDataParallel under torchrun


def train_codec(recipe: CodecRecipe, classifier: Classifier, train: ArrayDataset, test: ArrayDataset,
                run_dir: str | Path, out_dir: str | Path, device: str = "cpu", time_budget: float | None = None,
                command: str = "", log=print, init: str | Path | None = None, dist: Dist | None = None) -> dict:
    """Train F, E, D jointly with the classifier frozen: ``β·MSE(x̂, x) + w·mean(margin(C(c), t, κ))``.

    Resumable from ``run_dir/ckpt.pt``; writes ``log.jsonl`` and ``preview.png`` (rows: plaintext, NAE,
    ciphertext, recovered) every epoch, and the bundle to ``out_dir`` at the end. ``dist``: this process's rank
    in a torchrun job (:mod:`ric.distributed.ddp`): the NAE pool is split over the ranks, each global batch too
    (DistributedDataParallel), and rank 0 evaluates and writes the run folder and the bundle."""
    dist = dist or Dist(device=device)
    run = RunFolder(run_dir, log if dist.writer else _quiet, writer=dist.writer)
    log = run.log
    r = _setup(recipe, classifier, train, test, dist.device, log, init, dist)
    s = run.resume(r.dev)
    start_epoch, before = 0, 0.0
    if s is not None:
        r.codec.load_state_dict(s["codec"])
        r.opt.load_state_dict(s["opt"])
        r.gen.set_state(s["gen"])
        start_epoch, before = s["epoch"], s["elapsed"]
        log(f"resumed from epoch {start_epoch} ({before:.0f}s trained)")
    budget = Budget(time_budget, before)
    rec: dict = {}
    for epoch in range(start_epoch, recipe.epochs):
        tot, lr, stop = _codec_epoch(r, epoch, budget)
        mse, lm, n = dist.sum(tot["mse"], tot["margin"], tot["n"])
        rec = {"epoch": epoch + 1, "train_mse": mse / max(1, n), "train_margin": lm / max(1, n), "lr": lr,
               "elapsed_s": budget.elapsed}
        if dist.writer:  # rank 0 evaluates and writes; the others go on to the next epoch's first gradient exchange
            rec = {**rec, **_codec_eval(r)}
            run.record(rec)
            run.save({"codec": r.codec.state_dict(), "opt": r.opt.state_dict(), "gen": r.gen.get_state(),
                      "epoch": epoch + 1, "elapsed": rec["elapsed_s"]})
            _preview(r, run.path / "preview.png")
        if stop:
            log("time budget reached")
            break
    cfg = {"kind": "ric", "name": recipe.name, "codec": recipe.codec, "alpha": recipe.alpha,
           "attack": r.pool.attack.config(), "nae_batch": recipe.nae_batch, "classifier": recipe.classifier,
           "scramble": recipe.scramble, "classifier_sha256": classifier.weights_sha256,
           "image_shape": list(r.xtr.shape[1:]),
           "training": {**asdict(recipe), "epochs_done": rec.get("epoch", start_epoch),
                        "train_data": train.name, "eval_data": f"{test.name}[:{recipe.eval_images}]",
                        "nae_pool_success": r.pool.success, "final_log": rec, "device": str(r.dev),
                        "torch": torch.__version__, "command": command, "init": str(init or "")}}
    if dist.writer:
        bundles.save_bundle(out_dir, r.codec.state_dict(), cfg, codec_card(cfg))
    return cfg


def _quiet(*_args) -> None:
    """The log of a rank that is not rank 0."""


def _setup(recipe: CodecRecipe, classifier: Classifier, train: ArrayDataset, test: ArrayDataset, device, log,
           init, dist: Dist | None = None) -> _CodecRun:
    """Frozen classifier, fresh (or ``init``) codec, Adam, the training NAE pool and the fixed eval set."""
    dev = torch.device(device)
    if dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    torch.manual_seed(recipe.seed)
    gen = torch.Generator().manual_seed(recipe.seed)
    clf = classifier.to(dev).eval().requires_grad_(False)
    codec = make_codec(recipe.codec)
    if init:
        codec.load_state_dict(bundles.load_weights(bundles.resolve(init, kind="ric")))
        log(f"initialised from {init}")
    codec = codec.to(dev)
    opt = torch.optim.Adam(codec.parameters(), lr=recipe.lr)
    xtr, _ = train.tensors()
    xte, _ = test.tensors(0, recipe.eval_images)
    dist = dist or Dist(device=device)
    pool = NAEPool(clf, make_attack(recipe.attack), clf.num_classes, tuple(xtr.shape[1:]), recipe.pool_per_class,
                   dev, gen, log=log, dist=dist)
    xte = xte.to(dev)
    with torch.no_grad():
        tte = clf.predict(xte)
    eval_gen = torch.Generator().manual_seed(1234)
    zte = pool.sample(tte.cpu(), eval_gen).to(dev)
    pte = random_perms(len(xte), xte[0].numel(), eval_gen, dev) if recipe.scramble else None
    return _CodecRun(recipe, clf, codec, opt, gen, dev, xtr.to(dev), pool, xte, tte, zte, pte, dist,
                     dist.wrap(_CodecStep(codec, clf)))


def _codec_epoch(r: _CodecRun, epoch: int, budget: Budget) -> tuple[dict, float, bool]:
    """One epoch (``epoch_repeat`` passes); returns this rank's summed losses, the last lr, and whether the budget
    ran out (on rank 0: all ranks stop together). Every rank draws the same global batch (augmentation, targets,
    NAEs, crops, permutations) and trains on its share, weighted by its size."""
    rc = r.recipe
    r.codec.train()
    steps_per_epoch = math.ceil(len(r.xtr) * max(1, rc.epoch_repeat) / rc.batch_size)
    perm = torch.cat([torch.randperm(len(r.xtr), generator=r.gen) for _ in range(max(1, rc.epoch_repeat))])
    tot, lr = {"mse": 0.0, "margin": 0.0, "n": 0}, rc.lr
    for k, i in enumerate(range(0, len(perm), rc.batch_size)):
        lr = cosine(rc.lr, budget.progress((epoch + k / steps_per_epoch) / rc.epochs), rc.lr_final_ratio)
        set_lr(r.opt, lr)
        xb = augment(r.xtr[perm[i:i + rc.batch_size].to(r.dev)], rc.pad, rc.flip, r.gen)
        with torch.no_grad():
            t = r.clf(xb).argmax(1)
        z = r.pool.sample(t, r.gen)
        if rc.crop:  # the same random window of the image and of its NAE (the NAE is image-independent)
            xb, z = random_crop(xb, rc.crop, r.gen), random_crop(z, rc.crop, r.gen)
        pb = random_perms(len(xb), xb[0].numel(), r.gen, r.dev) if rc.scramble else None
        sl = r.dist.share(len(xb))
        n_local = len(xb[sl])
        if not n_local:  # fewer images than ranks: a rank with none still joins the gradient exchange, weight 0
            sl = slice(0, 1)
        _, _, mse, lm = r.step(xb[sl], z[sl], t[sl], rc.alpha, rc.kappa, None if pb is None else pb[sl],
                               not rc.crop and rc.margin_weight > 0)
        loss = rc.beta * mse.mean() + rc.margin_weight * lm.mean()
        r.opt.zero_grad(set_to_none=True)
        (loss * (n_local * r.dist.world / len(xb))).backward()
        r.opt.step()
        if n_local:
            tot["mse"] += mse.sum().item()
            tot["margin"] += lm.sum().item()
            tot["n"] += n_local
        if budget.seconds and r.dist.any(budget.spent() and r.dist.writer):
            return tot, lr, True
    return tot, lr, False


@torch.no_grad()
def _codec_eval(r: _CodecRun) -> dict:
    """PSNR and label agreement on the fixed eval images with their fixed pool NAEs (rounded ciphertexts)."""
    r.codec.eval()
    ps, agree = [], []
    for j in range(0, len(r.xte), 128):
        sl = slice(j, j + 128)
        c, xh, _, _ = codec_step(r.codec, r.clf, r.xte[sl], r.zte[sl], r.tte[sl], r.recipe.alpha, r.recipe.kappa,
                                  False, perm=None if r.pte is None else r.pte[sl])
        ps.append(psnr(xh.clamp(0, 1), r.xte[sl]))
        agree.append(r.clf(c).argmax(1) == r.tte[sl])
    return {"eval_psnr": torch.cat(ps).mean().item(), "eval_agreement": torch.cat(agree).float().mean().item()}


@torch.no_grad()
def _preview(r: _CodecRun, path: Path) -> None:
    """Rows: plaintext, NAE, ciphertext, recovered (8 eval images)."""
    from torchvision.utils import save_image

    c, xh, _, _ = codec_step(r.codec, r.clf, r.xte[:8], r.zte[:8], r.tte[:8], r.recipe.alpha, r.recipe.kappa,
                              False, perm=None if r.pte is None else r.pte[:8])
    save_image(torch.cat([r.xte[:8], r.zte[:8], c, xh.clamp(0, 1)]).cpu(), path, nrow=8)


def _refine_note(refine) -> str:
    if not refine:
        return "off (this bundle's config.json says `\"refine\": false`)"
    return "on, " + ("default settings" if refine is True else f"settings {json.dumps(refine)}")


def codec_card(cfg: dict) -> str:
    """The model card (Markdown) of a codec bundle, from its config (training settings and final log)."""
    tr = cfg["training"]
    fl = tr.get("final_log", {})
    crop = (f", random {tr['crop']}×{tr['crop']} crops ({tr.get('epoch_repeat', 1)} per image per epoch; MSE term "
            "only)") if tr.get("crop") else ""
    return f"""# {cfg['name']}

RIC codec (feature extractor F, encoder E, decoder D) for classifier `{cfg['classifier']}`.

- Codec: `{json.dumps(cfg['codec'])}`; α = {cfg['alpha']}; NAE attack `{json.dumps(cfg['attack'])}`,
  computed in chunks of {cfg['nae_batch']}.
- Data: trained on `{tr['train_data']}` ({tr['dataset']}), random shifts ±{tr['pad']} px, flips {tr['flip']}{crop}.
- Scrambling of the encoder output (secret per-image permutation): {'yes' if cfg.get('scramble') else 'no'}.
- Encoder-side refinement at encryption (`ric.codec.refine`): {_refine_note(cfg.get('refine', True))}.
- Recipe: loss β·MSE + {0 if tr.get('crop') else tr.get('margin_weight', 1.0)}·mean C&W margin
  (β = {tr['beta']}, κ = {tr['kappa']}), Adam lr {tr['lr']} with cosine
  decay to {tr['lr_final_ratio']}×, batch {tr['batch_size']}, {tr['epochs_done']} epochs (of {tr['epochs']} planned;
  time budget may stop earlier), training NAE pool of {tr['pool_per_class']} per class
  (attack success {100 * tr['nae_pool_success']:.2f} %), device {tr['device']}, torch {tr['torch']}.
- Last training-time check on `{tr['eval_data']}` (pool NAEs, rounding):
  PSNR {fl.get('eval_psnr', float('nan')):.2f} dB,
  label agreement {100 * fl.get('eval_agreement', float('nan')):.2f} %.
- Command: `{tr['command']}`
{tr.get('description', '')}
"""
