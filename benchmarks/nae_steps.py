"""How many NAE steps does a model need for C(c) = C(x) on the first try?

    python benchmarks/nae_steps.py --model mnist-ric --steps 100 200 300 --n 200

For each step count the model's attack runs with that many Adam steps (everything else as in its
config) on the first ``--n`` test images of the model's dataset, one fresh random key and fresh nonces per
run (no retries). Reported: the share of NAEs the classifier labels as the target (C(z) = t), the share
of ciphertexts it labels as the target (C(c) = t, what encryption checks), and the NAE time per image
on this CPU. Writes docs/results/nae_steps/<model>.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from ric.datasets import load_dataset
from ric.eval.measure import DATASET_MODELS, images_of, machine
from ric.keys import SecretKey, new_nonce
from ric.schemes.paper import RIC


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = " ".join(["python benchmarks/nae_steps.py", *argv])
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="mnist-ric")
    p.add_argument("--steps", type=int, nargs="+", default=[100, 200, 300])
    p.add_argument("--n", type=int, default=200, help="test images (the first n of the split)")
    p.add_argument("--dataset", help="default: the dataset the model is evaluated on in the paper tables")
    p.add_argument("--data-root")
    p.add_argument("--out", default="docs/results/nae_steps")
    a = p.parse_args(argv)
    base = RIC.load(a.model)
    dataset = a.dataset or {m: d for d, m in DATASET_MODELS.items()}.get(a.model)
    if dataset is None:
        p.error(f"--dataset is needed for model {a.model}")
    ds = load_dataset(dataset, "test", a.data_root)
    x = images_of(base, ds.images[:a.n])
    shape = tuple(x.shape[1:])
    t = base.predict(x)
    key = SecretKey.generate()
    rep = {"command": command, "machine": machine(), "model": a.model,
           "data": f"{dataset} test split, first {len(x)} images", "attack": base.config["attack"], "runs": []}
    for steps in a.steps:
        ric = RIC.load(a.model, attack={**base.config["attack"], "steps": steps})
        nonces = [new_nonce() for _ in range(len(x))]
        t0 = time.perf_counter()
        z = ric.nae(key, nonces, t, shape)
        sec = time.perf_counter() - t0
        c = ric.encode_with(x, z, ric.perms(key, nonces, shape))
        ok_c = ric.predict(c) == t
        r = {"steps": steps, "nae_success": float((ric.predict(z) == t).float().mean()),
             "first_try_agreement": float(ok_c.float().mean()), "failed": torch.nonzero(~ok_c).flatten().tolist(),
             "nae_ms_per_image": 1000 * sec / len(x)}
        print(json.dumps(r), flush=True)
        rep["runs"].append(r)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{a.model}.json").write_text(json.dumps(rep, indent=1) + "\n")
    lines = [f"# NAE steps vs first-try label agreement: `{a.model}`", "", f"Command: `{rep['command']}`  ",
             f"Machine: {rep['machine']}  ", f"Data: {rep['data']}; one random key, fresh nonces, no retries; "
             f"other attack settings as in the model's config: {rep['attack']}.", "",
             "| NAE steps | C(z) = t | C(c) = t (first try) | failed images | NAE ms / image |",
             "|---|---|---|---|---|"]
    for r in rep["runs"]:
        lines.append(f"| {r['steps']} | {100 * r['nae_success']:.2f} % | {100 * r['first_try_agreement']:.2f} % | "
                     f"{len(r['failed'])} | {r['nae_ms_per_image']:.0f} |")
    (out / f"{a.model}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
