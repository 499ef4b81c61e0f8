"""Encryption schemes behind one interface (:class:`ric.schemes.base.Scheme`).

* ``exact`` (default): bit-exact recovery; the ciphertext reveals the label and the size only.
* ``paper``: the paper's noise-like adversarial example + learned codec + symmetric residual blend.

:func:`load_scheme` picks and loads one by name and options; the jobs (:mod:`ric.jobs`) know schemes only
through :class:`~ric.schemes.base.Scheme` and the registry :data:`SCHEMES`.
"""

from ric.errors import InputError
from ric.schemes import exact, paper  # noqa: F401  (registers both in ric.schemes.base.SCHEMES)
from ric.schemes.base import (
    DEFAULT_SCHEME,
    SCHEMES,
    EncryptResult,
    Scheme,
    SchemeOptions,
    SealedFile,
    register_scheme,
    scheme_class,
)
from ric.schemes.exact import ExactScheme
from ric.schemes.paper import PaperScheme


def pick_scheme(name: str | None, opts: SchemeOptions) -> type:
    """The scheme class a job runs: ``name``, else the one an option implies (a paper ``model``), else
    :data:`DEFAULT_SCHEME`. An option that another scheme owns is refused, naming its owner."""
    given = opts.given()
    if name is None:
        name = next((c.name for c in SCHEMES.values() if given & set(c.implied_by)), DEFAULT_SCHEME)
    cls = scheme_class(name)
    for other in SCHEMES.values():
        for opt in sorted(given & set(other.owns)) if other is not cls else ():
            why = cls.declines.get(opt, "")
            raise InputError(f"{other.owns[opt]} belongs to the {other.name} scheme" + (f"; {why}" if why else ""))
    return cls


def load_scheme(scheme: str | None = None, **options) -> Scheme:
    """The scheme an encryption job runs: ``exact`` (the default) with ``classifier`` (default
    :data:`ric.zoo.bundles.DEFAULT_CLASSIFIER`) and ``bits``, or ``paper`` with the RIC ``model`` (default
    :data:`ric.zoo.bundles.DEFAULT_MODEL`); naming a ``model`` implies ``paper``. The options are those of
    :class:`~ric.schemes.base.SchemeOptions` (e.g. ``refine=False``: the paper scheme skips its encoder-side
    refinement: faster encryption, lower recovery quality; decryption is the same either way)."""
    opts = SchemeOptions(**options)
    return pick_scheme(scheme, opts).from_options(opts)


__all__ = ["DEFAULT_SCHEME", "SCHEMES", "EncryptResult", "ExactScheme", "PaperScheme", "Scheme", "SchemeOptions",
           "SealedFile", "load_scheme", "pick_scheme", "register_scheme", "scheme_class"]
