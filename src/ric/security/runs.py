"""What the security report's runners share (:mod:`ric.security.report` for the paper scheme,
:mod:`ric.security.exact_report` for the exact scheme): the attacked images, keys, and the blind, known-plaintext
and curious-cloud sections, each returning results (and drawing its figure)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torchvision.utils import save_image

from ric.datasets import SPLITS, load_dataset
from ric.imageio import to_pixels, to_tensor
from ric.keys import SecretKey
from ric.security import (
    blind_attacks,
    curious_cloud_attack,
    known_plaintext_attack,
    mean_colour_baseline,
    plaintext_stats,
    score,
    stat_correlations,
)
from ric.security.blind import MEAN_COLOUR, affine_fit


def clock() -> str:
    """The wall-clock time for progress lines (HH:MM:SS)."""
    return time.strftime("%H:%M:%S")


def _eval_selection(dataset: str, n_test: int, n_eval: int) -> np.ndarray:
    """Indices of the attacked test images. Per-class splits (faces) are stored identity by identity: a fixed
    random subset there; SVHN's contiguous split is used in order (test images 8000…)."""
    if isinstance(SPLITS[dataset]["test"], str):
        return np.sort(np.random.default_rng(1).permutation(n_test)[:n_eval])
    return np.arange(n_eval)


