"""Size classes of the exact scheme's compact carriers."""

import math

from hypothesis import given
from hypothesis import strategies as st

from ric.schemes import carrier


def test_the_ladder_steps_by_less_than_ten_percent_in_area():
    sides = carrier.ladder()
    assert sides[0] == carrier.MIN_SIDE and sides[-1] >= carrier.MAX_SIDE
    for a, b in zip(sides, sides[1:], strict=False):
        assert b > a and (b / a) ** 2 < 1.10


@given(st.integers(8, 9000), st.integers(8, 9000), st.integers(1, 3_000_000))
def test_the_smallest_class_fits_and_the_one_below_does_not(h, w, need):
    fits = lambda s: s[0] * s[1] * s[2] >= need  # noqa: E731
    shape = carrier.smallest_class(h, w, 3, fits)
    assert fits(shape) and carrier.is_size_class(shape)
    aspect, portrait = carrier.aspect_class(h, w)
    assert (shape[0] > shape[1]) == (portrait and aspect > 1) or aspect == 1.0
    k = carrier.ladder().index(min(shape[:2]))
    if k:
        assert not fits(carrier.shape_of(carrier.ladder()[k - 1], aspect, portrait, 3))


def test_aspect_classes_follow_the_photo():
    assert carrier.aspect_class(3024, 4032) == (4 / 3, False)
    assert carrier.aspect_class(1920, 1080) == (16 / 9, True)
    assert carrier.aspect_class(500, 510)[0] == 1.0
    assert math.isclose(carrier.aspect_class(4000, 6000)[0], 1.5)


def test_sizes_off_the_ladder_are_not_classes():
    assert carrier.is_size_class((32, 32, 3)) and carrier.is_size_class((33, 44, 3))
    assert not carrier.is_size_class((31, 31, 3))  # below the ladder
    assert not carrier.is_size_class((250, 250, 3))  # 250 is not a rung
    assert not carrier.is_size_class((33, 45, 3))  # no aspect class gives 45 from 33
