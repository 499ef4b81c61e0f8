"""Concrete ML (TFHE) private inference of the zoo's mnist-cnn5 on the first N MNIST test images.

    OMP_NUM_THREADS=1 .peers/concrete/bin/python benchmarks/peers/concrete_run.py --n 100 --fhe-n 3 \
        --out peers-concrete.json

Two configurations, both post-training quantized with ``compile_torch_model``:

* **full**: the zoo's network and weights (BatchNorm folded), ``--bits`` bit weights and activations,
  accumulators rounded to ``--round`` bits. Compiled, then run in Concrete's *simulation* on N images (accuracy)
  and, only with ``--full-fhe``, in real FHE (this circuit has ~10^5 programmable bootstraps: hours per image
  on one core here).
* **small**: the same layer layout at width ``--width`` (channels w-w-2w-2w-4w instead of 32-32-64-64-128),
  trained here on MNIST's training split for ``--epochs`` epochs (a changed model), the largest that runs in FHE
  in this session's time: executed for real on the first ``--fhe-n`` images with Concrete ML's deployment API
  (client: key generation, encrypt + serialise, decrypt; server: evaluation on ciphertexts), and simulated on N.

Bytes per image: the serialised encrypted input plus the encrypted output; the evaluation keys the client
uploads once are reported separately. Accuracy is against the plaintext zoo model's labels.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402


def train_small(width: int, epochs: int, seed: int = 0):
    """cnn5 at ``width``, with BatchNorm folded (trained with it), on MNIST's training split."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    d = np.load(common.DATA / "mnist_train.npz")
    x = torch.from_numpy(common.to_input(d["images"]))
    y = torch.from_numpy(d["labels"]).long()
    w = width
    chans = [(1, w), (w, w), None, (w, 2 * w), (2 * w, 2 * w), None, (2 * w, 4 * w)]
    layers: list = []
    for c in chans:
        layers += [nn.MaxPool2d(2)] if c is None else [nn.Conv2d(*c, 3, padding=1, bias=False), nn.BatchNorm2d(c[1]),
                                                       nn.ReLU()]
    net = nn.Sequential(*layers, nn.AvgPool2d(7), nn.Flatten(), nn.Linear(4 * w, 10))
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
    steps = epochs * (len(x) // 128)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 0.05, total_steps=steps)
    net.train()
    for _ in range(epochs):
        perm = torch.randperm(len(x))
        for s in range(len(x) // 128):
            i = perm[s * 128:(s + 1) * 128]
            loss = nn.functional.cross_entropy(net(x[i]), y[i])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    net.eval()
    return fold(net, width)


def fold(net, width: int):
    """The trained conv-BN-ReLU net as :func:`common.cnn5` (conv with bias, no BatchNorm)."""
    import torch

    out = common.cnn5(width=width)
    src = [m for m in net if isinstance(m, torch.nn.Conv2d)]
    bns = [m for m in net if isinstance(m, torch.nn.BatchNorm2d)]
    dst = [m for m in out if isinstance(m, torch.nn.Conv2d)]
    with torch.no_grad():
        for c, bn, o in zip(src, bns, dst, strict=True):
            s = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            o.weight.copy_(c.weight * s.view(-1, 1, 1, 1))
            o.bias.copy_(bn.bias - bn.running_mean * s)
        out[-1].load_state_dict(net[-1].state_dict())
    return out.eval()


def compile_q(net, calib: np.ndarray, bits: int, rnd: int):
    from concrete.ml.torch.compile import compile_torch_model

    t0 = time.perf_counter()
    q = compile_torch_model(net, calib, n_bits=bits, rounding_threshold_bits={"n_bits": rnd, "method": "approximate"})
    return q, time.perf_counter() - t0


def circuit_stats(q) -> dict:
    c = q.fhe_circuit
    out = {}
    for k in ("programmable_bootstrap_count", "complexity", "global_p_error"):
        try:
            v = getattr(c, k)
            out[k] = float(v) if not isinstance(v, dict) else {str(a): b for a, b in v.items()}
        except Exception as e:  # noqa: BLE001 - statistics differ between Concrete versions; report what there is
            out[k] = f"unavailable ({type(e).__name__})"
    out["max_bit_width"] = int(c.graph.maximum_integer_bit_width())
    return out


def simulate(q, x: np.ndarray) -> tuple[np.ndarray, float]:
    t0 = time.perf_counter()
    out = np.concatenate([q.forward(x[i:i + 1], fhe="simulate") for i in range(len(x))])
    return out.argmax(1), (time.perf_counter() - t0) / max(1, len(x))


def fhe_execute(q, x: np.ndarray) -> dict:
    """Real FHE through the deployment API, one image at a time: client and server timed separately."""
    from concrete.ml.deployment import FHEModelClient, FHEModelDev, FHEModelServer

    with tempfile.TemporaryDirectory() as tmp:
        FHEModelDev(f"{tmp}/model", q).save()
        client = FHEModelClient(f"{tmp}/model", key_dir=f"{tmp}/keys")
        t0 = time.perf_counter()
        client.generate_private_and_evaluation_keys()
        keys = client.get_serialized_evaluation_keys()
        keygen_s = time.perf_counter() - t0
        print(f"FHE key generation {keygen_s:.0f} s, evaluation keys {len(keys)} bytes", file=sys.stderr, flush=True)
        server = FHEModelServer(f"{tmp}/model")
        server.load()
        rows = []
        for i in range(len(x)):
            t0 = time.perf_counter()
            enc = client.quantize_encrypt_serialize(x[i:i + 1])
            t_enc = time.perf_counter() - t0
            t0 = time.perf_counter()
            res = server.run(enc, keys)
            t_srv = time.perf_counter() - t0
            t0 = time.perf_counter()
            logits = client.deserialize_decrypt_dequantize(res)
            t_dec = time.perf_counter() - t0
            print(f"FHE image {i}: client {t_enc + t_dec:.2f} s, server {t_srv:.0f} s", file=sys.stderr, flush=True)
            rows.append({"label": int(np.asarray(logits).argmax(1)[0]), "client_s": t_enc + t_dec,
                         "encrypt_s": t_enc, "decrypt_s": t_dec, "server_s": t_srv,
                         "up": len(enc), "down": len(res)})
    mean = lambda k: float(np.mean([r[k] for r in rows]))  # noqa: E731
    return {"n": len(rows), "labels": [r["label"] for r in rows], "keygen_s": keygen_s, "eval_key_bytes": len(keys),
            "client_s": mean("client_s"), "encrypt_s": mean("encrypt_s"), "decrypt_s": mean("decrypt_s"),
            "server_s": mean("server_s"), "end_to_end_s": mean("client_s") + mean("server_s"),
            "bytes_up": mean("up"), "bytes_down": mean("down"), "bytes_per_image": mean("up") + mean("down")}


def _fhe_child(q, x, queue) -> None:
    queue.put(fhe_execute(q, x))


def fhe_in_child(q, x: np.ndarray, timeout: float) -> dict:
    """:func:`fhe_execute` in a forked process, stopped after ``timeout`` s (key generation and evaluation are
    long native calls that a signal cannot interrupt)."""
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=_fhe_child, args=(q, x, queue))
    t0 = time.perf_counter()
    proc.start()
    try:
        return queue.get(timeout=timeout)
    except Exception:  # noqa: BLE001 - queue.Empty on timeout, or the child died
        return {"n": 0, "timed_out": True, "after_s": time.perf_counter() - t0, "exitcode": proc.exitcode}
    finally:
        if proc.is_alive():
            proc.kill()
        proc.join()


def config(net, name: str, x: np.ndarray, calib: np.ndarray, plain: np.ndarray, args, fhe_n: int) -> dict:
    import torch

    plain = plain[:len(x)]

    with torch.no_grad():
        own = net(torch.from_numpy(x)).argmax(1).numpy()
    q, compile_s = compile_q(net, calib, args.bits, args.round)
    sim, sim_s = simulate(q, x)
    row = {"config": name, "compile_s": compile_s, "circuit": circuit_stats(q),
           "float_accuracy_vs_plain": float(np.mean(own == plain)),
           "sim_accuracy_vs_plain": float(np.mean(sim == plain)), "sim_s_per_image": sim_s, "sim_n": len(x)}
    if fhe_n:
        fhe = fhe_in_child(q, x[:fhe_n], args.fhe_timeout)
    if fhe_n and "labels" in fhe:
        fhe["accuracy_vs_plain"] = float(np.mean(np.array(fhe["labels"]) == plain[:fhe_n]))
        fhe["agrees_with_simulation"] = float(np.mean(np.array(fhe["labels"]) == sim[:fhe_n]))
    if fhe_n:
        row["fhe"] = fhe
    return row


def run(args) -> dict:
    import torch

    torch.set_num_threads(1)
    a, y = common.images(args.n)
    x = common.to_input(a)
    calib = common.to_input(np.load(common.DATA / "mnist_train.npz")["images"][:args.calib])
    full = common.load_cnn5()
    with torch.no_grad():
        plain = full(torch.from_numpy(x)).argmax(1).numpy()
    rep = {"peer": "concrete", "n": args.n, "bits": args.bits, "round_bits": args.round, "calib_images": args.calib,
           "configs": {}}
    t0 = time.perf_counter()
    small = train_small(args.width, args.epochs)
    rep["small_train_s"] = time.perf_counter() - t0
    rep["configs"]["small"] = config(small, f"cnn5 width {args.width}, retrained {args.epochs} epochs", x, calib,
                                     plain, args, args.fhe_n)
    if not args.skip_full:
        rep["configs"]["full"] = config(full, "mnist-cnn5 (zoo weights, width 32)", x[:args.full_n], calib,
                                        plain, args,
                                        args.fhe_n if args.full_fhe else 0)
    fhe = rep["configs"]["small"].get("fhe", {})
    if fhe.get("timed_out"):
        rep["fhe_timed_out"] = fhe
    rep.update({"fhe_n": fhe.get("n", 0), "accuracy_vs_plain": fhe.get("accuracy_vs_plain"),
                "client_s": fhe.get("client_s"), "server_s": fhe.get("server_s"),
                "end_to_end_s": fhe.get("end_to_end_s"), "bytes_per_image": fhe.get("bytes_per_image"),
                "setup_bytes": fhe.get("eval_key_bytes"), "peak_rss_mb": common.peak_rss_mb(),
                "model_changed": (f"yes: {args.bits}-bit post-training quantization, accumulators rounded to "
                                  f"{args.round} bits; real FHE " + ("executed" if fhe.get("n") else "attempted")
                                  + f" only on a retrained width-{args.width} cnn5"),
                "server_learns": "nothing (TFHE ciphertexts only)",
                "recoverable": "no (the server holds ciphertexts it cannot decrypt and keeps no image)",
                "versions": common.versions("concrete-ml", "concrete-python", "torch", "numpy"),
                "machine": f"{__import__('platform').machine()} cpu, torch 1 thread, OMP_NUM_THREADS=1",
                "plain_labels": plain.tolist(), "true_accuracy_plain": float(np.mean(plain == y))})
    return rep


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=100, help="images simulated (and plaintext reference)")
    p.add_argument("--fhe-n", type=int, default=3, help="images executed in real FHE")
    p.add_argument("--bits", type=int, default=4)
    p.add_argument("--round", type=int, default=4)
    p.add_argument("--width", type=int, default=2)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--calib", type=int, default=200)
    p.add_argument("--full-n", type=int, default=10, help="images simulated with the full network")
    p.add_argument("--fhe-timeout", type=float, default=900, help="seconds for key generation + FHE images")
    p.add_argument("--skip-full", action="store_true")
    p.add_argument("--full-fhe", action="store_true")
    p.add_argument("--out", default="peers-concrete.json")
    args = p.parse_args(argv)
    common.write(args.out, run(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
