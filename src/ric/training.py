"""Training: plaintext classifiers (for the zoo) and the RIC codec (classifier frozen).

Both trainers checkpoint every epoch into a run folder and resume from it; both log one JSON line
per epoch to ``log.jsonl``; both stop at ``epochs`` or after ``time_budget`` seconds, whichever is
first, and then write a bundle.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from . import bundles
from .classifiers import ARCHITECTURES, Classifier, build
from .datasets import ArrayDataset


def _augment(x: torch.Tensor, pad: int, flip: bool, gen: torch.Generator) -> torch.Tensor:
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


def _one_cycle(lr: float, progress: float, warmup: float = 0.15) -> float:
    """Linear warm-up to ``lr`` over the first 15 % of training, then cosine decay towards 0."""
    if progress < warmup:
        return lr * (0.04 + 0.96 * progress / warmup)
    return lr * 0.5 * (1 + math.cos(math.pi * min(1.0, (progress - warmup) / (1 - warmup))))


@dataclass
class ClassifierRecipe:
    name: str
    arch: str
    dataset: str
    epochs: int = 30
    batch_size: int = 128
    lr: float = 0.05
    weight_decay: float = 5e-4
    label_smoothing: float = 0.0
    pad: int = 2
    flip: bool = False
    seed: int = 0
    arch_kwargs: dict = field(default_factory=dict)
    mean: tuple = (0.5, 0.5, 0.5)
    std: tuple = (0.25, 0.25, 0.25)
    # Extra datasets (all their images, resized and given the main set's channel count) whose classes are
    # appended as auxiliary classes during training; the shipped head keeps only the main set's classes.
    extra_train: list = field(default_factory=list)
    grey_prob: float = 0.0  # probability of turning a training image grey (kept 3-channel)
    jitter: float = 0.0  # random brightness/contrast factor in [1-jitter, 1+jitter]
    init: str = ""  # start from this run folder's checkpoint (a second stage; a fresh lr schedule)
    zoom: float = 0.0  # random scale in [1-zoom, 1+zoom] and rotation up to ±rotate degrees (per image)
    rotate: float = 0.0
    mixup: float = 0.0  # mixup Beta(m, m) of image pairs and of their (smoothed) labels
    # Pretrained weights (a safetensors file, e.g. from scripts/convert_dlib_face.py) loaded before training;
    # with freeze_backbone only the parameters under ``head`` are trained (a linear probe).
    backbone: str = ""
    freeze_backbone: bool = False
    # "float16": the frozen backbone is rounded to float16 before the head is trained and stored so in the
    # bundle (half the file; loaded back into float32, so the head is trained on exactly the shipped weights).
    backbone_dtype: str = "float32"
    notes: str = ""  # appended to the model card (provenance of pretrained weights, caveats)


def _geometric(x: torch.Tensor, zoom: float, rotate: float, gen: torch.Generator) -> torch.Tensor:
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


def _photometric(x: torch.Tensor, grey_prob: float, jitter: float, gen: torch.Generator) -> torch.Tensor:
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


def evaluate_classifier(clf: Classifier, x: torch.Tensor, y: torch.Tensor, batch_size: int = 500,
                        num_classes: int | None = None) -> float:
    """Accuracy; ``num_classes`` restricts the arg-max to the first classes (auxiliary classes ignored)."""
    clf.eval()
    dev = next(clf.parameters()).device
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            logits = clf(x[i:i + batch_size].to(dev))[:, :num_classes]
            correct += (logits.argmax(1).cpu() == y[i:i + batch_size]).sum().item()
    return correct / max(1, len(x))


def _with_extras(train: ArrayDataset, extras: list[ArrayDataset]) -> tuple[torch.Tensor, torch.Tensor]:
    """Main training set plus auxiliary sets (resized to its size, its channel count, labels offset)."""
    xtr, ytr = train.tensors()
    xs, ys, off = [xtr], [ytr], len(train.classes)
    for e in extras:
        xe, ye = e.with_channels(xtr.shape[1]).tensors()
        if xe.shape[-2:] != xtr.shape[-2:]:
            xe = F.interpolate(xe, size=xtr.shape[-2:], mode="bilinear", align_corners=False, antialias=True)
        xs.append(xe.clamp(0, 1))
        ys.append(ye + off)
        off += len(e.classes)
    return torch.cat(xs), torch.cat(ys)


def train_classifier(recipe: ClassifierRecipe, train: ArrayDataset, test: ArrayDataset, run_dir: str | Path,
                     out_dir: str | Path, device: str = "cpu", time_budget: float | None = None,
                     command: str = "", log=print, extras: list[ArrayDataset] | None = None) -> dict:
    """Train a zoo classifier with SGD + cosine schedule; resumable from ``run_dir/ckpt.pt``.

    ``extras``: auxiliary labelled sets trained as additional classes (dropped from the shipped head)."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    extras = extras or []
    xtr, ytr = _with_extras(train, extras)
    xte, yte = test.tensors()
    n_main = len(train.classes)
    aux_names = [f"aux:{e.name}:{c}" for e in extras for c in e.classes]
    dev = torch.device(device)
    amp = dev.type == "cuda"
    if amp:
        torch.backends.cudnn.benchmark = True
        xtr, ytr = xtr.to(dev), ytr.to(dev)
    cfg = {"kind": "classifier", "name": recipe.name, "arch": recipe.arch, "arch_kwargs": recipe.arch_kwargs,
           "input_shape": [xtr.shape[1], xtr.shape[2], xtr.shape[3]], "mean": list(recipe.mean)[:xtr.shape[1]],
           "std": list(recipe.std)[:xtr.shape[1]], "class_names": train.classes}
    assert recipe.arch in ARCHITECTURES
    torch.manual_seed(recipe.seed)
    clf = build({**cfg, "class_names": train.classes + aux_names}).to(device)
    if recipe.backbone:
        from safetensors.torch import load_file

        missing, unexpected = clf.net.load_state_dict(load_file(recipe.backbone), strict=False)
        if unexpected or any(not k.startswith("head.") for k in missing):
            raise ValueError(f"backbone {recipe.backbone} does not fit {recipe.arch}: missing {missing}, "
                             f"unexpected {unexpected}")
        log(f"backbone weights from {recipe.backbone}")
    if recipe.freeze_backbone:
        for k, p in clf.net.named_parameters():
            p.requires_grad_(k.startswith("head."))
    half_keys = _round_backbone(clf.net, recipe)
    opt = torch.optim.SGD([p for p in clf.net.parameters() if p.requires_grad], lr=recipe.lr, momentum=0.9,
                          weight_decay=recipe.weight_decay,
                          nesterov=True)
    steps_per_epoch = math.ceil(len(xtr) / recipe.batch_size)
    gen = torch.Generator().manual_seed(recipe.seed)
    start_epoch = 0
    ckpt = run_dir / "ckpt.pt"
    if ckpt.is_file():
        s = torch.load(ckpt, map_location=device, weights_only=False)
        clf.net.load_state_dict(s["net"])
        opt.load_state_dict(s["opt"])
        gen.set_state(s["gen"])
        start_epoch = s["epoch"]
        log(f"resumed from epoch {start_epoch}")
    elif recipe.init:
        s = torch.load(Path(recipe.init) / "ckpt.pt", map_location=device, weights_only=False)
        clf.net.load_state_dict(s["net"])
        log(f"initialised from {recipe.init} (epoch {s['epoch']} of that run)")
    t0 = time.time()
    acc = None
    for epoch in range(start_epoch, recipe.epochs):
        clf.train()
        perm = torch.randperm(len(xtr), generator=gen)
        tot, n = 0.0, 0
        for k, i in enumerate(range(0, len(xtr), recipe.batch_size)):
            for g in opt.param_groups:
                g["lr"] = _one_cycle(recipe.lr, (epoch + k / steps_per_epoch) / recipe.epochs)
            idx = perm[i:i + recipe.batch_size]
            xb = _augment(xtr[idx.to(xtr.device)], recipe.pad, recipe.flip, gen).to(device, non_blocking=True)
            xb = _geometric(xb, recipe.zoom, recipe.rotate, gen)
            xb = _photometric(xb, recipe.grey_prob, recipe.jitter, gen)
            yb = ytr[idx.to(ytr.device)].to(device)
            lam, perm_b = 1.0, None
            if recipe.mixup:
                lam = float(torch.distributions.Beta(recipe.mixup, recipe.mixup).sample())
                perm_b = torch.randperm(len(xb), generator=gen).to(xb.device)
                xb = lam * xb + (1 - lam) * xb[perm_b]
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
                logits = clf(xb)
                loss = F.cross_entropy(logits, yb, label_smoothing=recipe.label_smoothing)
                if perm_b is not None:
                    loss = lam * loss + (1 - lam) * F.cross_entropy(logits, yb[perm_b],
                                                                    label_smoothing=recipe.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            tot += loss.detach() * len(idx)
            n += len(idx)
        acc = evaluate_classifier(clf, xte, yte, num_classes=n_main)
        rec = {"epoch": epoch + 1, "loss": float(tot) / n, "test_acc": acc, "elapsed_s": time.time() - t0}
        log(json.dumps(rec))
        with open(run_dir / "log.jsonl", "a") as f:
            f.write(json.dumps(rec) + "\n")
        torch.save({"net": clf.net.state_dict(), "opt": opt.state_dict(), "gen": gen.get_state(),
                    "epoch": epoch + 1}, run_dir / "ckpt.tmp")
        Path(run_dir / "ckpt.tmp").replace(ckpt)
        if time_budget and time.time() - t0 > time_budget:
            log("time budget reached")
            break
    if acc is None:
        acc = evaluate_classifier(clf, xte, yte, num_classes=n_main)
    done_epochs = epoch + 1 if recipe.epochs > start_epoch else start_epoch
    cfg.update({"test_accuracy": acc, "train_data": train.name, "test_data": test.name,
                "recipe": asdict(recipe), "epochs_done": done_epochs, "command": command})
    card = _classifier_card(cfg)
    state = clf.net.state_dict()
    if aux_names:  # keep the main classes' rows of the output layer only
        n_all = n_main + len(aux_names)
        out_keys = [k for k, v in state.items() if v.ndim in (1, 2) and v.shape[0] == n_all]
        for k in out_keys[-2:]:
            state[k] = state[k][:n_main].clone()
        check = build(cfg)
        check.net.load_state_dict(state)
        acc2 = evaluate_classifier(check.to(device), xte, yte)
        assert abs(acc2 - acc) < 1e-9, (acc, acc2)
    bundles.save_bundle(out_dir, {k: v.half() if k in half_keys else v for k, v in state.items()}, cfg, card)
    return cfg


def _round_backbone(net: nn.Module, recipe: ClassifierRecipe) -> set[str]:
    """Round the frozen backbone's floating tensors to ``recipe.backbone_dtype`` (in place, kept float32);
    returns the state-dict keys to store at that precision."""
    if recipe.backbone_dtype == "float32":
        return set()
    if recipe.backbone_dtype != "float16" or not recipe.freeze_backbone:
        raise ValueError("backbone_dtype: 'float32', or 'float16' with freeze_backbone")
    keys = set()
    with torch.no_grad():
        for k, v in net.state_dict().items():
            if not k.startswith("head.") and v.is_floating_point():
                v.copy_(v.half().float())
                keys.add(k)
    return keys


def _extras_line(r: dict) -> str:
    parts = []
    if r.get("jitter"):
        parts.append(f"brightness/contrast jitter ±{r['jitter']}")
    if r.get("grey_prob"):
        parts.append(f"grey with probability {r['grey_prob']}")
    if r.get("zoom") or r.get("rotate"):
        parts.append(f"random scale ±{r.get('zoom', 0)} and rotation ±{r.get('rotate', 0)}°")
    if r.get("mixup"):
        parts.append(f"mixup Beta({r['mixup']}, {r['mixup']})")
    if r.get("backbone"):
        parts.append(f"pretrained weights `{r['backbone']}`" + (", frozen: only the linear head is trained"
                                                                 if r.get("freeze_backbone") else "")
                     + ("; the backbone is rounded to float16 before training and stored so"
                        if r.get("backbone_dtype") == "float16" else ""))
    if r.get("init"):
        parts.append(f"second stage: started from the run `{r['init']}` (recipe in its log)")
    if r.get("extra_train"):
        parts.append(f"auxiliary classes from {', '.join(r['extra_train'])} "
                     "(all images; dropped from the shipped head)")
    return "".join(f",\n  {p}" for p in parts)


def _classifier_card(cfg: dict) -> str:
    r = cfg["recipe"]
    return f"""# {cfg['name']}

Plaintext classifier of the RIC zoo.

- Architecture: `{cfg['arch']}` {cfg.get('arch_kwargs') or ''}, input {cfg['input_shape']} in [0,1],
  normalised inside with mean {cfg['mean']} / std {cfg['std']}.
- Data: train `{cfg['train_data']}` ({r['dataset']}), test `{cfg['test_data']}` (splits: `ric.datasets.SPLITS`).
- Recipe: SGD (Nesterov, momentum 0.9), warm-up + cosine lr {r['lr']}, weight decay {r['weight_decay']},
  batch {r['batch_size']}, {cfg['epochs_done']} of {r['epochs']} epochs, random shifts of ±{r['pad']} px,
  flips: {r['flip']}, label smoothing {r['label_smoothing']}, seed {r['seed']}{_extras_line(r)}.
- **Test accuracy: {100 * cfg['test_accuracy']:.2f} %** on `{cfg['test_data']}`.
- Command: `{cfg['command']}`
""" + (f"\n{r['notes']}\n" if r.get("notes") else "")


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
    # Secret per-image scrambling of the encoder output (``ric.pipeline``); training draws random permutations.
    scramble: bool = False
    # Train on random square crops of this size (0: whole images); the codec is fully convolutional.
    crop: int = 0
    # Weight of the margin term (0: MSE only, the NAE alone carries the label, as with crops; every encryption
    # still checks C(c) = t). Near the 8-bit floor the margin's gradients swamp β·MSE (≈3e-4).
    margin_weight: float = 1.0
    epoch_repeat: int = 1  # passes over the training images per logged epoch (small sets, e.g. 600 faces)


class NAEPool:
    """Training NAEs grouped by target class.

    An NAE depends only on (RNI, target, classifier), not on the image, so training pairs each image
    with a random pool NAE of the image's predicted class. Training RNIs come from torch's generator
    (training needs the distribution, not secrecy); products always derive them from the key."""

    def __init__(self, classifier, attack, num_classes: int, shape, per_class: int, device, gen: torch.Generator,
                 chunk: int = 1024, log=print):
        self.per_class = per_class
        zs = []
        t_all = torch.arange(num_classes).repeat_interleave(per_class)
        for i in range(0, len(t_all), chunk):
            t = t_all[i:i + chunk]
            z0 = torch.rand((len(t), *shape), generator=gen)
            zs.append(attack(classifier, z0.to(device), t.to(device)))
        self.z = torch.cat(zs).view(num_classes, per_class, *shape)
        with torch.no_grad():
            pred = torch.cat([classifier(self.z.flatten(0, 1)[i:i + 512]).argmax(1)
                              for i in range(0, num_classes * per_class, 512)])
        self.success = (pred.cpu() == t_all).float().mean().item()
        log(f"NAE pool: {num_classes}x{per_class}, attack success {100 * self.success:.2f}%")

    def sample(self, targets: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        j = torch.randint(0, self.per_class, (len(targets),), generator=gen).to(targets.device)
        return self.z[targets, j]


def _random_perms(n: int, numel: int, gen: torch.Generator, device) -> torch.Tensor:
    """Uniformly random permutations of ``numel`` elements, one per row (training stand-in for the keyed ones)."""
    return torch.rand(n, numel, generator=gen).argsort(1).to(device)


def _random_crop(x: torch.Tensor, size: int, gen: torch.Generator) -> torch.Tensor:
    """One random ``size``×``size`` window per image."""
    n, _, h, w = x.shape
    if size >= min(h, w):
        return x
    dy = torch.randint(0, h - size + 1, (n,), generator=gen).tolist()
    dx = torch.randint(0, w - size + 1, (n,), generator=gen).tolist()
    return torch.stack([x[i, :, a:a + size, b:b + size] for i, (a, b) in enumerate(zip(dy, dx, strict=True))])


def _codec_step(codec, clf, x, z, t, alpha: float, beta: float, kappa: float, training: bool,
                perm: torch.Tensor | None = None, use_margin: bool = True):
    """One pass: ciphertext, recovery, per-image MSE and margin. ``perm`` scrambles the encoder output as the
    pipeline does; ``use_margin=False`` (crops: the classifier needs whole images) gives a zero margin."""
    from .attacks import margin
    from .codec import quantize, scramble, srl_mix, srl_unmix, unscramble

    e = codec.encode(x, z)
    if perm is not None:
        e = scramble(e, perm)
    c = quantize(srl_mix(e, z, alpha), training=training)
    lm = margin(clf(c), t, kappa) if use_margin else torch.zeros(len(x), device=x.device)
    r = srl_unmix(c, z, alpha)
    if perm is not None:
        r = unscramble(r, perm)
    xh = codec.decode(r)
    mse = ((xh - x) ** 2).flatten(1).mean(1)
    return c, xh, mse, lm


def train_codec(recipe: CodecRecipe, classifier: Classifier, train: ArrayDataset, test: ArrayDataset,
                run_dir: str | Path, out_dir: str | Path, device: str = "cpu", time_budget: float | None = None,
                command: str = "", log=print, init: str | Path | None = None) -> dict:
    """Train F, E, D jointly with the classifier frozen: ``β·MSE(x̂, x) + mean(margin(C(c), t, κ))``.

    Resumable from ``run_dir/ckpt.pt``; writes ``log.jsonl`` and ``preview.png`` (rows: plaintext, NAE,
    ciphertext, recovered) every epoch, and the bundle to ``out_dir`` at the end."""
    from torchvision.utils import save_image

    from .attacks import make_attack
    from .codec import make_codec
    from .metrics import psnr

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
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
    shape = tuple(xtr.shape[1:])
    attack = make_attack(recipe.attack)
    pool = NAEPool(clf, attack, clf.num_classes, shape, recipe.pool_per_class, dev, gen, log=log)
    xtr_d = xtr.to(dev)
    xte_d = xte.to(dev)
    with torch.no_grad():
        tte = clf.predict(xte_d)
    eval_gen = torch.Generator().manual_seed(1234)
    zte = pool.sample(tte.cpu(), eval_gen).to(dev)
    pte = _random_perms(len(xte), xte[0].numel(), eval_gen, dev) if recipe.scramble else None

    start_epoch, elapsed_before = 0, 0.0
    ckpt = run_dir / "ckpt.pt"
    if ckpt.is_file():
        s = torch.load(ckpt, map_location=dev, weights_only=False)
        codec.load_state_dict(s["codec"])
        opt.load_state_dict(s["opt"])
        gen.set_state(s["gen"])
        start_epoch, elapsed_before = s["epoch"], s["elapsed"]
        log(f"resumed from epoch {start_epoch} ({elapsed_before:.0f}s trained)")
    steps_per_epoch = math.ceil(len(xtr) * max(1, recipe.epoch_repeat) / recipe.batch_size)
    t0 = time.time()
    rec: dict = {}
    epoch = start_epoch
    stop = False
    for epoch in range(start_epoch, recipe.epochs):
        codec.train()
        perm = torch.cat([torch.randperm(len(xtr), generator=gen) for _ in range(max(1, recipe.epoch_repeat))])
        tot = {"mse": 0.0, "margin": 0.0, "n": 0}
        for k, i in enumerate(range(0, len(perm), recipe.batch_size)):
            elapsed = elapsed_before + time.time() - t0
            progress = (epoch + k / steps_per_epoch) / recipe.epochs
            if time_budget:
                progress = max(progress, elapsed / time_budget)
            lr = recipe.lr * (recipe.lr_final_ratio + (1 - recipe.lr_final_ratio) * 0.5 *
                              (1 + math.cos(math.pi * min(1.0, progress))))
            for g in opt.param_groups:
                g["lr"] = lr
            idx = perm[i:i + recipe.batch_size].to(dev)
            xb = _augment(xtr_d[idx], recipe.pad, recipe.flip, gen)
            with torch.no_grad():
                t = clf(xb).argmax(1)
            z = pool.sample(t, gen)
            if recipe.crop:  # the same random window of the image and of its NAE (the NAE is image-independent)
                xb, z = _random_crop(xb, recipe.crop, gen), _random_crop(z, recipe.crop, gen)
            pb = _random_perms(len(xb), xb[0].numel(), gen, dev) if recipe.scramble else None
            _, _, mse, lm = _codec_step(codec, clf, xb, z, t, recipe.alpha, recipe.beta, recipe.kappa, True,
                                        perm=pb, use_margin=not recipe.crop and recipe.margin_weight > 0)
            loss = recipe.beta * mse.mean() + recipe.margin_weight * lm.mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            tot["mse"] += mse.sum().item()
            tot["margin"] += lm.sum().item()
            tot["n"] += len(idx)
            if time_budget and elapsed > time_budget:
                stop = True
                break
        codec.eval()
        with torch.no_grad():
            ps, agree = [], []
            for j in range(0, len(xte_d), 128):
                c, xh, _, _ = _codec_step(codec, clf, xte_d[j:j + 128], zte[j:j + 128], tte[j:j + 128],
                                          recipe.alpha, recipe.beta, recipe.kappa, False,
                                          perm=None if pte is None else pte[j:j + 128])
                ps.append(psnr(xh.clamp(0, 1), xte_d[j:j + 128]))
                agree.append(clf(c).argmax(1) == tte[j:j + 128])
            ps, agree = torch.cat(ps), torch.cat(agree)
        rec = {"epoch": epoch + 1, "train_mse": tot["mse"] / max(1, tot["n"]),
               "train_margin": tot["margin"] / max(1, tot["n"]), "lr": lr,
               "eval_psnr": ps.mean().item(), "eval_agreement": agree.float().mean().item(),
               "elapsed_s": elapsed_before + time.time() - t0}
        log(json.dumps(rec))
        with open(run_dir / "log.jsonl", "a") as f:
            f.write(json.dumps(rec) + "\n")
        torch.save({"codec": codec.state_dict(), "opt": opt.state_dict(), "gen": gen.get_state(),
                    "epoch": epoch + 1, "elapsed": rec["elapsed_s"]}, run_dir / "ckpt.tmp")
        (run_dir / "ckpt.tmp").replace(ckpt)
        with torch.no_grad():
            c, xh, _, _ = _codec_step(codec, clf, xte_d[:8], zte[:8], tte[:8], recipe.alpha, recipe.beta,
                                      recipe.kappa, False, perm=None if pte is None else pte[:8])
            save_image(torch.cat([xte_d[:8], zte[:8], c, xh.clamp(0, 1)]).cpu(), run_dir / "preview.png", nrow=8)
        if stop:
            log("time budget reached")
            break
    cfg = {"kind": "ric", "name": recipe.name, "codec": recipe.codec, "alpha": recipe.alpha,
           "attack": attack.config(), "nae_batch": recipe.nae_batch, "classifier": recipe.classifier,
           "scramble": recipe.scramble,
           "classifier_sha256": classifier.weights_sha256, "image_shape": list(shape),
           "training": {**asdict(recipe), "epochs_done": rec.get("epoch", start_epoch),
                        "train_data": train.name, "eval_data": f"{test.name}[:{recipe.eval_images}]",
                        "nae_pool_success": pool.success, "final_log": rec, "device": str(dev),
                        "torch": torch.__version__, "command": command, "init": str(init or "")}}
    card = _codec_card(cfg)
    bundles.save_bundle(out_dir, codec.state_dict(), cfg, card)
    return cfg


def _codec_card(cfg: dict) -> str:
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
