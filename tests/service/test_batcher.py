"""The classify queue's pixel budget (hostile-peer issue, item 2): batches are cut by sub-pixels as well as by
count, a ticket holds its pixels until both the request and the forward pass let go, and the budget refuses
what it cannot hold."""

import time

import numpy as np
import pytest

from ric.service.batcher import Batcher, Busy


class _Recorder:
    def __init__(self, delay=0.0):
        self.delay, self.calls = delay, []

    def predict(self, x):
        import torch

        self.calls.append(tuple(x.shape))
        time.sleep(self.delay)
        return torch.zeros(len(x), dtype=torch.long)


def test_batches_are_cut_by_pixels():
    clf = _Recorder()
    b = Batcher(max_batch=64, max_wait=0.3, max_pixels=1000, batch_pixels=2 * 48)
    futs = [b.submit(clf, np.zeros((4, 4, 3), np.uint8)) for _ in range(5)]  # 48 sub-pixels each
    assert [f.result(5) for f in futs] == [0] * 5
    big = b.submit(clf, np.zeros((8, 8, 3), np.uint8))  # 192 > batch_pixels: goes alone
    assert big.result(5) == 0
    b.close()
    assert [c[0] for c in clf.calls] == [2, 2, 1, 1]
    assert b.pending_pixels == 0


def test_a_ticket_holds_its_pixels_until_request_and_worker_let_go():
    clf = _Recorder()
    b = Batcher(max_batch=1, max_wait=0, max_pixels=100)
    t = b.admit(60)  # taken from the header, before the upload is decoded
    with pytest.raises(Busy):
        b.admit(41)
    fut = b.submit(clf, np.zeros((4, 5, 3), np.uint8), t)
    assert fut.result(5) == 0
    time.sleep(0.05)
    assert b.pending_pixels == 60  # the request still holds its decoded pixels
    t.release()
    t.release()  # a second release is harmless
    assert b.pending_pixels == 0
    b.admit(100).release()
    b.close()
