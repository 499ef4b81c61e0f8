"""Draw the two schemes as SVG diagrams for the documentation site.

Writes ``docs/assets/scheme-exact.svg`` and ``docs/assets/scheme-paper.svg``: plain SVG written by hand (boxes,
arrows, text), so the output is small, deterministic and needs no plotting library. Rerun after changing a
scheme's data flow and commit the SVGs::

    python scripts/make_scheme_figure.py [--out docs/assets]
"""

from __future__ import annotations

import argparse
from html import escape
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# fill, stroke per role
STYLE = {
    "data": ("#e8f0fe", "#3b6fd8"),       # images and ciphertexts
    "key": ("#fff4d6", "#c48a00"),        # anything derived from the secret key
    "clf": ("#e4f5e6", "#2e8b3a"),        # the public classifier and what uses it
    "op": ("#f3f3f3", "#666666"),         # plain operations
    "out": ("#fde8e8", "#c0392b"),        # what leaves the owner / comes back
}

HEAD = """<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{w}" height="{h}" \
font-family="Helvetica, Arial, sans-serif" font-size="13">
<title>{title}</title>
<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" \
orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#444"/></marker></defs>
<rect x="0" y="0" width="{w}" height="{h}" fill="#ffffff"/>
"""


class Svg:
    def __init__(self, w: int, h: int, title: str):
        self.w, self.h, self.title = w, h, title
        self.parts: list[str] = []

    def box(self, x: float, y: float, w: float, h: float, lines: list[str], role: str = "op",
            bold_first: bool = False) -> tuple[float, float, float, float]:
        fill, stroke = STYLE[role]
        self.parts.append(f'<rect x="{x}" y="{y}" width="{w}" height="{h}" rx="6" fill="{fill}" '
                          f'stroke="{stroke}" stroke-width="1.5"/>')
        n = len(lines)
        for i, line in enumerate(lines):
            ty = y + h / 2 + (i - (n - 1) / 2) * 16 + 4.5
            weight = ' font-weight="bold"' if bold_first and i == 0 else ""
            self.parts.append(f'<text x="{x + w / 2}" y="{ty:.1f}" text-anchor="middle"{weight}>'
                              f"{escape(line)}</text>")
        return (x, y, w, h)

    def arrow(self, points: list[tuple[float, float]], label: str = "", at: int = 0, dx: float = 0,
              dy: float = -6, anchor: str = "middle", dashed: bool = False) -> None:
        d = " ".join(f"{'M' if i == 0 else 'L'}{px:.1f},{py:.1f}" for i, (px, py) in enumerate(points))
        dash = ' stroke-dasharray="5,4"' if dashed else ""
        self.parts.append(f'<path d="{d}" fill="none" stroke="#444" stroke-width="1.5"{dash} '
                          f'marker-end="url(#arrow)"/>')
        if label:
            (x1, y1), (x2, y2) = points[at], points[at + 1]
            self.text((x1 + x2) / 2 + dx, (y1 + y2) / 2 + dy, label, anchor=anchor, size=12, italic=True)

    def text(self, x: float, y: float, s: str, anchor: str = "start", size: int = 13, bold: bool = False,
             italic: bool = False, color: str = "#222") -> None:
        style = (' font-weight="bold"' if bold else "") + (' font-style="italic"' if italic else "")
        self.parts.append(f'<text x="{x}" y="{y}" text-anchor="{anchor}" font-size="{size}" fill="{color}"'
                          f"{style}>{escape(s)}</text>")

    def band(self, y: float, h: float, label: str) -> None:
        self.parts.append(f'<rect x="8" y="{y}" width="{self.w - 16}" height="{h}" rx="8" fill="none" '
                          f'stroke="#bbbbbb" stroke-dasharray="6,4"/>')
        self.text(18, y + 18, label, bold=True, color="#555")

    def render(self) -> str:
        return HEAD.format(w=self.w, h=self.h, title=escape(self.title)) + "\n".join(self.parts) + "\n</svg>\n"


def right(b):
    return (b[0] + b[2], b[1] + b[3] / 2)


def left(b):
    return (b[0], b[1] + b[3] / 2)


def top(b, f=0.5):
    return (b[0] + b[2] * f, b[1])


def bottom(b, f=0.5):
    return (b[0] + b[2] * f, b[1] + b[3])


