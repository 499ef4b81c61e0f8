"""Micro-batching: concurrent classify requests share forward passes.

Requests put (classifier, image) on a bounded queue and wait on a future. One worker thread takes the first
waiting request, then whatever else arrives within ``max_wait`` seconds (up to ``max_batch``), groups the batch
by classifier and image shape, and runs one forward pass per group. ``max_batch=1`` switches batching off (every
request gets its own forward pass, through the same queue: the benchmark's baseline). A full queue is refused at
once (:class:`Busy`, HTTP 503) rather than queued without bound.
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future

import numpy as np

from ric.errors import Busy
from ric.imageio import to_tensor


class Batcher:
    def __init__(self, max_batch: int = 64, max_wait: float = 0.002, queue_max: int = 256):
        if max_batch < 1 or queue_max < 1:
            raise ValueError("max_batch and queue_max must be at least 1")
        self.max_batch = max_batch
        self.max_wait = max_wait
        self.q: queue.Queue = queue.Queue(maxsize=queue_max)
        self.stats = {"requests": 0, "batches": 0, "largest_batch": 0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ric-batcher", daemon=True)
        self._thread.start()

    def submit(self, clf, pixels: np.ndarray) -> Future:
        """Queue one H×W×C uint8 image for ``clf``; the future's result is its label (int)."""
        fut: Future = Future()
        try:
            self.q.put_nowait((clf, pixels, fut))
        except queue.Full:
            raise Busy(f"the classify queue is full ({self.q.maxsize} waiting); retry shortly") from None
        return fut

    def close(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _take(self) -> list:
        try:
            first = self.q.get(timeout=0.1)
        except queue.Empty:
            return []
        batch = [first]
        deadline = time.monotonic() + self.max_wait
        while len(batch) < self.max_batch:
            left = deadline - time.monotonic()
            try:
                batch.append(self.q.get(timeout=left) if left > 0 else self.q.get_nowait())
            except queue.Empty:
                break
        return batch

    def _run(self) -> None:
        while not self._stop.is_set():
            batch = self._take()
            if not batch:
                continue
            groups: dict[tuple, list] = {}
            for item in batch:
                clf, px, fut = item
                if fut.set_running_or_notify_cancel():
                    groups.setdefault((id(clf), px.shape), []).append(item)
            for items in groups.values():
                self._forward(items)
            self.stats["requests"] += len(batch)
            self.stats["batches"] += len(groups)
            self.stats["largest_batch"] = max(self.stats["largest_batch"], max(map(len, groups.values()), default=0))

    @staticmethod
    def _forward(items: list) -> None:
        clf = items[0][0]
        try:
            x = to_tensor(np.stack([px for _, px, _ in items]))
            labels = clf.predict(x).tolist()
        except Exception as e:  # delivered to every waiting request; the worker keeps running
            for _, _, fut in items:
                fut.set_exception(e)
            return
        for (_, _, fut), lab in zip(items, labels, strict=True):
            fut.set_result(int(lab))
