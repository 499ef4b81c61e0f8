"""A real uvicorn server (``ric serve``'s own settings, :func:`ric.service.guard.uvicorn_config`) in a thread of
the test process, on a free port of 127.0.0.1; and the process's resident memory."""

import contextlib
import threading
import time

from ric.service.local import free_port


@contextlib.contextmanager
def live(app):
    """Serve ``app`` (from :func:`ric.service.app.create_app`) until the block ends; yields (url, port)."""
    import uvicorn

    from ric.service.guard import uvicorn_config

    port = free_port()
    server = uvicorn.Server(uvicorn_config(app, "127.0.0.1", port, app.state.limits, log_level="warning"))
    th = threading.Thread(target=server.run, daemon=True)
    th.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}", port
    finally:
        server.should_exit = True
        th.join(20)


def rss() -> int:
    """Resident set size of this process, in bytes (Linux)."""
    import os

    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakRSS:
    """Samples :func:`rss` every few milliseconds in a thread; ``growth`` is the peak minus the value at start."""

    def __enter__(self):
        self.start = self.peak = rss()
        self._stop = threading.Event()
        self._th = threading.Thread(target=self._run, daemon=True)
        self._th.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, rss())
            time.sleep(0.005)

    def __exit__(self, *exc):
        self._stop.set()
        self._th.join()
        self.peak = max(self.peak, rss())

    @property
    def growth(self) -> int:
        return self.peak - self.start
