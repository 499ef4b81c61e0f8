"""The paper's Tables 1-4 and the α sweep (Figure 7), run on the shipped weights: research code, never imported
by the product path.

:func:`paper_tables` runs every table (with :func:`ric.eval.measure.evaluate` per data set, the exact scheme's row
with :func:`ric.eval.measure.evaluate_exact`) and writes markdown, JSON and PNG files; ``main(argv)`` is its
command line (``python -m ric.eval.paper_tables -o DIR``, also ``ric eval --tables -o DIR``).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from ric.errors import RICError
from ric.eval.measure import eval_split, evaluate, evaluate_exact, images_of, load_model, machine
from ric.eval.metrics import psnr, ssim
from ric.keys import SecretKey, new_nonce
from ric.schemes.paper import RIC
from ric.zoo import bundles
from ric.zoo.bundles import DATASET_CLASSIFIERS, DATASET_MODELS

# Codecs of Table 3 (rows): every shipped codec trained on one of these sets (derived bundles reuse a codec).
CROSS_SOURCES = ("svhn", "faces")


# ------------------------------------------------------------------------------------------ tables
def _ablation_rows(ric_base: RIC, images, labels, key: SecretKey, root: Path, log) -> list[dict]:
    """Table 4 and the α sweep: every bundle under ``root`` evaluated on the same images (same key and
    nonces; one NAE set per attack configuration)."""
    rows = []
    folders = sorted(p for p in root.iterdir() if (p / "config.json").is_file()) if root.is_dir() else []
    x = images_of(ric_base, images)
    t = ric_base.predict(x)
    nonces = [new_nonce() for _ in range(len(x))]
    naes: dict[str, torch.Tensor] = {}
    for f in folders:
        cfg = bundles.read_config(f)
        ric = RIC.load(f)
        akey = json.dumps(cfg["attack"], sort_keys=True)
        if akey not in naes:
            naes[akey] = ric.nae(key, nonces, t, tuple(x.shape[1:]))
        z = naes[akey]
        perm = ric.perms(key, nonces, tuple(x.shape[1:]))
        c = ric.encode_with(x, z, perm)
        agree = (ric.predict(c) == t).float().mean().item()
        xh = ric.decode_with(c, z, perm)
        rows.append({"name": f.name, "alpha": cfg["alpha"], "attack": cfg["attack"]["name"],
                     "agreement_first_try": agree, "psnr_db": float(psnr(xh, x).mean()),
                     "ssim": float(ssim(xh, x).mean()), "weights_sha256": cfg["weights_sha256"],
                     "budget": cfg.get("training", {}).get("description", "")})
        log(f"  ablation {f.name}: agreement {100 * agree:.2f} %, {rows[-1]['psnr_db']:.2f} dB")
    return rows


def codec_sources() -> list[dict]:
    """Configs of the shipped trained codecs (Table 3 rows): trained on a set of ``CROSS_SOURCES``, not derived."""
    return [c for c in bundles.shipped() if c["kind"] == "ric" and not c.get("codec_weights_from")
            and c.get("training", {}).get("dataset") in CROSS_SOURCES]


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _table_task(task: tuple, key_raw: bytes, limit, data_root, out: str, ablation_root: str, threads: int,
                log: Callable | None = None):
    """One unit of :func:`paper_tables` (a dataset row, a cross-dataset cell or the ablation rows); runs in a
    worker process when ``jobs > 1`` (logging to stderr there). Returns ``(task, result)``."""
    if threads:
        torch.set_num_threads(threads)
    key = SecretKey(key_raw)
    log = log or _stderr
    kind, d = task
    t0 = time.perf_counter()
    if kind == "dataset":
        model = DATASET_MODELS[d]
        try:
            ric = load_model(model)
            images, labels, split = eval_split(d, limit, data_root=data_root)
        except RICError as e:  # a missing dataset file or bundle: say so in the report, go on
            log(f"{d}: skipped ({e})")
            return task, {"skipped": str(e)}
        own = bundles.codec_sha256(ric.config)
        others = {c["name"]: load_model(model, codec_from=c["name"]) for c in codec_sources()
                  if c["weights_sha256"] != own}
        log(f"{d}: {model} on {split}" + (f"; also the codecs of {', '.join(others)}" if others else ""))
        r = evaluate(ric, images, labels, key, grid=Path(out) / f"grid_{d}.png", log=log, others=others)
        r.update(model=model, data=split, classifier=ric.classifier.ident, codec_sha256=own,
                 codec_trained_on=ric.config.get("codec_trained_on", ric.config.get("training", {}).get("dataset")),
                 seconds=time.perf_counter() - t0)
        log(f"{d}: agreement {100 * r['agreement']:.2f} %, PSNR {r['psnr_db']:.2f} dB, "
            f"floor {r['identity_psnr_db']:.2f} ({r['seconds']:.0f} s)")
        from ric.classifiers import load_classifier
        from ric.schemes.exact import ExactScheme

        sch = ExactScheme(load_classifier(DATASET_CLASSIFIERS[d]))
        r["exact"] = {"classifier": sch.classifier.ident, "bits": sch.bits, **evaluate_exact(sch, images, key, labels)}
        log(f"{d}: exact scheme agreement {100 * r['exact']['agreement']:.2f} %, bit-exact "
            f"{100 * r['exact']['bit_exact']:.2f} %")
        return task, r
    ric = load_model("svhn-ric")
    images, labels, split = eval_split("svhn", limit, data_root=data_root)
    rows = _ablation_rows(ric, images, labels, key, Path(ablation_root), log)
    return task, {"data": split, "rows": rows}


def paper_tables(out: str | Path, limit: int | None = None, datasets: list[str] | None = None,
                 data_root=None, ablation_root: str | Path | None = None, command: str = "",
                 log: Callable = print, jobs: int = 1) -> dict:
    """Run Tables 1-4 and the α sweep on the shipped weights; write ``paper_tables.{md,json}`` and PNGs into
    ``out``. Table 4 and the α sweep evaluate the codec bundles under ``ablation_root`` (none: skipped).

    ``jobs > 1`` runs the datasets (and the ablation) in that many worker processes, one thread each by default
    (small batches use cores far better this way than with intra-op threads)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    key = SecretKey.generate()
    datasets = datasets or list(DATASET_MODELS)
    codecs = codec_sources()  # Table 3: measured inside each dataset's task, on the same images and NAEs
    tasks = [("dataset", d) for d in datasets]
    if "svhn" in datasets and ablation_root is not None:
        tasks.append(("ablation", "svhn"))
    threads = max(1, (torch.get_num_threads() if jobs <= 1 else (os.cpu_count() or 1) // jobs))
    args = (key.raw, limit, data_root, str(out), str(ablation_root), threads if jobs > 1 else 0)
    t0 = time.perf_counter()
    if jobs <= 1:
        results = [_table_task(t, *args, log=log) for t in tasks]
    else:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        # longest first, so that the big sets do not start last
        order = sorted(tasks, key=lambda t: t[0] != "dataset" or t[1] not in ("faces", "cifar10", "tinyimagenet"))
        with ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("spawn")) as ex:
            results = list(ex.map(_table_task, order, *[[a] * len(order) for a in args]))
    res = dict(results)
    report: dict = {"command": command, "machine": machine() if jobs <= 1 else
                    machine().split(",")[0] + f", {jobs} worker processes x {threads} thread(s), torch "
                    f"{torch.__version__}", "limit": limit,
                    "datasets": {d: res[("dataset", d)] for d in datasets}, "ablation": [], "cross": {}}
    for c in codecs:
        cells = {}
        for d in datasets:
            if "skipped" in report["datasets"][d]:
                continue
            own = report["datasets"][d]["codec_sha256"] == c["weights_sha256"]
            cells[d] = ({**report["datasets"][d], "own_model": True} if own
                        else report["datasets"][d].get("others", {}).get(c["name"], {"skipped": "not measured"}))
        report["cross"][c["name"]] = {"trained_on": c["training"]["dataset"], "codec_sha256": c["weights_sha256"],
                                      "scramble": bool(c.get("scramble")), "cells": cells}
    if ("ablation", "svhn") in res and "skipped" not in report["datasets"]["svhn"]:
        report["ablation_data"] = res[("ablation", "svhn")]["data"]
        report["ablation_root"] = str(ablation_root)
        report["ablation"] = res[("ablation", "svhn")]["rows"]
        if report["ablation"]:
            try:
                _alpha_figure(report["ablation"], out / "alpha_sweep.png")
                report["alpha_sweep_png"] = "alpha_sweep.png"
            except ImportError:  # matplotlib is optional (pip install -e '.[dev]' or '.[security]')
                log("matplotlib not installed: no alpha_sweep.png (the table has the numbers)")
    report["wall_seconds"] = time.perf_counter() - t0
    (out / "paper_tables.json").write_text(json.dumps(report, indent=1) + "\n")
    (out / "paper_tables.md").write_text(render_markdown(report))
    return report


def _alpha_figure(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sweep = sorted((r for r in rows if r["attack"] != "none" and r["alpha"] > 0
                    and (r["name"] not in HIDING or r["name"] == "nae-srl-a0.8")), key=lambda r: r["alpha"])
    if not sweep:
        return
    a = [r["alpha"] for r in sweep]
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot(a, [r["psnr_db"] for r in sweep], "o-", color="C0")
    ax.set_xlabel("α (SRL weight of the NAE)")
    ax.set_ylabel("recovery PSNR (dB)", color="C0")
    ax2 = ax.twinx()
    ax2.plot(a, [100 * r["agreement_first_try"] for r in sweep], "s--", color="C1")
    ax2.set_ylabel("label agreement, first try (%)", color="C1")
    ax.set_title("α sweep (small ablation codecs, equal budget)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _f(v, fmt="{:.2f}", scale=1.0):
    return fmt.format(v * scale) if isinstance(v, (int, float)) and v == v else "n/a"


def _adp(e: dict) -> float | None:
    p, c = e.get("plaintext_accuracy"), e.get("ciphertext_accuracy")
    return None if p is None or c is None or p == 0 else (p - c) / p


def render_markdown(rep: dict) -> str:
    ds = {k: v for k, v in rep["datasets"].items() if "skipped" not in v}
    lines = ["# Paper tables (RIC reference implementation)", "",
             f"Command: `{rep['command']}`  ", f"Machine: {rep['machine']}  ",
             f"Wall time: {rep.get('wall_seconds', float('nan')) / 60:.1f} min  ",
             "Key: one fresh random key per run; images: the first N of each test split (below).", ""]
    for k, v in rep["datasets"].items():
        if "skipped" in v:
            lines.append(f"- **{k}: skipped** ({v['skipped']})")
    lines += _table1(ds) + table2(ds, rep.get("ablation") or []) + _later_tables(rep, ds)
    return "\n".join(lines) + "\n"


def _table1(ds: dict) -> list[str]:
    lines = ["", "## Table 1: classification on ciphertexts", "",
             "| dataset | model (classifier) | images | plaintext acc | ciphertext acc | ADP | agreement first try |"
             " agreement after retries |", "|---|---|---|---|---|---|---|---|"]
    for k, r in ds.items():
        lines.append(f"| {k} | `{r['model']}` (`{r['classifier']}`) | {r['images']} | "
                     f"{_f(r['plaintext_accuracy'], scale=100)} % | {_f(r['ciphertext_accuracy'], scale=100)} % | "
                     f"{_f(r['adp'], scale=100)} pp | {_f(r['agreement_first_try'], scale=100)} % | "
                     f"{_f(r['agreement'], scale=100)} % ({r['failed_after_retries']} failed) |")
        e = r.get("exact")  # the exact scheme's row of this dataset, when it was measured
        if e:
            lines.append(f"| {k} | exact scheme, b = {e['bits']} (`{e['classifier']}`) | {e['images']} | "
                         f"{_f(e.get('plaintext_accuracy'), scale=100)} % | "
                         f"{_f(e.get('ciphertext_accuracy'), scale=100)} % | "
                         f"{_f(_adp(e), scale=100)} pp | {_f(e['first_try'], scale=100)} % | "
                         f"{_f(e['agreement'], scale=100)} % ({len(e['failed'])} failed; fit "
                         f"{_f(e['fit'], scale=100)} %) |")
    return lines + ["", "Data: " + "; ".join(f"{k}: {r['data']}" for k, r in ds.items())]


def _ms(v) -> str:
    return "n/a (under 33 px)" if v is None or v != v else f"{v:.4f}"


HIDING = {"nae-srl-a0.8": "RIC codec (ric-paper, small)", "ddh-srl-a0.8": "DDH-style hiding, NAE as cover",
          "hinet-srl-a0.8": "HiNet-style invertible hiding, NAE as cover"}


def _same_budget(ablation: list[dict]) -> list[str]:
    """Table 2's steganography baselines next to the RIC codec, all trained under the ablation budget."""
    rows = [r for r in ablation if r["name"] in HIDING]
    if not any(r["name"] != "nae-srl-a0.8" for r in rows):
        return []
    out = ["", "Same training budget (the small codecs of Table 4: `scripts/train_ablations.sh`, α = 0.8, "
               "same images, key and NAEs):", "",
           "| method | PSNR (dB) | SSIM | label agreement (first try) |", "|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: list(HIDING).index(r["name"])):
        out.append(f"| {HIDING[r['name']]} (`{r['name']}`) | {_f(r['psnr_db'])} | {_f(r['ssim'], '{:.4f}')} | "
                   f"{_f(r['agreement_first_try'], scale=100)} % |")
    return out


def table2(ds: dict, ablation: list[dict] = ()) -> list[str]:
    """The Markdown lines of Table 2 (recovery quality) for the per-dataset rows ``ds``."""
    lines = ["", "## Table 2: recovery quality (same images, same NAEs for every row)", "",
             "| dataset | method | PSNR (dB) | min PSNR | SSIM | MS-SSIM | LPIPS | label agreement |",
             "|---|---|---|---|---|---|---|---|"]
    for k, r in ds.items():
        if "psnr_db" not in r:
            continue
        lines += [f"| {k} | RIC `{r['model']}` (codec trained on {r['codec_trained_on']}, "
                  f"sha256 `{r['codec_sha256'][:12]}`) | {_f(r['psnr_db'])} | {_f(r['psnr_min_db'])} | "
                  f"{_f(r['ssim'], '{:.4f}')} | {_ms(r.get('ms_ssim'))} | not available offline | "
                  f"{_f(r['agreement'], scale=100)} % |",
                  f"| {k} | identity codec (8-bit floor) | {_f(r['identity_psnr_db'])} | | "
                  f"{_f(r['identity_ssim'], '{:.4f}')} | {_ms(r.get('identity_ms_ssim'))} | not available offline | "
                  f"{_f(r['identity_agreement'], scale=100)} % |",
                  f"| {k} | LSB 4-bit in the NAE | {_f(r['lsb4_psnr_db'])} | | {_f(r['lsb4_ssim'], '{:.4f}')} | "
                  f"{_ms(r.get('lsb4_ms_ssim'))} | not available offline | {_f(r['lsb4_agreement'], scale=100)} % |"]
        e = r.get("exact")
        if e:
            lines.append(f"| {k} | exact scheme (ours, b = {e['bits']}): bit-exact on "
                         f"{_f(e['bit_exact'], scale=100)} % of the images that fit | ∞ | ∞ | 1.0000 | 1.0000 | 0 | "
                         f"{_f(e['agreement'], scale=100)} % |")
    off = [f"`{r['model']}`" for r in ds.values() if "psnr_db" in r and r.get("refinement", True) is None]
    lines += ["", "RIC rows: the model as `ric encrypt` runs it, encoder-side refinement included (`ric.codec.refine`, "
                  "on by default; `--no-refine` turns it off" + (f"; off in the bundles of {', '.join(off)}, which "
                  "say so in their model cards" if off else "") + "). The identity and LSB rows use the same NAEs.", "",
              "MS-SSIM: pytorch-msssim, 5 scales, the largest window its downsamplings allow "
                  "(`ric.eval.metrics.ms_ssim`); not defined for 32-px and 28-px images."]
    return lines + _same_budget(ablation)


def _later_tables(rep: dict, ds: dict) -> list[str]:
    lines: list[str] = []
    lines += ["", "## Table 3: cross-dataset recovery (codec trained on X, used on Y)", "",
              "| codec (trained on) | " + " | ".join(ds) + " |", "|---|" + "---|" * len(ds)]
    for name, row in rep.get("cross", {}).items():
        cells = row["cells"]
        lines.append(f"| `{name}` ({row['trained_on']}{', scrambled' if row.get('scramble') else ''}) | " + " | ".join(
            (f"{_f(cells[k]['psnr_db'])} dB / {_f(cells[k]['ssim'], '{:.3f}')}"
             + (" †" if cells[k].get("own_model") else "")
             + ("" if cells[k].get("agreement", 1) == 1 else f" ({_f(cells[k]['agreement'], scale=100)} % agr.)"))
            if k in cells and "skipped" not in cells[k] else "n/a" for k in ds) + " |")
    if not rep.get("cross"):
        lines.append("| none | " + " | ".join("no trained codec shipped" for _ in ds) + " |")
    lines += ["", "Cells: PSNR / SSIM of recovery with the set's own classifier and NAE settings (`"
              + "`, `".join(f"{k}`: `{r['model']}" for k, r in ds.items()) + "`), its first N test images, after "
              "retries; every codec of a column saw the same images and the same first-try NAEs; † = the set's own "
              "model (its Table 1/2 row, ciphertexts refined as `ric encrypt` does); the other cells are the codec "
              "alone, without refinement; a label agreement below 100 % is shown. "
              "Identity floor on the same images: " +
              ", ".join(f"{k} {_f(r['identity_psnr_db'])} dB" for k, r in ds.items()) + "."]
    lines += ["", "## Table 4: ablation, and Figure 7: α sweep", ""]
    if rep.get("ablation"):
        root = rep.get("ablation_root", "the ablation folder")
        lines += [f"Small codecs (`{root}`, made by `scripts/train_ablations.sh`), all trained under the "
                  f"same budget; evaluated on {rep.get('ablation_data')}, same key and nonces.", "",
                  "| codec | NAE source | α | label agreement (first try) | PSNR (dB) | SSIM |",
                  "|---|---|---|---|---|---|"]
        for r in rep["ablation"]:
            if r["name"] in HIDING and r["name"] != "nae-srl-a0.8":
                continue  # the hiding baselines are in Table 2
            src = "RNI (no attack)" if r["attack"] == "none" else "NAE"
            srl = f"{r['alpha']}" if r["alpha"] > 0 else "0 (no SRL)"
            lines.append(f"| `{r['name']}` | {src} | {srl} | {_f(r['agreement_first_try'], scale=100)} % | "
                         f"{_f(r['psnr_db'])} | {_f(r['ssim'], '{:.4f}')} |")
        if rep.get("alpha_sweep_png"):
            lines += ["", "![alpha sweep](alpha_sweep.png)"]
    else:
        lines.append("No ablation codecs given or found (Table 4: `--ablation-root DIR`, codecs made by "
                     "`scripts/train_ablations.sh`).")
    lines += ["", "## Throughput (public API, this machine)", "",
              "| dataset | encrypt img/s | decrypt img/s | classify img/s | NAE share of encryption |",
              "|---|---|---|---|---|"]
    for k, r in ds.items():
        tp = r.get("throughput")
        if tp:
            lines.append(f"| {k} | {_f(tp['encrypt_images_per_s'])} | {_f(tp['decrypt_images_per_s'])} | "
                         f"{_f(tp['classify_images_per_s'], '{:.0f}')} | "
                         f"{_f(tp['nae_share_of_encrypt'], scale=100)} % |")
    lines += ["", "Encrypt/decrypt timed on the first 16 images of each set through `RIC.encrypt`/`RIC.decrypt` "
              "(NAE + codec + checks); classify = the plaintext classifier over all images; NAE share from the full "
              "pass.", "", "## Sample grids (rows: plaintext, ciphertext, recovered)", ""]
    lines += [f"- {k}: ![{k}](grid_{k}.png)" for k in ds]
    return lines


def main(argv: list[str] | None = None) -> int:
    """``python -m ric.eval.paper_tables -o DIR [--limit N] [--datasets ...] [--jobs N] [--ablation-root DIR]``."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m ric.eval.paper_tables", description=main.__doc__)
    p.add_argument("-o", "--output", required=True, help="folder for paper_tables.{md,json} and the figures")
    p.add_argument("--limit", type=int, help="first N test images per set (default 1000, or all if fewer)")
    p.add_argument("--datasets", nargs="+", choices=sorted(DATASET_MODELS))
    p.add_argument("--data-root", help="folder of the .npz data sets (default: $RIC_DATA or ../shared/data)")
    p.add_argument("--jobs", type=int, default=1, help="worker processes (one thread each)")
    p.add_argument("--ablation-root", help="folder of the small codecs of Table 4 and the α sweep (default: skip)")
    a = p.parse_args(argv)
    cmd = "python -m ric.eval.paper_tables " + " ".join(argv if argv is not None else sys.argv[1:])
    rep = paper_tables(a.output, a.limit, a.datasets, a.data_root, ablation_root=a.ablation_root, command=cmd,
                       jobs=a.jobs)
    print(f"wrote {a.output}/paper_tables.md (+ .json, figures) in {rep['wall_seconds'] / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