def exact_figure() -> str:
    s = Svg(980, 470, "The exact scheme: c = 2^b·q + m")
    s.band(10, 300, "data owner (holds the key): encrypt")
    x = s.box(30, 50, 120, 46, ["plaintext x", "8-bit, any size"], "data", True)
    comp = s.box(190, 50, 150, 46, ["lossless compress", "JPEG XL or WebP"])
    seal = s.box(380, 50, 210, 46, ["seal: ChaCha20-Poly1305", "HKDF(key, nonce), padded"], "key")
    m = s.box(630, 50, 150, 46, ["m: the b low bits", "of every sub-pixel"], "key", True)
    s.arrow([right(x), left(comp)])
    s.arrow([right(comp), left(seal)])
    s.arrow([right(seal), left(m)])

    clf = s.box(22, 140, 136, 46, ["classifier C", "(public, unmodified)"], "clf", True)
    s.arrow([bottom(x), top(clf)], "t = C(x)", dx=8, dy=4, anchor="start")
    q0 = s.box(190, 230, 150, 46, ["keyed random digits", "HKDF(key, nonce)"], "key")
    att = s.box(380, 130, 210, 66, ["targeted margin attack on C", "moves q until C(c) = t", "with a lead of κ logits"],
                "clf")
    q = s.box(630, 140, 150, 46, ["q: the 8 − b", "high bits"], "clf", True)
    s.arrow([right(clf), left(att)], "target t", dy=-6)
    s.arrow([right(q0), (360, 253), (360, 185), (380, 185)])
    s.arrow([bottom(m, 0.3), (675, 113), (485, 113), top(att, 0.5)], "m fixed", at=1, dy=-5)
    s.arrow([right(att), left(q)])
    c = s.box(820, 100, 140, 56, ["ciphertext c", "= 2^b·q + m", "(8-bit PNG)"], "out", True)
    s.arrow([right(m), (800, 73), (800, 118), (820, 118)])
    s.arrow([right(q), (800, 163), (800, 138), (820, 138)])

    s.band(320, 140, "cloud (no key)  ·  key holder")
    cloud = s.box(620, 360, 150, 46, ["C(c) = t", "label only"], "clf", True)
    dec = s.box(160, 360, 390, 46, ["m = c mod 2^b  →  open with the key  →  decompress",
                                    "no classifier, nothing to regenerate"], "key")
    xr = s.box(30, 360, 100, 46, ["x, bit-exact"], "data", True)
    s.arrow([bottom(c, 0.7), (918, 383), right(cloud)])
    s.arrow([bottom(c, 0.3), (862, 430), (355, 430), bottom(dec)])
    s.arrow([left(dec), right(xr)])
    s.text(30, 450, "Without the key, m is AEAD output and q depends on x only through t: a ciphertext can be "
                    "simulated from the label alone.", size=12, color="#444")
    return s.render()


def paper_figure() -> str:
    s = Svg(980, 520, "The paper scheme: noise-like adversarial example + learned codec + SRL")
    s.band(10, 320, "data owner (holds the key): encrypt")
    clf = s.box(30, 70, 130, 40, ["classifier C"], "clf", True)
    key = s.box(200, 67, 130, 46, ["key + nonce", "(fresh per image)"], "key", True)
    rni = s.box(350, 67, 150, 46, ["RNI z₀", "ChaCha20 keystream"], "key")
    nae = s.box(530, 59, 230, 62, ["NAE z: C&W margin attack on C", "from z₀, target t = C(x)",
                                   "(Adam, tanh space)"], "clf")
    s.arrow([right(key), left(rni)])
    s.arrow([right(rni), left(nae)])
    s.arrow([top(clf), (95, 42), (645, 42), top(nae)], "t = C(x)", at=1, dy=-5)

    x = s.box(30, 190, 130, 46, ["plaintext x", "classifier's size"], "data", True)
    s.arrow([top(x), bottom(clf)])
    f = s.box(200, 190, 80, 46, ["F(x)"], "op", True)
    e = s.box(320, 190, 150, 46, ["E(F(x) ‖ z)", "learned encoder"], "op", True)
    scr = s.box(510, 190, 130, 46, ["scramble", "keyed permutation"], "key")
    blend = s.box(680, 180, 150, 66, ["c̃ = (1−α)·E + α·z", "α = 0.8 (SRL)", "round to 8 bit"], "op")
    c = s.box(860, 186, 100, 56, ["ciphertext", "c (PNG)"], "out", True)
    s.arrow([right(x), left(f)])
    s.arrow([right(f), left(e)])
    s.arrow([right(e), left(scr)])
    s.arrow([right(scr), left(blend)])
    s.arrow([right(blend), left(c)])
    s.arrow([bottom(nae, 0.1), (553, 155), (395, 155), top(e, 0.5)], "z", at=1, dy=-5)
    s.arrow([bottom(nae, 0.85), top(blend, 0.5)], "z", dx=8, dy=4, anchor="start")

    s.band(340, 170, "cloud (no key)  ·  key holder")
    cloud = s.box(800, 380, 150, 46, ["C(c) = t", "label only"], "clf", True)
    s.arrow([bottom(c, 0.75), top(cloud, 0.9)])
    regen = s.box(560, 380, 200, 46, ["regenerate z from the key", "(same attack, same target)"], "key")
    r = s.box(330, 380, 200, 46, ["r = (c − α·z)/(1−α)", "then unscramble"], "op")
    d = s.box(180, 380, 110, 46, ["D(r)", "learned decoder"], "op", True)
    xr = s.box(30, 380, 110, 46, ["x̂ ≈ x"], "data", True)
    s.arrow([bottom(c, 0.1), (870, 356), (780, 356), (780, 460), (660, 460), bottom(regen)], "c, t from the file",
            at=3, dy=14)
    s.arrow([left(regen), right(r)])
    s.arrow([left(r), right(d)])
    s.arrow([left(d), right(xr)])
    s.text(30, 498, "Recovery is approximate, needs the same model, classifier and kind of device; the blend "
                    "leaks each image's brightness and value histogram.", size=12, color="#444")
    return s.render()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs/assets")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, svg in (("scheme-exact.svg", exact_figure()), ("scheme-paper.svg", paper_figure())):
        (args.out / name).write_text(svg, encoding="utf-8")
        print(f"wrote {args.out / name} ({len(svg)} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
