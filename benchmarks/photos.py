"""Phone photos through the exact scheme: bytes, exactness, labels, seconds and memory per photo, and a folder.

    python benchmarks/photos.py                      # 6 photos of 3-12 MP + a folder of 1,000 small photos
    python benchmarks/photos.py --folder 200 --old 40

Photos are made from real CIFAR-10 test images: upscaled (bicubic) to phone sizes, with sensor-like noise
(Gaussian, sigma 3 levels), saved as JPEG (quality 92, EXIF with maker and GPS) or PNG, landscape and portrait.

* Per photo (``classify``, ``encrypt``, ``decrypt`` through ``ric.api`` in this process, one warm-up photo first;
  each step timed ``--repeat`` times, the fastest counts):
  the file's bytes, the ciphertext's bytes and their ratio, the sha256 of the decrypted file against the original,
  the cloud's label against the plaintext's, and the seconds of each step. ``encrypt`` is the product's default
  (the robustness set ``serving-v1``, every ciphertext verified on the installed serving stacks); beside it the
  same photo encrypted with the attack in fp32 throughout (the default runs it in bf16 where the CPU has native
  bf16) and with ``robust_set=None`` (ric's own torch path only). The speed targets are ratios against
  ``classify`` on the same photo in the same run.
* Peak memory: ``ric encrypt`` / ``ric decrypt`` / ``ric classify`` on the largest photo, each in a fresh process
  (``ru_maxrss`` of the child: the whole process, torch included).
* A folder: ``ric encrypt`` and ``ric decrypt`` of ``--folder`` small photos end to end in fresh processes (photos
  per second, peak memory, every file byte-identical), the same with ``--robust-set none``, and the format-1
  carrier (the photo's own grid, a lossless pixel payload) on the first ``--old`` of the same photos through
  ``ExactScheme.encrypt`` (default robustness set, as the compact carrier); the first 200 photos again in this
  process, with the default attack and with it in fp32.

Writes docs/results/photos.{json,md}.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

CLASSIFIER = "cifar10-resnet18"
JXL = ("zlib", "jpegxl-jpeg")  # --transcode zlib,jpegxl-jpeg: JPEG XL's JPEG recompression (opt-in)
PHOTOS = (("landscape 12 MP", 4032, 3024, "JPEG"), ("portrait 12 MP", 3024, 4032, "JPEG"),
          ("landscape 6 MP", 3000, 2000, "JPEG"), ("portrait 3 MP", 1500, 2000, "JPEG"),
          ("landscape 3 MP PNG", 2000, 1500, "PNG"), ("16:9 8 MP", 3840, 2160, "JPEG"))


def make_photo(path: Path, src: np.ndarray, w: int, h: int, fmt: str, seed: int) -> Path:
    a = np.asarray(Image.fromarray(src).resize((w, h), Image.BICUBIC), dtype=np.float32)
    a += np.random.default_rng(seed).normal(0, 3, a.shape).astype(np.float32)
    img = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))
    ex = Image.Exif()
    ex[0x010F], ex[0x0110] = "PhoneMaker", "Phone 12"
    ex[0x8825] = {1: "N", 2: (48.0, 51.0, 24.0), 3: "E", 4: (2.0, 21.0, 3.0)}
    if fmt == "JPEG":
        img.save(path, quality=92, exif=ex.tobytes())
    else:
        img.save(path, exif=ex.tobytes())
    return path


def sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def timed(fn, *a, **kw):
    t0 = time.perf_counter()
    out = fn(*a, **kw)
    return out, time.perf_counter() - t0


REPEAT = 3  # per-photo steps are timed this many times (--repeat) and the fastest counts


def best(fn, *a, out: Path | None = None, **kw):
    """(the first run's result, the fastest of REPEAT runs' seconds); ``out``: the output folder (the call's second
    argument), a fresh one (``out``, ``out-2``, ...) per run."""
    results, times = [], []
    for r in range(REPEAT):
        args = a if out is None else (a[0], out if r == 0 else out.with_name(f"{out.name}-{r + 1}"), *a[1:])
        res, t = timed(fn, *args, **kw)
        results.append(res)
        times.append(t)
    return results[0], min(times)


def per_photo(work: Path, srcs: np.ndarray, scale: float = 1.0) -> list[dict]:
    from ric import api

    key = api.keygen(work / "k")
    warm = make_photo(work / "warm.jpg", srcs[0], 800, 600, "JPEG", 0)
    api.encrypt_files([warm], work / "warm-ct", key, classifier=CLASSIFIER)
    fp32 = fp32_scheme()
    api.encrypt_files([warm], work / "warm-ct-fp32", key, scheme=fp32)
    rows = []
    for i, (label, w, h, fmt) in enumerate(PHOTOS):
        w, h = int(w * scale), int(h * scale)
        d = work / f"p{i}"
        d.mkdir()
        f = make_photo(d / f"IMG_{i:04d}.{'jpg' if fmt == 'JPEG' else 'png'}", srcs[i + 1], w, h, fmt, i + 1)
        plain, t_cls = best(api.classify_files, [f], classifier=CLASSIFIER)
        enc, t_enc = best(api.encrypt_files, [f], key, out=d / "ct", classifier=CLASSIFIER)
        _, t_none = best(api.encrypt_files, [f], key, out=d / "ct-none", classifier=CLASSIFIER, robust_set=None)
        _, t_fp32 = best(api.encrypt_files, [f], key, out=d / "ct-fp32", scheme=fp32)
        jxl, t_jxl = best(api.encrypt_files, [f], key, out=d / "ct-jxl", classifier=CLASSIFIER, robust_set=None,
                          transcode=JXL)
        jct = Path(jxl[0]["output"])
        jdec, t_jdec = best(api.decrypt_files, [jct], key, out=d / "rec-jxl")
        ct = Path(enc[0]["output"])
        cloud = api.classify_files([ct])
        dec, t_dec = best(api.decrypt_files, [ct], key, out=d / "rec")
        rows.append({"photo": label, "format": fmt, "pixels": w * h, "file_bytes": f.stat().st_size,
                     "ciphertext_bytes": ct.stat().st_size, "carrier": enc[0].get("carrier_shape"),
                     "ratio": ct.stat().st_size / f.stat().st_size, "attempts": enc[0].get("attempts"),
                     "sha256_equal": sha(f) == sha(dec[0]["output"]), "label_kept": plain[0]["label"] == cloud[0]["label"],
                     "classify_s": t_cls, "encrypt_s": t_enc, "decrypt_s": t_dec, "encrypt_no_set_s": t_none,
                     "unchecked_stacks": enc[0].get("unchecked_stacks", []),
                     "encrypt_over_classify": t_enc / t_cls, "decrypt_over_classify": t_dec / t_cls,
                     "encrypt_no_set_over_classify": t_none / t_cls,
                     "encrypt_fp32_attack_s": t_fp32, "encrypt_fp32_attack_over_classify": t_fp32 / t_cls,
                     "jxl_ciphertext_bytes": jct.stat().st_size, "jxl_ratio": jct.stat().st_size / f.stat().st_size,
                     "jxl_encrypt_no_set_s": t_jxl, "jxl_decrypt_s": t_jdec,
                     "jxl_sha256_equal": sha(f) == sha(jdec[0]["output"])})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def attack_precision() -> str:
    """What the default attack runs its members in on this machine's CPU (bf16 where it is native)."""
    import torch

    from ric.nae import DigitAttack

    return DigitAttack().precision_on(torch.device("cpu"))


