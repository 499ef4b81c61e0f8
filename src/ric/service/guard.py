"""What keeps clients that send nothing, or half a request, from stopping the service (the hostile-peer issue).

* :class:`InFlight` (ASGI middleware): at most ``Limits.max_in_flight`` requests are handled at once; one more
  gets a JSON 503 at once. Requests are counted, not connections: an idle socket holds no slot.
* :func:`guarded_protocol`: uvicorn's h11 protocol with three connection rules. A connection that has not sent
  a complete request head within ``header_timeout_s`` (after it opened, or after its previous response) is
  closed; one client address may hold ``max_connections_per_client`` open connections, and the server
  ``max_connections`` in all; connections beyond are closed as soon as they are accepted.
* :func:`uvicorn_config`: the one place that turns :class:`~ric.service.core.Limits` into uvicorn settings
  (``ric serve``, the tests and the benchmark use it).

Nothing here needs a token, so nothing here can be held by one: a client without a token costs the server a
socket for at most ``header_timeout_s``, and one 401 per request.
"""

from __future__ import annotations

import asyncio
import json
import threading


class InFlight:
    """ASGI middleware: a JSON 503 (``busy``, ``Retry-After: 1``) when ``limit`` HTTP requests are in flight."""

    def __init__(self, app, limit: int, stats: dict):
        self.app, self.limit, self.stats = app, int(limit), stats
        self.stats.setdefault("in_flight", 0)
        self.stats.setdefault("refused_in_flight", 0)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or self.limit <= 0:
            return await self.app(scope, receive, send)
        if self.stats["in_flight"] >= self.limit:  # one event loop: no lock needed
            self.stats["refused_in_flight"] += 1
            body = json.dumps({"error": "busy", "message": f"{self.limit} requests in flight, the most this server "
                                                           "handles at once; retry shortly"}).encode()
            await send({"type": "http.response.start", "status": 503,
                        "headers": [(b"content-type", b"application/json"), (b"retry-after", b"1"),
                                    (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return None
        self.stats["in_flight"] += 1
        try:
            return await self.app(scope, receive, send)
        finally:
            self.stats["in_flight"] -= 1


def guarded_protocol(max_connections: int, per_client: int, header_timeout: float, stats: dict):
    """A subclass of uvicorn's :class:`H11Protocol` with the connection rules of this module (0 switches one
    off). ``stats`` (a dict) gets the counts ``connections``, ``refused_connections`` and ``header_timeouts``."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    for k in ("connections", "refused_connections", "header_timeouts"):
        stats.setdefault(k, 0)
    by_client: dict[str, int] = {}
    lock = threading.Lock()  # uvicorn runs one loop per process; the lock only guards the dict against misuse

    class GuardedH11(H11Protocol):
        _addr: str | None = None
        _timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            addr = self.client[0] if self.client else "?"
            with lock:
                full = ((max_connections > 0 and stats["connections"] >= max_connections)
                        or (per_client > 0 and by_client.get(addr, 0) >= per_client))
                if not full:
                    self._addr = addr
                    by_client[addr] = by_client.get(addr, 0) + 1
                    stats["connections"] += 1
            if full:
                stats["refused_connections"] += 1
                transport.abort()
                return
            self._arm()

        def connection_lost(self, exc) -> None:
            self._disarm()
            if self._addr is not None:
                with lock:
                    n = by_client.get(self._addr, 1) - 1
                    if n > 0:
                        by_client[self._addr] = n
                    else:
                        by_client.pop(self._addr, None)
                    stats["connections"] -= 1
                self._addr = None
            super().connection_lost(exc)

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm()  # the next request's head must arrive in time too

        def _arm(self) -> None:
            self._disarm()
            if header_timeout > 0:
                self._timer = self.loop.call_later(header_timeout, self._header_timeout)

        def _disarm(self) -> None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

        def _header_timeout(self) -> None:
            self._timer = None
            waiting = self.conn.their_state is h11.IDLE and (self.cycle is None or self.cycle.response_complete)
            if waiting and not self.transport.is_closing():
                stats["header_timeouts"] += 1
                self.transport.close()

    return GuardedH11


def uvicorn_config(app, host: str, port: int, limits, log_level: str = "info"):
    """The :class:`uvicorn.Config` of ``ric serve`` for ``app`` (made by :func:`ric.service.app.create_app`,
    whose ``state.conn_stats`` the protocol counts into)."""
    import uvicorn

    proto = guarded_protocol(limits.max_connections, limits.max_connections_per_client, limits.header_timeout_s,
                             app.state.conn_stats)
    return uvicorn.Config(app, host=host, port=port, http=proto, log_level=log_level,
                          access_log=log_level in ("debug", "info"), timeout_keep_alive=5, server_header=False,
                          limit_concurrency=None)
