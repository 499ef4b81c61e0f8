"""One helper behind the registries (attacks, codecs, classifier architectures, schemes)."""

from __future__ import annotations


def registrar(table: dict, attr: str | None = None):
    """Return ``register(name)``: a decorator that stores the object in ``table`` under ``name`` and,
    if ``attr`` is given, records the name on it. A name already taken by another object raises
    :class:`ValueError` (a second class would otherwise silently replace the first)."""

    def register(name: str):
        def deco(obj):
            if name in table and table[name] is not obj:
                raise ValueError(f"{name!r} is already registered (to {table[name].__module__}."
                                 f"{table[name].__qualname__}); pick another name")
            table[name] = obj
            if attr:
                setattr(obj, attr, name)
            return obj

        return deco

    return register