def fp32_scheme():
    """The default scheme with its attack in fp32 throughout (``DigitAttack(precision="fp32")``), the baseline of the
    bf16 surrogate the default runs where the CPU has native bf16."""
    from ric.classifiers import load_classifier
    from ric.schemes.exact import ExactScheme

    return ExactScheme(load_classifier(CLASSIFIER), attack={"precision": "fp32"})


def child(argv: list[str]) -> tuple[float, float]:
    """Seconds and peak RSS (MiB) of ``ric ARGV`` in a fresh process. The peak is the child's own ``VmHWM``: Linux
    carries ``ru_maxrss`` over ``fork`` + ``exec``, so ``getrusage`` in the child would report this process's peak
    whenever it is larger."""
    code = ("import re, sys, time; from ric.cli import main; t = time.perf_counter(); rc = main(sys.argv[1:]); "
            "hwm = int(re.search(r'VmHWM:\\s*(\\d+)', open('/proc/self/status').read()).group(1)); "
            "print(json.dumps([rc, time.perf_counter() - t, hwm]))")
    out = subprocess.run([sys.executable, "-c", "import json; " + code, *argv], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"ric {' '.join(argv)} failed: {out.stderr[-2000:]}")
    rc, secs, kib = json.loads(out.stdout.strip().splitlines()[-1])
    return secs, kib / 1024


