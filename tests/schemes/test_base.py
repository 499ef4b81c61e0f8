"""The one retry loop of every scheme (ric.schemes.base.retry_loop)."""

from ric.schemes.base import SCHEMES, retry_loop


def test_retry_loop_retries_only_the_misses_and_stops():
    calls = []

    def attempt(pending):
        calls.append(list(pending))
        return [i for i in pending if i == 2 or (i == 1 and len(calls) < 2)]  # 1 needs two tries, 2 never hits

    attempts, failed = retry_loop([0, 1, 2], attempt, max_retries=3)
    assert calls == [[0, 1, 2], [1, 2], [2], [2]]
    assert attempts == {0: 1, 1: 2, 2: 4} and failed == [2]


def test_retry_loop_without_retries_and_without_items():
    assert retry_loop([5, 7], lambda p: list(p), max_retries=0) == ({5: 1, 7: 1}, [5, 7])
    assert retry_loop([], lambda p: list(p), max_retries=3) == ({}, [])


def test_both_schemes_are_registered_behind_one_interface():
    assert {"exact", "paper"} <= set(SCHEMES)
    for cls in SCHEMES.values():
        assert callable(cls.encrypt) and callable(cls.decrypt)
