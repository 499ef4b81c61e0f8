"""Compact carriers: the size classes of the exact scheme's file-payload ciphertexts (format version 2).

A photo's ciphertext is not the photo's own pixel grid but the smallest image whose low digits hold the sealed
file, padded up to a *size class*, so that the ciphertext reveals a coarse size class instead of the photo's
dimensions. A size class is an (aspect class, short side) pair:

* the aspect classes are :data:`ASPECTS` (long side : short side = 1, 4/3, 3/2, 16/9) in either orientation; a
  photo takes the class nearest to its own ratio (in log scale), so a 4032×3024 photo gives a landscape 4:3
  carrier and a 1080×1920 one a portrait 16:9 carrier;
* the short sides are a geometric ladder (:func:`ladder`): from :data:`MIN_SIDE`, each step multiplies the side
  by at most :data:`SIDE_STEP` (and adds at least one pixel), so consecutive classes differ by less than 10 % in
  area and the padding costs at most that much;
* the long side is ``round(short · aspect)``.

Everything here is public and keyless: anyone can check that a carrier's size is a valid class
(:func:`is_size_class`), and the decryptor refuses one that is not.
"""

from __future__ import annotations

import math
from functools import lru_cache

ASPECTS = (1.0, 4 / 3, 3 / 2, 16 / 9)
MIN_SIDE = 32
MAX_SIDE = 16384
SIDE_STEP = 1.048  # area step ≤ 1.048² < 1.10


@lru_cache(maxsize=1)
def ladder() -> tuple[int, ...]:
    """The short sides of the size classes, ascending: ``s[k+1] = max(s[k] + 1, floor(s[k] · SIDE_STEP))``."""
    sides = [MIN_SIDE]
    while sides[-1] < MAX_SIDE:
        sides.append(max(sides[-1] + 1, math.floor(sides[-1] * SIDE_STEP)))
    return tuple(sides)


def aspect_class(h: int, w: int) -> tuple[float, bool]:
    """``(aspect, portrait)``: the aspect class nearest to an h×w photo's ratio, and whether it is taller than wide."""
    r = max(h, w) / max(1, min(h, w))
    return min(ASPECTS, key=lambda a: abs(math.log(r / a))), h > w


def shape_of(short: int, aspect: float, portrait: bool, channels: int) -> tuple[int, int, int]:
    """The (H, W, C) of the class with short side ``short``."""
    long = int(round(short * aspect))
    return (long, short, channels) if portrait else (short, long, channels)


def smallest_class(h: int, w: int, channels: int, fits) -> tuple[int, int, int]:
    """The smallest size class in the aspect class of an h×w photo for which ``fits(shape)`` is true (``fits`` is
    monotone in the size). Raises ``ValueError`` if even the largest class does not fit."""
    aspect, portrait = aspect_class(h, w)
    sides = ladder()
    lo, hi = 0, len(sides) - 1
    if not fits(shape_of(sides[hi], aspect, portrait, channels)):
        raise ValueError("payload larger than the largest carrier")
    while lo < hi:  # binary search over the monotone ladder
        mid = (lo + hi) // 2
        if fits(shape_of(sides[mid], aspect, portrait, channels)):
            hi = mid
        else:
            lo = mid + 1
    return shape_of(sides[lo], aspect, portrait, channels)


def is_size_class(shape: tuple[int, ...]) -> bool:
    """True if an (H, W, C) carrier has the size of a class (any aspect class and orientation)."""
    h, w = int(shape[0]), int(shape[1])
    short, long = min(h, w), max(h, w)
    if short not in _ladder_set():
        return False
    return any(int(round(short * a)) == long for a in ASPECTS)


@lru_cache(maxsize=1)
def _ladder_set() -> frozenset:
    return frozenset(ladder())