def memory(work: Path, big: Path) -> dict:
    key = work / "k"
    row = {"photo": f"{big.name} ({big.stat().st_size} bytes)"}
    row["classify_s"], row["classify_peak_mib"] = child(["classify", str(big), "-c", CLASSIFIER, "-q"])
    row["encrypt_s"], row["encrypt_peak_mib"] = child(["encrypt", str(big), "-o", str(work / "mem-ct"), "-k", str(key),
                                                       "-c", CLASSIFIER, "-q"])
    row["decrypt_s"], row["decrypt_peak_mib"] = child(["decrypt", str(work / "mem-ct"), "-o", str(work / "mem-rec"),
                                                       "-k", str(key), "-q"])
    return row


IN_PROCESS = 200  # folder photos encrypted again in this process, with the attack in bf16 (default) and fp32


def folder(work: Path, srcs: np.ndarray, n: int, n_old: int) -> dict:
    from ric import api
    from ric.classifiers import load_classifier
    from ric.imageio import read_native
    from ric.keys import SecretKey
    from ric.schemes.exact import ExactScheme

    d = work / "folder"
    d.mkdir()
    files = []
    for i in range(n):
        w, h = (640, 480) if i % 2 == 0 else (480, 640)
        files.append(make_photo(d / f"IMG_{i:04d}.jpg", srcs[i % len(srcs)], w, h, "JPEG", 1000 + i))
    key = str(work / "k")
    t_cls, m_cls = child(["classify", str(d), "-c", CLASSIFIER, "-q"])
    t_enc, m_enc = child(["encrypt", str(d), "-o", str(work / "folder-ct"), "-k", key, "-c", CLASSIFIER, "-q"])
    t_dec, m_dec = child(["decrypt", str(work / "folder-ct"), "-o", str(work / "folder-rec"), "-k", key, "-q"])
    t_none, _ = child(["encrypt", str(d), "-o", str(work / "folder-ct-none"), "-k", key, "-c", CLASSIFIER, "-q",
                       "--robust-set", "none"])
    part = files[:IN_PROCESS]
    api.encrypt_files(part[:4], work / "folder-warm", SecretKey.load(key), classifier=CLASSIFIER)
    _, t_part = timed(api.encrypt_files, part, work / "folder-part", SecretKey.load(key), classifier=CLASSIFIER)
    _, t_part_fp32 = timed(api.encrypt_files, part, work / "folder-part-fp32", SecretKey.load(key),
                           scheme=fp32_scheme())
    same = sum(sha(f) == sha(work / "folder-rec" / f.name) for f in files)
    ct_bytes = sum(p.stat().st_size for p in (work / "folder-ct").iterdir())
    sch = ExactScheme(load_classifier(CLASSIFIER))
    old = [read_native(f, 3) for f in files[:n_old]]
    res, t_old = timed(sch.encrypt, old, SecretKey.load(key))
    old_bytes = sum(len(r.ciphertext.to_png()) for r in res if r.ciphertext is not None)
    new_rate = n / t_enc
    return {"photos": n, "size": "640x480 / 480x640 JPEG", "file_bytes": sum(f.stat().st_size for f in files),
            "ciphertext_bytes": ct_bytes, "byte_identical": same, "classify_s": t_cls, "encrypt_s": t_enc,
            "decrypt_s": t_dec, "classify_peak_mib": m_cls, "encrypt_peak_mib": m_enc, "decrypt_peak_mib": m_dec,
            "encrypt_photos_per_s": new_rate, "decrypt_photos_per_s": n / t_dec,
            "encrypt_no_set_s": t_none, "encrypt_no_set_photos_per_s": n / t_none,
            "in_process_photos": len(part), "in_process_encrypt_s": t_part, "in_process_encrypt_fp32_attack_s": t_part_fp32,
            "old_photos": n_old, "old_encrypt_photos_per_s": n_old / t_old,
            "old_ciphertext_bytes_per_photo": old_bytes / max(1, n_old),
            "new_ciphertext_bytes_per_photo": ct_bytes / n, "speedup_vs_old": new_rate / (n_old / t_old)}


