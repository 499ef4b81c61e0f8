"""Training a plaintext classifier of the zoo (SGD, warm-up + cosine, augmentation, optional frozen
pretrained backbone and auxiliary classes); resumable, and written as a bundle with its model card."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ric.classifiers import ARCHITECTURES, Classifier, build
from ric.datasets import ArrayDataset
from ric.distributed.ddp import Dist
from ric.training.augment import augment, geometric, photometric
from ric.training.loop import Budget, RunFolder, one_cycle, set_lr
from ric.zoo import bundles


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
    train_limit: int = 0  # the first N training / test images only (0: all), e.g. for a short trial run
    test_limit: int = 0


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
                     command: str = "", log=print, extras: list[ArrayDataset] | None = None,
                     dist: Dist | None = None) -> dict:
    """Train a zoo classifier with SGD + warm-up/cosine schedule; resumable from ``run_dir/ckpt.pt``.

    ``extras``: auxiliary labelled sets trained as additional classes (dropped from the shipped head).
    ``dist``: this process's rank in a torchrun job (:mod:`ric.distributed.ddp`): DistributedDataParallel over
    shares of every global batch; rank 0 writes the run folder and the bundle."""
    dist = dist or Dist(device=device)
    device = dist.device
    run = RunFolder(run_dir, log if dist.writer else _quiet, writer=dist.writer)
    log = run.log
    extras = extras or []
    xtr, ytr = _with_extras(train, extras)
    xte, yte = test.tensors(0, recipe.test_limit or None)
    dev = torch.device(device)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
        xtr, ytr = xtr.to(dev), ytr.to(dev)
    cfg = {"kind": "classifier", "name": recipe.name, "arch": recipe.arch, "arch_kwargs": recipe.arch_kwargs,
           "input_shape": [xtr.shape[1], xtr.shape[2], xtr.shape[3]], "mean": list(recipe.mean)[:xtr.shape[1]],
           "std": list(recipe.std)[:xtr.shape[1]], "class_names": train.classes}
    aux_names = [f"aux:{e.name}:{c}" for e in extras for c in e.classes]
    clf, opt, half_keys = _build_model(recipe, cfg, aux_names, device, log)
    gen = torch.Generator().manual_seed(recipe.seed)
    start_epoch = _resume(run, recipe, clf, opt, gen, device)
    budget = Budget(time_budget)
    n_main = len(train.classes)
    model = dist.wrap(clf)
    acc, epoch = None, start_epoch
    for epoch in range(start_epoch, recipe.epochs):
        loss = _classifier_epoch(model, opt, recipe, xtr, ytr, epoch, gen, dev, dist)
        acc = _evaluate(clf, xte, yte, n_main, dist)
        run.record({"epoch": epoch + 1, "loss": loss, "test_acc": acc, "elapsed_s": budget.elapsed})
        run.save({"net": clf.net.state_dict(), "opt": opt.state_dict(), "gen": gen.get_state(), "epoch": epoch + 1})
        if dist.any(budget.spent()):
            log("time budget reached")
            break
    if acc is None:
        acc = _evaluate(clf, xte, yte, n_main, dist)
    done_epochs = epoch + 1 if recipe.epochs > start_epoch else start_epoch
    cfg.update({"test_accuracy": acc, "train_data": train.name, "test_data": test.name,
                "recipe": asdict(recipe), "epochs_done": done_epochs, "command": command})
    if dist.writer:
        state = _main_head(clf.net.state_dict(), cfg, n_main, len(aux_names), (xte, yte), acc, device)
        bundles.save_bundle(out_dir, {k: v.half() if k in half_keys else v for k, v in state.items()}, cfg,
                            _classifier_card(cfg))
    return cfg


def _quiet(*_args) -> None:
    """The log of a rank that is not rank 0."""


def _evaluate(clf, xte, yte, n_main: int, dist: Dist) -> float:
    """Test accuracy; in a torchrun job each rank scores its shard (with rank 0's BatchNorm statistics)."""
    if not dist.active:
        return evaluate_classifier(clf, xte, yte, num_classes=n_main)
    dist.sync_buffers(clf)
    sl = dist.share(len(xte))
    n = len(xte[sl])
    correct, total = dist.sum(round(evaluate_classifier(clf, xte[sl], yte[sl], num_classes=n_main) * n), n)
    return correct / max(1.0, total)


def _build_model(recipe: ClassifierRecipe, cfg: dict, aux_names: list[str], device, log):
    """The network (with the auxiliary classes' outputs), its optional pretrained backbone, and SGD."""
    if recipe.arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {recipe.arch!r}")
    torch.manual_seed(recipe.seed)
    clf = build({**cfg, "class_names": cfg["class_names"] + aux_names}).to(device)
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
                          weight_decay=recipe.weight_decay, nesterov=True)
    return clf, opt, half_keys


