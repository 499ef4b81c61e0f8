"""CrypTen (secret-shared MPC) private inference of the zoo's mnist-cnn5: two parties on localhost.

    OMP_NUM_THREADS=1 .peers/crypten/bin/python benchmarks/peers/crypten_run.py --n 100 --out peers-crypten.json

Party 0 is the server (model owner: it loads the zoo's weights and secret-shares them; party 1 builds the same
architecture with random weights, so it never sees them). Party 1 is the client (data owner: it secret-shares
the image and alone receives the logits). Both run in their own process (CrypTen's ``run_multiprocess``, gloo
over localhost), one image at a time, torch on 1 thread each. Measured per image: wall time from sharing the
image to the client holding the logits (end to end; both parties work throughout, so client and server time are
each party's own CPU time), bytes exchanged between the parties (CrypTen's communication stats: both parties' logs added, halved), peak memory of
each party. The network is the zoo's (BatchNorm folded into the convolutions), run in CrypTen's fixed point
(16 fractional bits); ReLU and max pooling are CrypTen's exact comparison protocols, not approximations.
Beaver triples come from CrypTen's default provider (trusted first party, "TFP"): the offline phase a real
two-server deployment needs (a trusted dealer or homomorphic triple generation) is not in these figures.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

SERVER, CLIENT = 0, 1


def _stats() -> dict:
    import crypten.communicator as comm

    return dict(comm.get().get_communication_stats())


def party(n: int) -> dict:
    """One party's run (called in each of the two processes); returns its measurements."""
    import crypten
    import crypten.communicator as comm
    import torch

    torch.set_num_threads(1)
    crypten.config.cfg.communicator.verbose = True  # count rounds and bytes
    rank = comm.get().get_rank()
    net = common.load_cnn5() if rank == SERVER else common.cnn5().eval()
    private = crypten.nn.from_pytorch(net, torch.empty(1, 1, 28, 28))
    private.encrypt(src=SERVER)
    private.eval()
    x = torch.from_numpy(common.to_input(common.images(n)[0])) if rank == CLIENT else torch.empty(n, 1, 28, 28)
    rows = []
    for i in range(-1, n):  # i = -1: warm-up on image 0, not counted
        comm.get().reset_communication_stats()
        t0, c0 = time.perf_counter(), time.process_time()
        xi = crypten.cryptensor(x[max(i, 0):max(i, 0) + 1], src=CLIENT)
        logits = private(xi).get_plain_text(dst=CLIENT)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        st = _stats()
        if i >= 0:
            rows.append({"wall_s": wall, "cpu_s": cpu, "bytes": float(st.get("bytes", 0)),
                         "rounds": float(st.get("rounds", 0)),
                         "label": int(logits.argmax(1)[0]) if rank == CLIENT else -1})
    out = {"rank": rank, "rows": rows, "peak_rss_mb": common.peak_rss_mb()}
    if rank == CLIENT:
        with torch.no_grad():  # the plaintext reference, for the report only (the client has no weights in MPC)
            out["plain_labels"] = common.load_cnn5()(x).argmax(1).tolist()
    return out


def run(n: int) -> dict:
    import crypten
    import numpy as np
    from crypten.mpc import run_multiprocess

    t0 = time.perf_counter()
    res = run_multiprocess(world_size=2)(party)(n)
    total = time.perf_counter() - t0
    by = {r["rank"]: r for r in res}
    srv, cli = by[SERVER]["rows"], by[CLIENT]["rows"]
    labels = [r["label"] for r in cli]
    plain = by[CLIENT]["plain_labels"]
    y = common.images(n)[1]
    # each party logs what it sends and receives: CrypTen's docs say to add both and halve
    bytes_img = [(a["bytes"] + b["bytes"]) / 2 for a, b in zip(srv, cli, strict=True)]
    mean = lambda rows, k: float(np.mean([r[k] for r in rows]))  # noqa: E731
    return {"peer": "crypten", "n": n, "accuracy_vs_plain": float(np.mean(np.array(labels) == np.array(plain))),
            "accuracy_true": float(np.mean(np.array(labels) == y)),
            "client_s": mean(cli, "cpu_s"), "server_s": mean(srv, "cpu_s"),
            "end_to_end_s": float(np.mean([max(a["wall_s"], b["wall_s"]) for a, b in zip(srv, cli, strict=True)])),
            "bytes_per_image": float(np.mean(bytes_img)), "bytes_logged_client": mean(cli, "bytes"),
            "bytes_logged_server": mean(srv, "bytes"), "rounds_per_image": mean(cli, "rounds"),
            "setup_bytes": None, "peak_rss_mb": by[SERVER]["peak_rss_mb"] + by[CLIENT]["peak_rss_mb"],
            "peak_rss_mb_per_party": [by[SERVER]["peak_rss_mb"], by[CLIENT]["peak_rss_mb"]],
            "wall_total_s": total, "provider": str(crypten.config.cfg.mpc.provider),
            "precision_bits": int(crypten.config.cfg.encoder.precision_bits),
            "model_changed": ("no: same weights, BatchNorm folded, fixed point with "
                              f"{int(crypten.config.cfg.encoder.precision_bits)} fractional bits; exact ReLU/max pool"),
            "server_learns": "nothing (secret shares only)",
            "recoverable": "no (the server keeps no copy; its shares alone reveal nothing)",
            "versions": common.versions("crypten", "torch", "numpy", "onnx"),
            "machine": _machine(), "labels": labels, "plain_labels": plain}


def _machine() -> str:
    import platform

    import torch

    return (f"{platform.machine()} cpu, 1 thread per party (2 parties), torch {torch.__version__}, "
            f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '')}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=100)
    p.add_argument("--out", default="peers-crypten.json")
    args = p.parse_args(argv)
    common.write(args.out, run(args.n))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
