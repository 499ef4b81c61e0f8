"""The service's shared pieces: limits, the JSON error type, the per-tenant rate limit, the loaded classifiers
and the bearer-token dependency that turns a request into a tenant id."""


from __future__ import annotations

import struct
import threading
import time
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from ric.classifiers import Classifier, load_classifier
from ric.container import PNG_SIGNATURE
from ric.errors import ServiceError, quote
from ric.service.limits import Limits  # noqa: F401  (re-exported: ric.service.core.Limits)
from ric.zoo import bundles

STATIC = Path(__file__).resolve().parent / "static"
DEFAULT_CLASSIFIERS = (bundles.DEFAULT_CLASSIFIER,)
PAGE_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; connect-src 'self'; "
            "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
PNG_BODY = {"requestBody": {"required": True, "description": "a RIC ciphertext PNG (raw bytes)",
                            "content": {"image/png": {"schema": {"type": "string", "format": "binary"}}}}}






def error_response(status: int, code: str, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status, headers=headers)


class RateLimiter:
    """A token bucket per tenant."""

    def __init__(self, rate: float, burst: int):
        self.rate, self.burst = rate, max(1, burst)
        self._state: dict[int, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def wait_for(self, tenant: int) -> float:
        """0 if the request may go ahead (and take a token), else seconds until it could."""
        if self.rate <= 0:
            return 0.0
        now = time.monotonic()
        with self._lock:
            tokens, t = self._state.get(tenant, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - t) * self.rate)
            if tokens >= 1.0:
                self._state[tenant] = (tokens - 1.0, now)
                return 0.0
            self._state[tenant] = (tokens, now)
            return (1.0 - tokens) / self.rate


class Classifiers:
    """The classifiers this server loaded (operator's specs, or loaded :class:`Classifier` objects), by ident."""

    def __init__(self, specs):
        self.by_ident: dict[str, Classifier] = {}
        for s in specs:
            clf = s if isinstance(s, Classifier) else load_classifier(s)
            self.by_ident[clf.ident] = clf.eval()

    def resolve(self, ident: str) -> Classifier:
        clf = self.by_ident.get(ident)
        if clf is not None:
            return clf
        name = ident.rpartition("@")[0]
        same = [c for c in self.by_ident.values() if c.name == name]
        loaded = ", ".join(sorted(self.by_ident)) or "none"
        if same:
            raise ServiceError(422, "unknown_classifier",
                               f"the ciphertext was made for classifier {quote(ident)}, but this server's {name} is "
                               f"{same[0].ident}: the fingerprints differ")
        raise ServiceError(422, "unknown_classifier",
                           f"the ciphertext names classifier {quote(ident)}, which this server has not loaded "
                           f"(loaded: {loaded}); metadata may only select a loaded classifier")


def png_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG's IHDR, if the data starts like a PNG."""
    if len(data) >= 24 and data.startswith(PNG_SIGNATURE) and data[12:16] == b"IHDR":
        return struct.unpack(">II", data[16:24])
    return None


_bearer = HTTPBearer(auto_error=False, description="a tenant token from `ric serve token add NAME --store DIR`")
Bearer = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def authenticate(request: Request, creds: HTTPAuthorizationCredentials | None) -> int:
    """The tenant id of the request's bearer token (401 without a known one), after its rate limit (429)."""
    st = request.app.state
    if creds is None or creds.scheme.lower() != "bearer":
        raise ServiceError(401, "unauthorized", "missing bearer token (Authorization: Bearer <token>)",
                           {"WWW-Authenticate": "Bearer"})
    found = st.store.tenant_for(creds.credentials)
    if found is None:
        raise ServiceError(401, "unauthorized", "unknown or revoked token", {"WWW-Authenticate": "Bearer"})
    wait = st.rate.wait_for(found[0])
    if wait > 0:
        raise ServiceError(429, "rate_limited", f"rate limit of {st.limits.rate:g} requests/s exceeded; retry in "
                           f"{wait:.2f} s", {"Retry-After": str(max(1, int(wait + 0.999)))})
    return found[0]


class TenantSlots:
    """Requests in flight per tenant, at most ``limit`` each (0: no limit)."""

    def __init__(self, limit: int):
        self.limit = int(limit)
        self._n: dict[int, int] = {}
        self._lock = threading.Lock()

    def take(self, tenant: int) -> None:
        with self._lock:
            n = self._n.get(tenant, 0)
            if self.limit > 0 and n >= self.limit:
                raise ServiceError(429, "too_many_requests", f"this tenant has {n} requests in flight, the most it "
                                   "may; retry when one is answered", {"Retry-After": "1"})
            self._n[tenant] = n + 1

    def held(self, tenant: int) -> int:
        with self._lock:
            return self._n.get(tenant, 0)

    def give(self, tenant: int) -> None:
        with self._lock:
            n = self._n.get(tenant, 1) - 1
            if n > 0:
                self._n[tenant] = n
            else:
                self._n.pop(tenant, None)


async def _tenant(request: Request, creds: Bearer):
    """The request's tenant id (:func:`authenticate`), holding one of its in-flight slots until the request ends.
    Async, with nothing to await after ``yield``: the slot is given back before the event loop can take the
    client's next request."""
    tenant = await run_in_threadpool(authenticate, request, creds)
    slots = request.app.state.tenant_slots
    slots.take(tenant)
    try:
        yield tenant
    finally:
        slots.give(tenant)


Tenant = Annotated[int, Depends(_tenant)]
