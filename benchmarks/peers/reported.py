"""The figures the peers page quotes from published sources (not measured here), as a results file.

    python benchmarks/peers/reported.py        # writes docs/results/peers_reported.{json,md}

``docs/peers.md`` compares ric with image-obfuscation methods by what their authors and their attackers reported.
Those figures are not ours: this script records each one with the source it was read from (an arXiv id, a paper's
table), so the page's numbers have one checked home, like the measured ones in ``docs/results/peers.md``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

REPORTED = [
    {"method": "InstaHide", "source": "Huang et al., ICML 2020, arXiv:2010.02772", "figures": {}},
    {"method": "InstaHide", "source": "the RIC paper, Table 1 (re-implementation)",
     "figures": {"accuracy_mnist_percent": 98.35, "accuracy_cifar10_percent": 91.46,
                 "accuracy_imagenet_percent": 72.90, "plaintext_mnist_percent": 99.75,
                 "plaintext_cifar10_percent": 97.09, "plaintext_imagenet_percent": 77.80}},
    {"method": "InstaHide (attack)", "source": "Carlini et al., IEEE S&P 2021, arXiv:2011.05315; InstaHide Challenge "
     "leaderboard", "figures": {"challenge_encryptions": 5000, "max_ssim": 0.90, "mean_ssim": 0.43}},
    {"method": "Cloak", "source": "Mireshghallah et al., arXiv:2003.12154 (abstract)",
     "figures": {"mutual_information_cut_percent": 85.01, "utility_loss_percent": 1.42}},
    {"method": "Cloak", "source": "the RIC paper, Table 1",
     "figures": {"accuracy_mnist_percent": 85.42, "accuracy_cifar10_percent": 60.58,
                 "accuracy_imagenet_percent": 23.19}},
    {"method": "EtC (attacks)", "source": "Chuman & Kiya, arXiv:2211.02369; Sirichotedumrong & Kiya, arXiv:2010.06198",
     "figures": {}},
    {"method": "AVIH", "source": "Su et al., arXiv:2209.15304", "figures": {}},
    {"method": "AVIH (attacks)", "source": "Jang et al., arXiv:2408.04261; Kashyap, Padhi & Ali, arXiv:2407.06570",
     "figures": {}},
]


def render(rows: list[dict]) -> str:
    lines = ["# Figures quoted from published sources (not measured here)", "",
             "Written by `python benchmarks/peers/reported.py`; `docs/peers.md` quotes them. Measured figures are in "
             "[peers.md](peers.md).", "", "| method | source | figures |", "|---|---|---|"]
    for r in rows:
        figs = ", ".join(f"{k} {v}" for k, v in r["figures"].items()) or "none quoted"
        lines.append(f"| {r['method']} | {r['source']} | {figs} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="docs/results")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "peers_reported.json").write_text(json.dumps({"reported": REPORTED}, indent=1) + "\n")
    (out / "peers_reported.md").write_text(render(REPORTED))


if __name__ == "__main__":
    main()
