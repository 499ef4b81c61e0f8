"""The exact scheme's sections of the security report, in Markdown, from its results (the JSON that
:func:`ric.security.exact_report.evaluate_exact_model` returns). Imports no runner."""

from __future__ import annotations

from ric.security import STATS
from ric.security.blind import MEAN_COLOUR
from ric.security.exact import TEST_NAMES
from ric.security.text import PREFIX, STAT_NAMES, blind_name, keyless_best, kpa_setup, num
from ric.zoo import bundles


def _cal(k: dict, s: str) -> float:
    """The calibrated keyless correlation (the analytic one, written for the blend, where not calibrated)."""
    return k.get("calibrated", k["analytic"]).get(s, float("nan"))


def _p(d: dict) -> str:
    """The permutation p-value; at its floor, the floor and how many relabellings scored less."""
    n = d.get("permutations", 0)
    if n and d["p_value"] <= 1 / (1 + n) + 1e-12:
        return f"≤ {1 / (1 + n):.3f} (all {n} relabellings scored less)"
    return f"{d['p_value']:.3f}"


def _acc(d: dict, with_p: bool = True) -> str:
    lo, hi = d["band_95"]
    return (f"{100 * d['accuracy']:.1f} % (chance: {100 * d['chance']:.1f} %, 95 % band {100 * lo:.1f}–"
            f"{100 * hi:.1f} %" + (f", p {'= ' if d['p_value'] > 0.01 else ''}{_p(d)})" if with_p else ")"))


def _paper_of(r: dict, paper: dict) -> tuple[str, dict] | None:
    m = bundles.DATASET_MODELS.get(r["dataset"])
    return (m, paper[m]) if m in paper and "keyless" in paper[m] else None


def exact_summary(m: str, r: dict, paper: dict) -> list[str]:
    """One exact model's measured lines for the overview."""
    k, sim, rt = r["keyless"], r["simulation"], r["randomness"]
    kb = max(r["kpa"], key=lambda n: r["kpa"][n]["ssim"])
    kv, ref = r["kpa"][kb], r["blind"][MEAN_COLOUR]
    best, bch = r["blind"][r["blind_best"]], r["blind_chance"][r["blind_best"]]
    po = _paper_of(r, paper)
    vs = f" (scheme `paper`, `{po[0]}`: " + ", ".join(
        f"{num(max(po[1]['keyless']['analytic'][s], po[1]['keyless'].get('calibrated', {}).get(s, -1)))}"
        for s in STATS) + f", N = {po[1]['keyless']['n']})" if po else ""
    return [f"**`{m}`** ({r['dataset']}, b = {r['bits']}, {r['shape'][0]}×{r['shape'][1]}×{r['shape'][2]}; "
            f"{k['n']} attacked test images; bit-exact recovery with the right key: {100 * r['bit_exact']:.0f} %)", "",
            "- Keyless statistics, calibrated on the attacker's own pairs (r with the plaintext's "
            f"{', '.join(STAT_NAMES[s] for s in STATS)}): "
            + ", ".join(num(_cal(k, s)) for s in STATS) + f"; noise level ±{k['noise_band_95']:.3f}" + vs
            + "; the label alone gives " + ", ".join(num(k["label_reference"][s]) for s in STATS) + ".",
            f"- Simulation check: a logistic-regression distinguisher on {sim['distinguisher_simulated']['features']} "
            f"keyless features tells real ciphertexts from ciphertexts made from the label alone with "
            f"{_acc(sim['distinguisher_simulated'])}, and from ciphertexts of other images with the same labels with "
            f"{_acc(sim['distinguisher_other'])}; the same distinguisher catches a broken variant (the plaintext's own "
            f"low bits in place of the sealed payload) with {100 * sim['distinguisher_control']['accuracy']:.1f} %.",
            f"- Randomness of the sealed low digits ({rt['ciphertexts']} ciphertexts, {rt['bits_per_ciphertext']:,} "
            "bits each): p < 0.01 for " + ", ".join(
                f"{100 * rt[t]['share_below_0.01']:.2f} % ({TEST_NAMES[t]})" for t in TEST_NAMES)
            + " (≈ 1 % expected).",
            f"- Blind filters (best, with the oracle gain/offset fit): SSIM {_vs(best, bch, 'ssim_fit')}; "
            f"mean-colour oracle {ref['ssim_fit']:.3f}.",
            f"- Known plaintext (N = {kb} pairs): SSIM {_vs(kv, kv['chance'], 'ssim')}; mean-colour oracle "
            f"{ref['ssim']:.3f}, the training pairs' mean image {r['train_mean_image']['ssim']:.3f}; the classifier "
            f"labels {100 * kv['classifier_accuracy_on_reconstructions']:.1f} % of the reconstructions correctly "
            f"(always answering the most common class: {100 * r['majority_class_share']:.1f} %).",
            f"- Curious cloud: SSIM {_vs(r['cloud'], r['cloud']['chance'], 'ssim')}; the classifier gives its images "
            f"the ciphertext's label {100 * r['cloud']['label_t_agreement']:.1f} % of the time.", ""]


