"""Write the measured numbers of ``docs/results/paper_tables.json`` into the model cards of the trained codecs.

    python scripts/update_cards.py [--tables docs/results/paper_tables.json] svhn-ric-v3 faces-ric-v3

For each named bundle (trained by ``ric train codec``) the card is re-rendered from its config (with the
recipe's current description) and gets a "Measured" block: its own row of Tables 1-2 (agreement, PSNR/SSIM,
identity floor and LSB-4 on the same images) and its row of Table 3 (the codec on every other set).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ric.training.codec import codec_card
from ric.training.recipes import CODEC_RECIPES
from ric.zoo import bundles
from ric.zoo.bundles import atomic_write_bytes


def measured_block(name: str, rep: dict) -> str:
    lines = [f"## Measured (`{rep['command']}`; {rep['machine']})", ""]
    for r in rep["datasets"].values():
        if r.get("model") != name:
            continue
        lines += [f"- {r['data']}: label agreement {100 * r['agreement_first_try']:.2f} % first try, "
                  f"**{100 * r['agreement']:.2f} %** after retries ({r['failed_after_retries']} failed); "
                  f"recovery **PSNR {r['psnr_db']:.2f} dB** (min {r['psnr_min_db']:.2f}), SSIM {r['ssim']:.4f}; "
                  f"on the same images and NAEs the identity floor is {r['identity_psnr_db']:.2f} dB and LSB-4 "
                  f"{r['lsb4_psnr_db']:.2f} dB; ADP {100 * r['adp']:.2f} pp."]
    row = rep.get("cross", {}).get(name)
    if row:
        cells = ", ".join(f"{d} {c['psnr_db']:.2f} dB ({100 * c['agreement']:.2f} % agreement)"
                          for d, c in row["cells"].items() if "psnr_db" in c)
        lines += [f"- The same codec on each set (Table 3, the set's own classifier and NAEs): {cells}."]
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="+")
    p.add_argument("--tables", default="docs/results/paper_tables.json")
    a = p.parse_args()
    rep = json.loads(Path(a.tables).read_text())
    for name in a.models:
        folder = bundles.resolve(name, kind="ric")
        cfg = bundles.read_config(folder)
        if name in CODEC_RECIPES:
            cfg["training"]["description"] = CODEC_RECIPES[name].description
            atomic_write_bytes(folder / "config.json", (json.dumps(cfg, indent=2) + "\n").encode())
        card = codec_card(cfg) + "\n" + measured_block(name, rep)
        atomic_write_bytes(folder / "MODEL_CARD.md", card.encode())
        print(f"wrote {folder / 'MODEL_CARD.md'}")


if __name__ == "__main__":
    main()
