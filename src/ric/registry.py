"""One helper behind the registries (attacks, codecs, classifier architectures)."""

from __future__ import annotations


def registrar(table: dict, attr: str | None = None):
    """Return ``register(name)``: a decorator that stores the object in ``table`` under ``name`` and,
    if ``attr`` is given, records the name on it."""

    def register(name: str):
        def deco(obj):
            table[name] = obj
            if attr:
                setattr(obj, attr, name)
            return obj

        return deco

    return register
