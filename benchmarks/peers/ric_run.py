"""ric's exact scheme with the zoo's mnist-cnn5 on the first N MNIST test images, one image at a time.

    OMP_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python benchmarks/peers/ric_run.py --n 1000 --out peers-ric.json

Client: encrypt (the label-preserving digit attack, run with the classifier on the client) + PNG serialisation,
and later decrypt (payload and container tags checked). Server: parse the uploaded PNG and classify its pixels
(what ``ric serve`` does, without HTTP). Bytes: the ciphertext PNG up, the label down. Recoverable: every
decryption compared with its plaintext array by array. One random key, torch on 1 thread.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

from ric.classifiers import load_classifier  # noqa: E402
from ric.container import read_ciphertext_bytes  # noqa: E402
from ric.eval.measure import machine  # noqa: E402
from ric.imageio import to_tensor  # noqa: E402
from ric.keys import SecretKey  # noqa: E402
from ric.schemes.exact import ExactScheme  # noqa: E402


def one(sch, clf, a: np.ndarray, key: SecretKey) -> dict:
    t0 = time.perf_counter()
    res = sch.encrypt([a], key)[0]
    png = res.ciphertext.to_png() if res.ciphertext is not None else b""
    t_enc = time.perf_counter() - t0
    if not png:
        return {"ok": False, "target": int(res.target), "client_s": t_enc, "server_s": 0.0, "up": 0, "down": 0}
    t0 = time.perf_counter()
    ct = read_ciphertext_bytes(png, "upload")
    label = int(clf.predict(to_tensor(ct.pixels))[0])
    reply = json.dumps({"label": label}).encode()
    t_srv = time.perf_counter() - t0
    t0 = time.perf_counter()
    back = sch.decrypt([read_ciphertext_bytes(png, "stored")], key)[0]
    t_dec = time.perf_counter() - t0
    return {"ok": True, "target": int(res.target), "label": label, "client_s": t_enc + t_dec,
            "encrypt_s": t_enc, "decrypt_s": t_dec, "server_s": t_srv, "up": len(png), "down": len(reply),
            "exact": bool(np.array_equal(back, a))}


def run(n: int) -> dict:
    torch.set_num_threads(1)
    a, y = common.images(n)
    clf = load_classifier("mnist-cnn5")
    sch = ExactScheme(clf)
    key = SecretKey.generate()
    plain = clf.predict(to_tensor(a)).numpy()
    sch.encrypt([a[0]], key)  # warm-up (first call allocates), not counted
    rows = [one(sch, clf, a[i], key) for i in range(n)]
    ok = [r for r in rows if r["ok"]]
    agree = [r["ok"] and r["label"] == p for r, p in zip(rows, plain, strict=True)]
    mean = lambda k: float(np.mean([r[k] for r in ok]))  # noqa: E731
    from ric import __version__
    return {"peer": "ric", "n": n, "scheme": repr(sch), "bits": sch.bits, "classifier": clf.ident,
            "accuracy_vs_plain": float(np.mean(agree)), "accuracy_true": float(np.mean(plain == y)),
            "server_label_accuracy_true": float(np.mean([r["ok"] and r["label"] == t for r, t in zip(rows, y, strict=True)])),
            "failed": n - len(ok), "client_s": mean("client_s"), "encrypt_s": mean("encrypt_s"),
            "decrypt_s": mean("decrypt_s"), "server_s": mean("server_s"),
            "end_to_end_s": mean("client_s") + mean("server_s"), "bytes_up": mean("up"), "bytes_down": mean("down"),
            "bytes_per_image": mean("up") + mean("down"), "setup_bytes": 0,
            "bit_exact": float(np.mean([r["exact"] for r in ok])), "peak_rss_mb": common.peak_rss_mb(),
            "model_changed": "no (the zoo classifier as trained, float32)",
            "server_learns": "the label and the image's size class (28x28 grey)",
            "recoverable": "yes (bit-exact from the stored ciphertext with the key)",
            "versions": {"ric": __version__, **common.versions("torch", "numpy")}, "machine": machine(),
            "plain_labels": plain.tolist()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--out", default="peers-ric.json")
    args = p.parse_args(argv)
    common.write(args.out, run(args.n))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
