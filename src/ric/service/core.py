"""The service's shared pieces: limits, the JSON error type, the per-tenant rate limit, the loaded classifiers
and the bearer-token dependency that turns a request into a tenant id."""


from __future__ import annotations

import struct
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ric.classifiers import Classifier, load_classifier
from ric.container import PNG_SIGNATURE
from ric.errors import ServiceError, quote
from ric.zoo import bundles

STATIC = Path(__file__).resolve().parent / "static"
DEFAULT_CLASSIFIERS = (bundles.DEFAULT_CLASSIFIER,)
PAGE_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; connect-src 'self'; "
            "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
PNG_BODY = {"requestBody": {"required": True, "description": "a RIC ciphertext PNG (raw bytes)",
                            "content": {"image/png": {"schema": {"type": "string", "format": "binary"}}}}}




@dataclass
class Limits:
    """What one request and one tenant may use. ``rate <= 0`` switches the rate limit off; ``max_batch=1``
    switches micro-batching off."""

    max_body_bytes: int = 8 << 20  # request body (a ciphertext PNG)
    max_pixels: int = 1 << 22  # image size, checked from the PNG header before anything is decoded
    rate: float = 50.0  # requests per second per tenant (token bucket) ...
    burst: int = 100  # ... and its depth
    queue_max: int = 256  # classify requests waiting for the model
    max_batch: int = 64  # images per forward pass
    batch_wait_s: float = 0.002  # how long the batcher waits for company after the first request
    classify_timeout_s: float = 30.0
    body_timeout_s: float = 30.0  # reading one request body
    max_images_per_tenant: int = 100_000
    max_connections: int = 128  # uvicorn's limit_concurrency (503 beyond)


def _error(status: int, code: str, message: str, headers: dict | None = None) -> JSONResponse:
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


def _png_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG's IHDR, if the data starts like a PNG."""
    if len(data) >= 24 and data.startswith(PNG_SIGNATURE) and data[12:16] == b"IHDR":
        return struct.unpack(">II", data[16:24])
    return None


_bearer = HTTPBearer(auto_error=False, description="a tenant token from `ric serve token add NAME --store DIR`")


def _tenant(request: Request, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> int:
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


Tenant = Annotated[int, Depends(_tenant)]