def zlib_levels(work: Path) -> list[dict]:
    """Seconds to write and decode one real carrier, and its bytes, with Pillow's PNG writer (it filters every row)
    at zlib levels 0, 1, 6, 9 and with Huffman coding only, and with ric's unfiltered writer
    (ric.imageio.unfiltered_png; ciphertexts use it at ric.container.ZLIB_LEVEL / ZLIB_STRATEGY)."""
    from ric.container import ZLIB_LEVEL, ZLIB_STRATEGY, read_ciphertext
    from ric.imageio import unfiltered_png

    ct = read_ciphertext(next((work / "p0" / "ct").iterdir()))

    def pillow(level, strategy):
        buf = io.BytesIO()
        Image.fromarray(ct.pixels).save(buf, format="PNG", compress_level=level, compress_type=strategy)
        return buf.getvalue()

    writers = [("Pillow", lv, -1, lambda lv=lv: pillow(lv, -1)) for lv in (0, 1, 6, 9)]
    writers += [("Pillow", 1, 2, lambda: pillow(1, 2)),
                ("ric, unfiltered", 0, 0, lambda: unfiltered_png(ct.pixels, None, 0, 0)),
                ("ric, unfiltered", ZLIB_LEVEL, ZLIB_STRATEGY,
                 lambda: unfiltered_png(ct.pixels, None, ZLIB_LEVEL, ZLIB_STRATEGY))]
    rows = []
    for writer, level, strategy, write in writers:
        best, dec = float("inf"), float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            data = write()
            t1 = time.perf_counter()
            np.asarray(Image.open(io.BytesIO(data)))
            best, dec = min(best, t1 - t0), min(dec, time.perf_counter() - t1)
        rows.append({"writer": writer, "level": level,
                     "strategy": {-1: "default", 0: "default", 2: "Huffman only"}[strategy], "seconds": best, "decode_seconds": dec, "bytes_over_raw": len(data) / ct.pixels.nbytes,
                     "ric": writer.startswith("ric") and (level, strategy) == (ZLIB_LEVEL, ZLIB_STRATEGY)})
    return rows


