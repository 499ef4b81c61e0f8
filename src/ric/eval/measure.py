"""Evaluation of RIC models on dataset splits: the numbers behind the paper's Tables 1-4 and Figure 7.

:func:`evaluate` measures one model on one set of images under one key: plaintext and ciphertext
accuracy, ADP, label agreement C(c) = C(x) (first attempt, and after the product's retries with fresh
nonces), recovery PSNR/SSIM, and on the *same* images and NAEs the identity-codec floor and the LSB-4
baseline; throughput through the public :class:`~ric.schemes.paper.RIC` API on a subset.
:mod:`ric.eval.paper_tables` runs every table with it.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ric.codec import make_codec
from ric.datasets import SPLITS, load_dataset
from ric.eval.baselines import lsb_hide, lsb_reveal
from ric.eval.metrics import ms_ssim, psnr, ssim
from ric.imageio import as_channels, to_tensor
from ric.keys import SecretKey, new_nonce
from ric.schemes.paper import RIC
from ric.zoo.bundles import DATASET_CLASSIFIERS, DATASET_MODELS  # noqa: F401  (re-exported)

LPIPS_NOTE = "not available offline (LPIPS needs AlexNet/VGG weights that are not on this machine)"


def machine() -> str:
    return (f"{platform.machine()} {platform.processor() or ''} cpu, {torch.get_num_threads()} threads, "
            f"torch {torch.__version__}").replace("  ", " ")


def load_model(model: str, codec_from: str | None = None, device: str = "cpu") -> RIC:
    """A RIC model bundle; ``codec_from`` swaps in the codec (and α, scrambling) of another bundle (Table 3)."""
    ric = RIC.load(model, device=device)
    return ric.with_codec_of(codec_from) if codec_from else ric


def _grey(x: torch.Tensor, grey: bool) -> torch.Tensor:
    return as_channels(x, 1) if grey else x


def images_of(ric: RIC, images: np.ndarray) -> torch.Tensor:
    """uint8 N×H×W×C → float N×C×H×W for the model (the channel policy: grey replicated to RGB)."""
    return as_channels(to_tensor(images), ric.input_shape[0])


def evaluate(ric: RIC, images: np.ndarray, labels: np.ndarray, key: SecretKey, retries: int = 3,
             baselines: bool = True, timing_images: int = 16, grid: str | Path | None = None,
             log: Callable = lambda s: None, others: dict[str, RIC] | None = None) -> dict:
    """Measure ``ric`` on uint8 images (N×H×W×C) with true ``labels``; see the module docstring.

    ``others``: models with the same classifier and NAE settings but another codec (``load_model(...,
    codec_from=...)``), measured on the same images and the same first-try NAEs (``res["others"]``)."""
    grey = images.shape[-1] == 1
    x = images_of(ric, images)
    y = torch.from_numpy(np.asarray(labels, np.int64))
    n, shape = len(x), tuple(x.shape[1:])
    ric.check_shape(shape)
    t0 = time.perf_counter()
    t = ric.predict(x)
    t_cls_plain = time.perf_counter() - t0
    nonces = [new_nonce() for _ in range(n)]
    t0 = time.perf_counter()
    z = ric.nae(key, nonces, t, shape)
    t_nae = time.perf_counter() - t0
    t0 = time.perf_counter()
    perm = ric.perms(key, nonces, shape)
    c = ric.encode_with(x, z, perm)
    t_enc = time.perf_counter() - t0
    log(f"  {n} images: NAE {t_nae:.0f}s, encode {t_enc:.0f}s")
    z0 = z.clone()
    tr = ric.encrypt_traced(x, t, key, nonces, z=z, c=c, perm=perm, max_retries=retries)
    c, lab, first, attempts = tr.c, tr.labels, tr.first, torch.tensor([tr.attempts[i] for i in range(n)])
    xh = ric.decode_with(c, tr.z, tr.perm)
    ok = lab == t
    xg, xhg = _grey(x, grey), _grey(xh, grey)
    ps, ss = psnr(xhg, xg), ssim(xhg, xg)
    res = {
        "images": n, "image_shape": list(images.shape[1:]),
        "plaintext_accuracy": float((t == y).float().mean()),
        "ciphertext_accuracy": float((lab == y).float().mean()),
        "agreement_first_try": float(first.float().mean()),
        "agreement": float(ok.float().mean()),
        "failed_after_retries": int((~ok).sum()),
        "mean_attempts": float(attempts.float().mean()),
        "psnr_db": float(ps[ok].mean()) if ok.any() else float("nan"),
        "psnr_min_db": float(ps[ok].min()) if ok.any() else float("nan"),
        "ssim": float(ss[ok].mean()) if ok.any() else float("nan"),
        "ms_ssim": float(ms_ssim(xhg, xg)[ok].mean()) if ok.any() else float("nan"),
        "lpips": LPIPS_NOTE,
        "refinement": ric.refinement.config() if ric.refinement is not None else None,
        "ciphertext_vs_plaintext_psnr_db": float(psnr(c, x).mean()),
    }
    res["adp"] = res["plaintext_accuracy"] - res["ciphertext_accuracy"]
    if baselines:
        res.update(_baselines(ric, x, z, t, xg, grey))
    k = min(n, timing_images)
    if k:
        res["throughput"] = _throughput(ric, x[:k], key, n, t_cls_plain, t_nae / (t_nae + t_enc))
    if others:  # other codecs on the same images and the same NAEs (Table 3)
        res["others"] = {name: _other_codec(other, x, t, key, z0, nonces, retries, xg, grey)
                         for name, other in others.items()}
        for name, o in res["others"].items():
            log(f"  codec of {name}: {o['psnr_db']:.2f} dB, agreement {100 * o['agreement']:.2f} %")
    if grid:
        save_grid(grid, x[:8], c[:8], xh[:8], grey)
    return res


def _baselines(ric: RIC, x, z, t, xg, grey: bool) -> dict:
    """The identity codec (8-bit floor) and LSB-4 in the NAE, on the same images and NAEs."""
    ident = RIC(make_codec({"name": "identity"}), ric.classifier, alpha=ric.alpha, batch_size=ric.batch_size,
                device=ric.device)
    c_id = ident.encode_with(x, z)
    x_id = _grey(ident.decode_with(c_id, z), grey)
    c_lsb = lsb_hide(x, z)
    x_lsb = _grey(lsb_reveal(c_lsb), grey)
    return dict(identity_psnr_db=float(psnr(x_id, xg).mean()), identity_ssim=float(ssim(x_id, xg).mean()),
                identity_ms_ssim=float(ms_ssim(x_id, xg).mean()), lsb4_ms_ssim=float(ms_ssim(x_lsb, xg).mean()),
                identity_agreement=float((ric.predict(c_id) == t).float().mean()),
                lsb4_psnr_db=float(psnr(x_lsb, xg).mean()), lsb4_ssim=float(ssim(x_lsb, xg).mean()),
                lsb4_agreement=float((ric.predict(c_lsb) == t).float().mean()))


def _throughput(ric: RIC, x, key: SecretKey, n: int, t_cls_plain: float, nae_share: float) -> dict:
    """Through the public API, on a subset (encrypt includes classification of x and c)."""
    t0 = time.perf_counter()
    enc = ric.encrypt(x, key)
    t_e = time.perf_counter() - t0
    cts = [r.ciphertext for r in enc if r.ciphertext is not None]
    t0 = time.perf_counter()
    ric.decrypt(cts, key)
    t_d = time.perf_counter() - t0
    return {"encrypt_images_per_s": len(x) / t_e, "decrypt_images_per_s": len(cts) / max(t_d, 1e-9),
            "classify_images_per_s": n / max(t_cls_plain, 1e-9), "nae_share_of_encrypt": nae_share,
            "timed_images": len(x)}


def _other_codec(other: RIC, x, t, key, z0, nonces, retries: int, xg, grey: bool) -> dict:
    tr = other.encrypt_traced(x, t, key, nonces, z=z0.clone(), max_retries=retries)
    xo, oko = other.decode_with(tr.c, tr.z, tr.perm), tr.labels == t
    pso, sso = psnr(_grey(xo, grey), xg), ssim(_grey(xo, grey), xg)
    return {"images": len(x), "agreement_first_try": float(tr.first.float().mean()),
            "agreement": float(oko.float().mean()), "failed_after_retries": int((~oko).sum()),
            "psnr_db": float(pso[oko].mean()) if oko.any() else float("nan"),
            "psnr_min_db": float(pso[oko].min()) if oko.any() else float("nan"),
            "ssim": float(sso[oko].mean()) if oko.any() else float("nan")}


def evaluate_exact(sch, images: np.ndarray, key: SecretKey, labels: np.ndarray | None = None) -> dict:
    """The exact scheme (:class:`ric.schemes.exact.ExactScheme`) on uint8 images: share that fits, label
    agreement C(c) = C(x) first try and after retries, share recovered bit-exactly (the decryption compared
    array by array), attack steps, images per second both ways (decryption includes the container tag check),
    and with ``labels`` the accuracies."""
    plains = list(images)
    t0 = time.perf_counter()
    res = sch.encrypt(plains, key)
    enc_s = time.perf_counter() - t0
    ok = [(a, r) for a, r in zip(plains, res, strict=True) if r.ciphertext is not None]
    fit = [r for r in res if "needs" not in r.error]
    t0 = time.perf_counter()
    back = sch.decrypt([r.ciphertext for _, r in ok], key)
    dec_s = time.perf_counter() - t0
    steps = np.array([r.steps for _, r in ok] or [0])
    out = {"images": len(plains), "fit": len(fit) / len(plains),
           "first_try": sum(r.attempts == 1 and r.ciphertext is not None for r in fit) / max(1, len(fit)),
           "agreement": len(ok) / max(1, len(fit)),
           "bit_exact": sum(np.array_equal(a, b) for (a, _), b in zip(ok, back, strict=True)) / max(1, len(ok)),
           "steps_median": float(np.median(steps)), "steps_p99": float(np.percentile(steps, 99)),
           "encrypt_img_s": len(plains) / enc_s, "decrypt_img_s": len(ok) / max(dec_s, 1e-9),
           "failed": [i for i, r in enumerate(res) if r.ciphertext is None]}
    if labels is not None and ok:
        y = np.asarray(labels)
        idx = [i for i, r in enumerate(res) if r.ciphertext is not None]
        out["plaintext_accuracy"] = float(np.mean([res[i].target == y[i] for i in range(len(res))]))
        out["ciphertext_accuracy"] = float(np.mean([res[i].target == y[i] for i in idx]))
    return out


def save_grid(path: str | Path, x: torch.Tensor, c: torch.Tensor, xh: torch.Tensor, grey: bool = False) -> None:
    """Rows: plaintext | ciphertext | recovered (PNG)."""
    from torchvision.utils import save_image

    if grey:
        x, xh = as_channels(as_channels(x, 1), 3), as_channels(as_channels(xh, 1), 3)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save_image(torch.cat([x, c, xh]), str(path), nrow=len(x), padding=1)


def eval_split(dataset: str, limit: int | None, default_n: int = 1000, data_root=None):
    """Test split of ``dataset``: the first ``limit`` images (default: ``default_n``, or all if fewer)."""
    ds = load_dataset(dataset, "test", data_root)
    n = min(len(ds), limit or default_n)
    return ds.images[:n], ds.labels[:n], f"{dataset} test split ({SPLITS[dataset]['note']}), first {n} images"
