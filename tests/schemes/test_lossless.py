"""The exact scheme's payload codecs (ric.schemes.lossless): every encoding decodes bit-exactly; with a room to
fit, the fastest codec that fits is used, else the smallest (for the capacity error)."""

import numpy as np

from ric.schemes import lossless


def _smooth(h: int, w: int, c: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = np.linspace(0, 200, h * w).reshape(h, w, 1) + rng.integers(0, 8, (h, w, c))
    return base.astype(np.uint8)


def test_without_room_the_smallest_candidate_wins():
    a = _smooth(40, 40, 3)
    cid, data = lossless.compress(a)
    sizes = {n: len(lossless.BY_NAME[n].encode(a)) for n in lossless.DEFAULT_CANDIDATES
             if lossless.BY_NAME[n].available()}
    assert len(data) == min(sizes.values())
    assert np.array_equal(lossless.decompress(cid, data, a.shape), a)


def test_with_room_the_fastest_codec_that_fits_is_used():
    a = _smooth(40, 40, 3, seed=1)
    png = lossless.BY_NAME["png"].encode(a)
    cid, data = lossless.compress(a, room=len(png))  # PNG fits exactly: it is first
    assert cid == lossless.BY_NAME["png"].id and data == png
    cid, data = lossless.compress(a, room=len(png) - 1)  # PNG no longer fits: a smaller codec is used
    assert cid != lossless.BY_NAME["png"].id and len(data) <= len(png) - 1
    assert np.array_equal(lossless.decompress(cid, data, a.shape), a)


def test_with_no_room_anywhere_the_smallest_comes_back():
    a = _smooth(24, 24, 1, seed=2)
    cid, data = lossless.compress(a, room=1)
    assert len(data) == min(len(lossless.BY_NAME[n].encode(a)) for n in lossless.FAST_FIRST
                            if lossless.BY_NAME[n].available())
    assert np.array_equal(lossless.decompress(cid, data, a.shape), a)