def kpa_epochs(n: int, base: int) -> int:
    """U-Net epochs for N pairs: ``base`` up to 1,000 pairs, then the same number of training samples."""
    return base if n <= 1000 else max(5, base * 1000 // n)


def majority_share(labels) -> float:
    """The share of the most frequent label (a classifier's chance level on these labels)."""
    return float(np.bincount(np.asarray(labels)).max() / len(labels))


def load_or_make_key(path: Path) -> SecretKey:
    """The key stored at ``path``, or a fresh one saved there."""
    if path.is_file():
        return SecretKey.load(path)
    key = SecretKey.generate()
    key.save(path)
    return key


@dataclass
class AttackData:
    """The images of one model's evaluation: attacked test images (``x_eval``, ``y_eval``), the adversary's
    known pairs / the cloud's history (``x_kpa``, train images) and the keyless attacker's calibration images
    (``x_cal``, the last train images of the same order, encrypted under the attacker's own key)."""

    dataset: str
    x_eval: torch.Tensor
    y_eval: torch.Tensor
    x_kpa: torch.Tensor
    x_cal: torch.Tensor
    kpa_sizes: list[int]
    sel: np.ndarray  # indices of x_eval in the test split
    test: object  # ric.datasets.ArrayDataset
    description: str


def attack_data(dataset: str, sz: dict, data_root=None) -> AttackData:
    """Load and select the images of :class:`AttackData` for ``sz`` (one entry of :data:`SIZES`)."""
    test, train = load_dataset(dataset, "test", data_root), load_dataset(dataset, "train", data_root)
    n_eval = min(sz["n_eval"], len(test))
    kpa_sizes = [len(train) if n == "all" else min(n, len(train)) for n in sz["kpa"]]
    per_class = isinstance(SPLITS[dataset]["test"], str)
    sel = _eval_selection(dataset, len(test), n_eval)

    tensor = to_tensor

    # the adversary's pairs / the cloud's history: train images (shuffled once for per-class splits)
    full_order = np.random.default_rng(0).permutation(len(train)) if per_class else np.arange(len(train))
    x_kpa = tensor(train.images[full_order[:max(kpa_sizes)]])
    x_cal = tensor(train.images[full_order[::-1][:min(sz["n_cal"], len(train))]])
    desc = (f"{dataset}: {n_eval} test images ({'a fixed random subset, seed 1' if per_class else 'the first'}; "
            f"attacked); {len(x_kpa)} train images (adversary's pairs / the cloud's ciphertext history)")
    return AttackData(dataset, tensor(test.images[sel]), torch.from_numpy(test.labels[sel]), x_kpa, x_cal,
                      kpa_sizes, sel, test, desc)


def blind_section(c_eval: torch.Tensor, x_eval: torch.Tensor, alpha: float, fig: Path,
                  extra: dict[str, torch.Tensor] | None = None) -> tuple[dict, str, dict[str, torch.Tensor]]:
    """Every blind filter (and ``extra`` ones) scored against the plaintext, with the mean-colour oracle; the
    best one (with the oracle fit) drawn to ``fig``. Returns (scores by name, the best's name, the outputs)."""
    blind = {**blind_attacks(c_eval, alpha), **(extra or {})}
    scores = {name: score(y, x_eval) for name, y in blind.items()}
    scores[MEAN_COLOUR] = score(mean_colour_baseline(x_eval), x_eval)
    best = max(blind, key=lambda k: scores[k]["ssim_fit"])
    save_image(torch.cat([x_eval[:8], c_eval[:8], blind[best][:8].clamp(0, 1), affine_fit(blind[best], x_eval)[:8]]),
               fig, nrow=min(8, len(x_eval)))
    return scores, best, blind


def kpa_section(c_kpa: torch.Tensor, x_kpa: torch.Tensor, c_eval: torch.Tensor, x_eval: torch.Tensor,
                y_eval: torch.Tensor, predict: Callable, sizes: list[int], sz: dict, alpha: float,
                log: Callable) -> tuple[dict, dict[str, torch.Tensor]]:
    """The known-plaintext network for each N in ``sizes``: scores, the classifier's accuracy on the
    reconstructions (``predict``: images in [0,1] → labels) and the statistics' correlations; with the
    reconstructions per N."""
    truth = plaintext_stats(to_pixels(x_eval))
    out, recs = {}, {}
    width, crop = sz.get("kpa_width", 32), sz.get("kpa_crop")
    for n in sizes:
        log(f"[{clock()}] known-plaintext attack, N = {n}")
        t0 = time.time()
        ep = kpa_epochs(n, sz["kpa_epochs"])
        rec, head = known_plaintext_attack(c_kpa[:n], x_kpa[:n], c_eval, epochs=ep, width=width, crop=crop,
                                           batch_size=32 if crop else 64, alpha=alpha, return_stats=True)
        out[str(n)] = {**score(rec, x_eval), "classifier_accuracy_on_reconstructions":
                       (predict(rec) == y_eval).float().mean().item(),
                       "epochs": ep, "unet_width": width, "train_crop": crop, "seconds": time.time() - t0,
                       "stats_reconstruction": stat_correlations(plaintext_stats(to_pixels(rec)), truth),
                       "stats_head": stat_correlations(head, truth)}
        recs[str(n)] = rec
    return out, recs


def cloud_section(classifier, predict: Callable, c_kpa: torch.Tensor, real: torch.Tensor, c_eval: torch.Tensor,
                  x_eval: torch.Tensor, y_eval: torch.Tensor, sz: dict, fig: Path,
                  log: Callable) -> tuple[dict, torch.Tensor]:
    """The curious cloud trained on ``c_kpa`` and the classifier, with unpaired ``real`` images of the domain:
    (scores, the generated images)."""
    log(f"[{clock()}] curious cloud: generative attack on {len(c_kpa)} ciphertexts")
    t0 = time.time()
    gen = curious_cloud_attack(classifier, c_kpa, real, c_eval, size=sz["cloud_size"], epochs=sz["cloud_epochs"])
    save_image(torch.cat([x_eval[:8], c_eval[:8], gen[:8]]), fig, nrow=min(8, len(x_eval)))
    return {**score(gen, x_eval), "ciphertexts": len(c_kpa), "epochs": sz["cloud_epochs"], "size": sz["cloud_size"],
            "seconds": time.time() - t0,
            "classifier_accuracy_on_reconstructions": (predict(gen) == y_eval).float().mean().item()}, gen
