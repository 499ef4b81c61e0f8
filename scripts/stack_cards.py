"""Write each shipped classifier's robustness set and its measured stack agreement into its model card.

    python scripts/stack_cards.py [--results docs/results/stacks.json]

For every classifier that ``benchmarks/stacks.py`` measured with the exact scheme, the card's section
"## Serving stacks" (added, or replaced when it is there) names the robustness set the exact scheme's default uses
for it and, per measured set of images, the lowest agreement over the stacks with and without the set, the images
the product refused and the encrypt seconds per image: all read from the results file, nothing typed in.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ric.zoo import bundles
from ric.zoo.bundles import atomic_write_bytes

HEADING = "## Serving stacks"


def _lowest(agreement: dict) -> str:
    name, v = min(agreement.items(), key=lambda kv: kv[1])
    return f"{100 * v:.1f} % (lowest: `{name}`)" if v < 1 else f"{100 * v:.1f} % on every stack"


def section(name: str, rep: dict) -> str | None:
    rows = [(k, r) for k, r in rep["sets"].items() if "robust" in r and r["classifier"].split("@")[0] == name]
    if not rows:
        return None
    lines = [HEADING, "",
             f"The exact scheme's default robustness set for this classifier is **`{rep['robust_set_name']}`** "
             f"({rep['robust_set']}): `ric encrypt` holds the ciphertext's margin over it and checks every "
             f"ciphertext on the {len(rep['stacks'])} named stacks of `ric classify --stack` that are installed "
             f"(`{rep['command']}`; {rep['machine']}):", ""]
    for k, r in rows:
        rb, td = r["robust"], r["today"]
        lines.append(f"- {k} ({r['images']} images; {r['data']}): with the set {_lowest(rb['agreement'])}, "
                     f"{len(rb['failed'])} refused, {rb['encrypt_s_per_image']:.2f} s per image; without it "
                     f"{_lowest(td['agreement'])}, {td['encrypt_s_per_image']:.2f} s per image.")
    lines += ["", "Stacks outside the set (other kernels, larger or random crops, re-encoded ciphertexts) are not "
              "covered; see the security overview."]
    return "\n".join(lines) + "\n"


def with_section(card: str, block: str) -> str:
    head, sep, rest = card.partition(HEADING)
    if not sep:
        return card.rstrip("\n") + "\n\n" + block
    tail = rest.split("\n## ", 1)
    return head + block + ("\n## " + tail[1] if len(tail) > 1 else "")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", default="docs/results/stacks.json")
    a = p.parse_args()
    rep = json.loads(Path(a.results).read_text())
    names = sorted({r["classifier"].split("@")[0] for r in rep["sets"].values() if "robust" in r})
    for name in names:
        folder = bundles.resolve(name, kind="classifier")
        card_path = folder / "MODEL_CARD.md"
        block = section(name, rep)
        atomic_write_bytes(card_path, with_section(card_path.read_text(), block).encode())
        print(f"wrote {card_path}")


if __name__ == "__main__":
    main()