def render(out: dict) -> str:
    lines = ["# Phone photos through the exact scheme", "",
             f"`{out['command']}` on {out['machine']}; classifier `{CLASSIFIER}`; photos made from CIFAR-10 test "
             "images (upscaled, sensor-like noise, JPEG q92 with EXIF+GPS, or PNG). Seconds are wall clock, per photo the "
             f"fastest of {out.get('repeat', 1)} runs of each step (1-minute "
             f"load average {out['load'][0]:.2f} at the start, {out['load'][1]:.2f} at the end); the ratios compare "
             "steps on the same photo in the same run. "
             "Encrypt is the default, robustness set `serving-v1` with every ciphertext verified on the installed "
             "serving stacks, its attack in bf16 where the CPU runs bf16 natively (`DigitAttack(precision=\"auto\")`: "
             f"{out.get('attack_precision', '?')} on this machine); beside it the same with the attack in fp32 "
             "throughout, and `robust_set=None`.", "",
             "| photo | format | file bytes | ciphertext bytes | ratio | carrier | sha256 equal | label kept | classify s "
             "| encrypt s (x classify) | attack in fp32 | without a robustness set | decrypt s (x classify) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in out["photos"]:
        lines.append(f"| {r['photo']} | {r['format']} | {r['file_bytes']:,} | {r['ciphertext_bytes']:,} | "
                     f"{r['ratio']:.3f} | {'x'.join(map(str, r['carrier'] or []))} | {r['sha256_equal']} | "
                     f"{r['label_kept']} | {r['classify_s']:.2f} | {r['encrypt_s']:.2f} ({r['encrypt_over_classify']:.2f}x)"
                     f" | {r['encrypt_fp32_attack_s']:.2f} ({r['encrypt_fp32_attack_over_classify']:.2f}x)"
                     f" | {r['encrypt_no_set_s']:.2f} ({r['encrypt_no_set_over_classify']:.2f}x)"
                     f" | {r['decrypt_s']:.2f} ({r['decrypt_over_classify']:.2f}x) |")
    lines += ["", "With JPEG XL's JPEG recompression (`--transcode zlib,jpegxl-jpeg`, opt-in), no robustness set, against "
              "the default transcoding (zlib only) with no robustness set:", "",
              "| photo | ciphertext bytes (ratio) | encrypt s (x classify) | decrypt s (x classify) | sha256 equal |",
              "|---|---|---|---|---|"]
    for r in out["photos"]:
        lines.append(f"| {r['photo']} | {r['jxl_ciphertext_bytes']:,} ({r['jxl_ratio']:.3f}) | "
                     f"{r['jxl_encrypt_no_set_s']:.2f} ({r['jxl_encrypt_no_set_s'] / r['classify_s']:.2f}x) | "
                     f"{r['jxl_decrypt_s']:.2f} ({r['jxl_decrypt_s'] / r['classify_s']:.2f}x) | {r['jxl_sha256_equal']} |")
    m = out["memory"]
    lines += ["", f"Peak memory, fresh process each ({m['photo']}): classify {m['classify_peak_mib']:.0f} MiB, "
              f"encrypt {m['encrypt_peak_mib']:.0f} MiB, decrypt {m['decrypt_peak_mib']:.0f} MiB "
              f"(whole process, torch included; {m['classify_s']:.1f} / {m['encrypt_s']:.1f} / {m['decrypt_s']:.1f} s "
              "with start-up).", ""]
    f = out["folder"]
    lines += ["## A folder", "",
              f"{f['photos']} photos ({f['size']}, {f['file_bytes']:,} bytes): `ric encrypt` {f['encrypt_s']:.1f} s "
              f"({f['encrypt_photos_per_s']:.2f} photos/s, peak {f['encrypt_peak_mib']:.0f} MiB), `ric decrypt` "
              f"{f['decrypt_s']:.1f} s ({f['decrypt_photos_per_s']:.2f} photos/s, peak {f['decrypt_peak_mib']:.0f} MiB), "
              f"`ric classify` {f['classify_s']:.1f} s (peak {f['classify_peak_mib']:.0f} MiB; encrypt "
              f"{f['encrypt_s'] / f['classify_s']:.1f}x classify, start-up included); `ric encrypt "
              f"--robust-set none` {f['encrypt_no_set_s']:.1f} s ({f['encrypt_no_set_photos_per_s']:.2f} photos/s); "
              f"{f['byte_identical']}/{f['photos']} files byte-identical; ciphertexts {f['ciphertext_bytes']:,} bytes "
              f"({f['ciphertext_bytes'] / f['file_bytes']:.3f}x the files).", "",
              f"In this process, the first {f['in_process_photos']} of them: {f['in_process_encrypt_s']:.1f} s with the "
              f"default attack, {f['in_process_encrypt_fp32_attack_s']:.1f} s with it in fp32 throughout "
              f"({f['in_process_encrypt_fp32_attack_s'] / f['in_process_encrypt_s']:.2f}x).", "",
              f"The format-1 carrier (the photo's own grid, lossless pixel payload) on the first {f['old_photos']} of "
              f"the same photos: {f['old_encrypt_photos_per_s']:.2f} photos/s and "
              f"{f['old_ciphertext_bytes_per_photo']:,.0f} bytes per ciphertext, against "
              f"{f['new_ciphertext_bytes_per_photo']:,.0f}: the compact carrier is {f['speedup_vs_old']:.1f}x faster.", "",
              "## PNG writer: filters, zlib level and strategy on a real carrier", "",
              "The first photo's carrier, best of 3 (decode: Pillow); the ciphertexts' writer is marked.", "",
              "| writer | level | strategy | write s | decode s | bytes / raw |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['writer']} | {r['level']} | {r['strategy']}{' (ciphertexts)' if r['ric'] else ''} | "
              f"{r['seconds']:.4f} | {r['decode_seconds']:.4f} | {r['bytes_over_raw']:.4f} |" for r in out["zlib_levels"]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--folder", type=int, default=1000, help="photos in the folder run")
    p.add_argument("--old", type=int, default=40, help="of those, photos encrypted with today's format-1 carrier")
    p.add_argument("--scale", type=float, default=1.0, help="photo sides times this (a smoke test: 0.1)")
    p.add_argument("--threads", type=int, help="torch threads in this process (default torch's; the fresh processes "
                   "follow OMP_NUM_THREADS)")
    p.add_argument("--repeat", type=int, default=REPEAT, help="times each per-photo step runs (the fastest counts)")
    p.add_argument("--data-root")
    p.add_argument("--out", default="docs/results")
    args = p.parse_args(argv)
    globals()["REPEAT"] = max(1, args.repeat)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    from ric.datasets import default_data_root
    from ric.eval.measure import machine

    root = Path(args.data_root) if args.data_root else default_data_root()
    srcs = np.load(root / "cifar10/cifar10_test.npz")["images"][:200]
    with tempfile.TemporaryDirectory(prefix="ric-photos-") as tmp:
        work = Path(tmp)
        out = {"command": "python benchmarks/photos.py " + " ".join(argv if argv is not None else sys.argv[1:]),
               "machine": machine(), "load": [os.getloadavg()[0]], "repeat": REPEAT,
               "attack_precision": attack_precision(), "photos": per_photo(work, srcs, args.scale)}
        big = next((work / "p0").glob("IMG_*"))
        out["memory"] = memory(work, big)
        out["zlib_levels"] = zlib_levels(work)
        out["folder"] = folder(work, srcs, args.folder, args.old)
        out["load"].append(os.getloadavg()[0])
    Path(args.out).mkdir(parents=True, exist_ok=True)
    Path(args.out, "photos.json").write_text(json.dumps(out, indent=1) + "\n")
    Path(args.out, "photos.md").write_text(render(out))
    print(render(out))


if __name__ == "__main__":
    main()
