"""Micro-batching: concurrent classify requests share forward passes, within a pixel budget.

A request first takes a :class:`Ticket` for its image's sub-pixels (:meth:`Batcher.admit`, from the PNG header,
before anything is decoded); the budget ``max_pixels`` bounds the decoded pixels of every request between
admission and the end of its forward pass, whatever their count or size, and a request that does not fit is
refused at once (:class:`Busy`, HTTP 503) rather than queued. Then it puts (classifier, image) on the queue and
waits on a future. One worker thread takes the first waiting request, then whatever else arrives within
``max_wait`` seconds, up to ``max_batch`` images and ``batch_pixels`` sub-pixels (a single larger image goes
alone), groups the batch by classifier and image shape, and runs one forward pass per group (through a serving
stack of :mod:`ric.stacks` when the server names one, ``ric serve --stack``). ``max_batch=1``
switches batching off (every request gets its own forward pass, through the same queue: the benchmark's
baseline).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from concurrent.futures import Future

import numpy as np

from ric.errors import Busy
from ric.imageio import to_tensor


class Ticket:
    """``n`` sub-pixels of the budget, held by the request and (once queued) by the worker; returned to the
    budget when both have let go (:meth:`release` once per holder)."""

    def __init__(self, batcher: Batcher, n: int):
        self.batcher, self.n, self._holders = batcher, n, 1

    def hold(self) -> None:
        with self.batcher._cv:
            self._holders += 1

    def release(self) -> None:
        with self.batcher._cv:
            if self._holders <= 0:
                return
            self._holders -= 1
            if self._holders == 0:
                self.batcher.pending_pixels -= self.n


class Batcher:
    def __init__(self, max_batch: int = 64, max_wait: float = 0.002, max_pixels: int = 1 << 26,
                 batch_pixels: int = 1 << 24, stack=None):
        if max_batch < 1 or max_pixels < 1 or batch_pixels < 1:
            raise ValueError("max_batch, max_pixels and batch_pixels must be at least 1")
        self.max_batch, self.max_wait = max_batch, max_wait
        self.max_pixels, self.batch_pixels = max_pixels, batch_pixels
        self.stack = stack  # a ric.stacks.Stack: classify the way it does (None: the classifier's own predict)
        self.pending_pixels = 0
        self._q: deque = deque()
        self._cv = threading.Condition()
        self.stats = {"requests": 0, "batches": 0, "largest_batch": 0, "refused_busy": 0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ric-batcher", daemon=True)
        self._thread.start()

    def queued(self) -> int:
        return len(self._q)

    def admit(self, n: int) -> Ticket:
        """A ticket for ``n`` sub-pixels, or :class:`Busy` if the budget cannot hold them now."""
        with self._cv:
            if self.pending_pixels + n > self.max_pixels:
                self.stats["refused_busy"] += 1
                raise Busy(f"the classify queue is full ({self.pending_pixels:,} of {self.max_pixels:,} sub-pixels "
                           "held); retry shortly")
            self.pending_pixels += n
        return Ticket(self, n)

    def submit(self, clf, pixels: np.ndarray, ticket: Ticket | None = None) -> Future:
        """Queue one H×W×C uint8 image for ``clf`` under ``ticket`` (admitted here if None); the future's result
        is its label (int)."""
        if ticket is None:
            ticket = self.admit(pixels.size)  # its one holder is the worker
        else:
            ticket.hold()  # the worker's hold, released after the forward pass
        fut: Future = Future()
        with self._cv:
            self._q.append((clf, pixels, fut, ticket))
            self._cv.notify()
        return fut

    def close(self, timeout: float = 5.0) -> None:
        self._stop.set()
        with self._cv:
            self._cv.notify_all()
        self._thread.join(timeout)

    def _take(self) -> list:
        with self._cv:
            if not self._q:
                self._cv.wait(0.1)
            if not self._q:
                return []
            batch = [self._q.popleft()]
            size = batch[0][1].size
            deadline = time.monotonic() + self.max_wait
            while len(batch) < self.max_batch:
                if self._q:
                    if size + self._q[0][1].size > self.batch_pixels:
                        break
                    batch.append(self._q.popleft())
                    size += batch[-1][1].size
                    continue
                left = deadline - time.monotonic()
                if left <= 0 or self._stop.is_set():
                    break
                self._cv.wait(left)
        return batch

    def _run(self) -> None:
        while not self._stop.is_set():
            batch = self._take()
            if not batch:
                continue
            groups: dict[tuple, list] = {}
            for item in batch:
                clf, px, fut, _ = item
                if fut.set_running_or_notify_cancel():
                    groups.setdefault((id(clf), px.shape), []).append(item)
            for items in groups.values():
                self._forward(items)
            for *_, ticket in batch:
                ticket.release()
            self.stats["requests"] += len(batch)
            self.stats["batches"] += len(groups)
            self.stats["largest_batch"] = max(self.stats["largest_batch"], max(map(len, groups.values()), default=0))

    def _forward(self, items: list) -> None:
        clf = items[0][0]
        try:
            x = to_tensor(np.stack([px for _, px, _, _ in items]))
            labels = (clf.predict(x) if self.stack is None else self.stack.predict(clf, x)).tolist()
        except Exception as e:  # delivered to every waiting request; the worker keeps running
            for _, _, fut, _ in items:
                fut.set_exception(e)
            return
        del x
        for (_, _, fut, _), lab in zip(items, labels, strict=True):
            fut.set_result(int(lab))