def _vs(v: dict, chance: dict, key: str, margin: float = 0.02) -> str:
    """``v[key]`` against the plaintexts, another image with the same label and a shuffled pairing, and a verdict:
    chance level when within ``margin`` of the same-label pairing (what the label alone allows)."""
    a, same, sh = v[key], chance["same_label"][key], chance["shuffled"][key]
    verdict = ("chance level" if a <= same + margin else
               f"**{a - same:.3f} above the same-label pairing: more than the label leaks**")
    return (f"{a:.3f} against the plaintexts, {same:.3f} against another image with the same label, {sh:.3f} against "
            f"a shuffled pairing ({verdict})")


ARGUMENT = """A ciphertext is c = 2^b·q + m, one digit pair per sub-pixel.

- **m** (the b low bits) is `b` (3 bits in sub-pixel 0), a public header (magic `RX`, version, key id, nonce),
  then ChaCha20-Poly1305 output under HKDF(key, "ric/exact/aead" ‖ nonce) of the losslessly compressed plaintext,
  length-prefixed and zero-padded to the full capacity, so its length does not depend on the image either.
  Without the key, AEAD output is indistinguishable from random bits.
- **q** (the 8 − b high digits) starts from keyed random digits (HKDF(key, "ric/exact/q" ‖ nonce), independent of
  x) and is moved by a margin attack whose only inputs are the public classifier, the target t = C(x) and m. So q
  depends on x only through t (and m and the nonce's randomness).
- Hence a simulator that knows only t, the size, b and the key id, writing random bytes in place of the sealed
  payload and starting from its own random digits (`ric.security.exact.simulate_ciphertexts`), outputs ciphertexts
  distributed like the real ones, up to the security of ChaCha20-Poly1305 and HKDF-SHA256. Whatever an attacker
  computes from c it could compute from t alone: nothing about x beyond its label and size leaks.
- **What still leaks**, by design: the label t (the cloud reads it, and anything that correlates with the label,
  e.g. a class's typical brightness: the "label alone" rows), the image size, b, the key id (which ciphertexts
  share a key), the number of images, and that the file is a RIC ciphertext (the public header in the pixels; the
  PNG's text chunks repeat scheme, b, classifier, nonce, target and key id). An image that does not fit the
  capacity is refused at encryption, which tells the encrypting user (not the cloud) that it compresses poorly.

The measurements below test the argument on real data; they cannot prove it (a proof is the reduction above)."""


def exact_overview(exact: dict, paper: dict) -> list[str]:
    """The exact scheme's part at the top of the report: the argument, then each model's measured lines."""
    lines = ["## Scheme `exact` (the default): the ciphertext reveals the label and the size", "", ARGUMENT, "",
             "**Measured** (details in the `exact:` sections at the end; the paper scheme's numbers follow "
             "after this part):", ""]
    for m, r in exact.items():
        lines += exact_summary(m, r, paper)
    return lines