def _resume(run: RunFolder, recipe: ClassifierRecipe, clf, opt, gen: torch.Generator, device) -> int:
    """Restore the run's checkpoint (returns its epoch), or start from ``recipe.init``'s weights."""
    s = run.resume(device)
    if s is not None:
        clf.net.load_state_dict(s["net"])
        opt.load_state_dict(s["opt"])
        gen.set_state(s["gen"])
        run.log(f"resumed from epoch {s['epoch']}")
        return int(s["epoch"])
    if recipe.init:
        s = torch.load(Path(recipe.init) / "ckpt.pt", map_location=device, weights_only=False)
        clf.net.load_state_dict(s["net"])
        run.log(f"initialised from {recipe.init} (epoch {s['epoch']} of that run)")
    return 0


def _classifier_epoch(clf, opt, recipe: ClassifierRecipe, xtr, ytr, epoch: int, gen: torch.Generator, dev,
                      dist: Dist) -> float:
    """One pass over the training set; returns the mean loss (over all ranks). Every rank draws and augments the
    same global batch and trains on its share (:meth:`~ric.distributed.ddp.Dist.share`), its loss weighted by
    the share's size, so that the averaged gradient is the global batch's."""
    clf.train()
    amp = dev.type == "cuda"
    steps_per_epoch = math.ceil(len(xtr) / recipe.batch_size)
    perm = torch.randperm(len(xtr), generator=gen)
    tot, n = 0.0, 0
    for k, i in enumerate(range(0, len(xtr), recipe.batch_size)):
        set_lr(opt, one_cycle(recipe.lr, (epoch + k / steps_per_epoch) / recipe.epochs))
        idx = perm[i:i + recipe.batch_size]
        xb = augment(xtr[idx.to(xtr.device)], recipe.pad, recipe.flip, gen).to(dev, non_blocking=True)
        xb = geometric(xb, recipe.zoom, recipe.rotate, gen)
        xb = photometric(xb, recipe.grey_prob, recipe.jitter, gen)
        yb = ytr[idx.to(ytr.device)].to(dev)
        lam, perm_b = 1.0, None
        if recipe.mixup:
            lam = float(torch.distributions.Beta(recipe.mixup, recipe.mixup).sample())
            perm_b = torch.randperm(len(xb), generator=gen).to(xb.device)
            xb = lam * xb + (1 - lam) * xb[perm_b]
        yb2 = yb if perm_b is None else yb[perm_b]
        sl = dist.share(len(xb))
        n_local = len(xb[sl])
        if not n_local:  # fewer images than ranks: a rank with none still joins the gradient exchange, weight 0
            sl = slice(0, 1)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
            logits = clf(xb[sl])
            loss = F.cross_entropy(logits, yb[sl], label_smoothing=recipe.label_smoothing)
            if perm_b is not None:
                loss = lam * loss + (1 - lam) * F.cross_entropy(logits, yb2[sl], label_smoothing=recipe.label_smoothing)
        opt.zero_grad(set_to_none=True)
        (loss * (n_local * dist.world / len(xb))).backward()
        opt.step()
        tot += loss.detach().float() * n_local
        n += n_local
    tot, n = dist.sum(tot, n)
    return tot / max(1, n)


def _main_head(state: dict, cfg: dict, n_main: int, n_aux: int, test, acc: float, device) -> dict:
    """The state dict with the output layer cut to the main classes (auxiliary classes dropped), checked to give
    the same test accuracy."""
    if not n_aux:
        return state
    n_all = n_main + n_aux
    out_keys = [k for k, v in state.items() if v.ndim in (1, 2) and v.shape[0] == n_all]
    for k in out_keys[-2:]:
        state[k] = state[k][:n_main].clone()
    check = build(cfg)
    check.net.load_state_dict(state)
    acc2 = evaluate_classifier(check.to(device), *test)
    if abs(acc2 - acc) > 1e-9:
        raise RuntimeError(f"cutting the auxiliary classes changed the test accuracy ({acc} -> {acc2})")
    return state


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
