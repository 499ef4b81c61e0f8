"""Research: attacks on the schemes and the security report (``ric security``). The product path
(``keygen`` / ``encrypt`` / ``classify`` / ``decrypt``) never imports this package.

One module per attack family: :mod:`~ric.security.brute_force`, :mod:`~ric.security.tamper`,
:mod:`~ric.security.leakage`, :mod:`~ric.security.blind`, :mod:`~ric.security.kpa`, :mod:`~ric.security.cloud`;
the exact scheme's randomness tests and distinguisher in :mod:`~ric.security.exact`. The report runs, then
renders: runners :mod:`~ric.security.report` (paper scheme, and ``run_security``) and
:mod:`~ric.security.exact_report` over the shared sections of :mod:`~ric.security.runs` compute the results JSON;
renderers :mod:`~ric.security.render` and :mod:`~ric.security.exact_render` (shared text:
:mod:`~ric.security.text`) turn results into Markdown and import no runner.
"""

from ric.security.blind import blind_attacks, mean_colour_baseline, score
from ric.security.brute_force import (
    as_tensor,
    ball_log10_volume,
    nes_pixel_gradient_norms,
    theorem61_heuristic,
    wrong_key_psnr,
)
from ric.security.cloud import curious_cloud_attack
from ric.security.kpa import KPANet, UNet, known_plaintext_attack
from ric.security.leakage import (
    STATS,
    Images,
    apply_calibration,
    ciphertext_features,
    fit_calibration,
    keyless_estimates,
    leak_correlations,
    noise_band,
    plaintext_stats,
    stat_correlations,
    value_cdf,
)
from ric.security.tamper import file_edit_rejection, file_edits, png_bytes_of, png_chunks, tag_rejection

__all__ = ["STATS", "Images", "KPANet", "UNet", "apply_calibration", "as_tensor", "ball_log10_volume", "blind_attacks",
           "ciphertext_features", "curious_cloud_attack", "file_edit_rejection", "file_edits", "fit_calibration",
           "keyless_estimates", "known_plaintext_attack", "leak_correlations", "mean_colour_baseline",
           "nes_pixel_gradient_norms", "noise_band", "plaintext_stats", "png_bytes_of", "png_chunks", "score",
           "stat_correlations", "tag_rejection", "theorem61_heuristic", "value_cdf", "wrong_key_psnr"]