def _keyless_table(r: dict, paper: dict) -> str:
    k, sim = r["keyless"], r["simulation"]
    po = _paper_of(r, paper)
    kb = max(r["kpa"], key=lambda n: r["kpa"][n]["ssim"])
    head = r["kpa"][kb].get("stats_head", {})
    pcol = f" paper `{po[0]}` (N = {po[1]['keyless']['n']}) |" if po else ""
    rows = [f"| {STAT_NAMES[s]} | {num(k['analytic'][s])} | {num(_cal(k, s))} | {num(_cal(sim['keyless_other'], s))} | "
            f"{num(_cal(sim['keyless_simulated'], s))} | {num(k['label_reference'][s])} | {num(head.get(s))} |"
            + (f" {num(keyless_best(po[1]['keyless'], s))} |" if po else "") for s in STATS]
    return (f"| statistic | analytic r | calibrated r | other images, same labels | simulated from the label | "
            f"label alone | KPA statistics head (N = {kb}) |{pcol}\n|---|---|---|---|---|---|---|"
            + ("---|" if po else "") + "\n" + "\n".join(rows))


def _randomness_table(rt: dict) -> str:
    rows = []
    for t, name in TEST_NAMES.items():
        d = rt[t]
        rows.append(f"| {name} | {d['n']} | {100 * d['share_below_0.01']:.2f} % ({100 * d['band_95'][0]:.2f}–"
                    f"{100 * d['band_95'][1]:.2f} %) | {d['uniformity_p']:.3f} | "
                    f"{' '.join(map(str, d['histogram']))} | {d['min']:.2g} / {d['median']:.2f} |")
    return ("| test | ciphertexts | p < 0.01 (95 % band for random data) | uniformity of the p-values (NIST, "
            "10 bins) | p-value histogram, 10 bins from 0 | min / median p |\n|---|---|---|---|---|---|\n"
            + "\n".join(rows))


def _attack_tables(r: dict) -> tuple[str, str]:
    ch = r["blind_chance"]

    def cells(v, c, key):
        return f"{v[key]:.3f} | {c['same_label'][key]:.3f} | {c['shuffled'][key]:.3f}"

    blind = "\n".join(f"| {blind_name(n)} | {cells(v, ch[n], 'ssim_fit')} | {v['psnr_fit_db']:.2f} |"
                      for n, v in r["blind"].items() if n in ch)
    ref = r["blind"][MEAN_COLOUR]
    blind += f"\n| {MEAN_COLOUR} | {ref['ssim_fit']:.3f} | — | — | {ref['psnr_fit_db']:.2f} |"
    kpa = "\n".join(f"| {n} | {cells(v, v['chance'], 'ssim')} | {v['psnr_db']:.2f} | "
                    f"{100 * v['classifier_accuracy_on_reconstructions']:.1f} % | {v['epochs']} |"
                    for n, v in r["kpa"].items())
    tm = r["train_mean_image"]
    kpa += (f"\n| mean-colour oracle | {ref['ssim']:.3f} | — | — | {ref['psnr_db']:.2f} | — | — |"
            f"\n| the training pairs' mean image | {tm['ssim']:.3f} | — | — | {tm['psnr_db']:.2f} | — | — |")
    return blind, kpa


def _distinguisher_rows(sim: dict) -> str:
    return "\n".join(f"| {name} | {sim[key]['n']} | {_acc(sim[key], False)} | {_p(sim[key])} |" for name, key in (
        ("real vs other images with the same labels", "distinguisher_other"),
        ("real vs simulated from the label alone", "distinguisher_simulated"),
        ("control: real vs the plaintext's own low bits in place of the payload", "distinguisher_control")))


def exact_section(r: dict, paper: dict, figs: str = "security") -> str:
    """The detailed section of one exact model."""
    m, k, sim, rt, cl = r["model"], r["keyless"], r["simulation"], r["randomness"], r["cloud"]
    tag = f"{figs}/{m[len(PREFIX):]}-exact"
    blind, kpa = _attack_tables(r)
    return f"""## `{m}` ({r['dataset']}, scheme `exact`, b = {r['bits']})

Data: {r['data']}. Classifier `{r['classifier']}`; bit-exact recovery with the right key:
{100 * r['bit_exact']:.0f} % of the {k['n']} attacked ciphertexts; classifier accuracy on the plaintexts
{100 * r['plaintext_accuracy']:.1f} % (the label the ciphertexts carry); {r['seconds'] / 60:.1f} min.

### E0. Keyless statistics
Pearson r of each plaintext statistic with its estimate from the ciphertext alone, over {k['n']} test images;
|r| ≤ {k['noise_band_95']:.3f} is noise level. *Analytic*: the paper scheme's estimator (written for its blend,
α = 0.8). *Calibrated*: the ridge regression fitted on {k.get('fit_pairs', 0)} public images the attacker
encrypted under a key of its own. The next two columns apply the calibrated estimator to ciphertexts of *other*
images with the same labels ({sim['other_matched']} matched, under the victim's key) and to ciphertexts simulated
from the labels alone, against the same plaintexts: the real ciphertexts should do no better. *Label alone*: each
image's statistic predicted by its label's mean over the attacker's images (what the scheme reveals by design). The
last column is the paper scheme's keyless estimator (the better of its two forms) on the same data set.

{_keyless_table(r, paper)}

### E1. Simulation check
A logistic regression (ridge 1) on {sim['distinguisher_simulated']['features']} keyless features per ciphertext (the
keyless estimator's features, the histogram of the high digits, per-channel means and standard deviations of both
digits, neighbouring high-digit differences) tries to tell two sets of equal size apart, 5-fold cross-validated
with each label's ciphertexts in one fold (the high digits carry the label, so the features cluster by label).
Chance is measured, not assumed: the same procedure on {sim['distinguisher_simulated'].get('permutations', 0)}
relabellings that swap set membership within each label gives the band and the one-sided p-value. The simulated
ciphertexts carry their labels ({100 * sim['simulated_hit']:.0f} % hit with the scheme's margin). The control shows
that the distinguisher has power.

| sets | ciphertexts | accuracy (chance from relabellings) | p |
|---|---|---|---|
{_distinguisher_rows(sim)}

Rows: plaintext; its ciphertext; the ciphertext of another image with the same label; a ciphertext simulated from
the label alone. ![simulation]({tag}_simulation.png)

### E2. Randomness of the sealed low digits
The low digits of every ciphertext after sub-pixel 0 and the public header ({rt['digits_per_ciphertext']:,} digits,
{rt['bits_per_ciphertext']:,} bits per ciphertext): chi-square uniformity of the b-bit digits ({rt['chi_square_p']}),
NIST SP 800-22 frequency (monobit) and runs tests on the bit stream, one p-value per ciphertext and test. For
random data about 1 % of the p-values fall below 0.01, and NIST accepts the p-values as uniform when the
uniformity p-value is at least 0.0001.

{_randomness_table(rt)}

![p-values]({tag}_pvalues.png)

### E3. Blind filters
SSIM and PSNR with the oracle gain/offset fit, against the plaintexts; SSIM also against another image with the
same label and against a shuffled pairing of the test images (chance).

| filter | SSIM fit | SSIM fit, same label | SSIM fit, shuffled | PSNR fit |
|---|---|---|---|---|
{blind}

Rows: plaintext, ciphertext, best filter, same with the oracle fit. ![blind]({tag}_blind_best.png)

### E4. Known-plaintext network (N pairs under the victim's key)
{kpa_setup(r)}

| pairs N | SSIM | SSIM, same label | SSIM, shuffled | PSNR | classifier accuracy on reconstructions | epochs |
|---|---|---|---|---|---|---|
{kpa}

Always answering the most common class: {100 * r['majority_class_share']:.1f} %. Rows: plaintext, ciphertext,
reconstructions. ![kpa]({tag}_kpa.png)

### E5. Curious cloud
Trained on {cl['ciphertexts']} ciphertexts and the classifier only ({cl['epochs']} epochs, generator at
{cl['size']}×{cl['size']}): SSIM {_vs(cl, cl['chance'], 'ssim')}; PSNR {cl['psnr_db']:.2f} dB. The classifier gives
the generated images the ciphertext's label {100 * cl['label_t_agreement']:.1f} % of the time and the true label
{100 * cl['classifier_accuracy_on_reconstructions']:.1f} %. Rows: plaintext, ciphertext, generated.
![cloud]({tag}_cloud.png)
"""
