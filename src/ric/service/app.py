"""The cloud's HTTP API (FastAPI): classify ciphertexts, store them per tenant, give them back.

Endpoints (all ``/v1`` ones need ``Authorization: Bearer <token>``; bodies are raw PNG bytes, ``image/png``):

* ``POST /v1/classify`` → ``{label, class, classifier, fingerprint, scheme}`` (nothing stored)
* ``POST /v1/images?name=N`` → stores and classifies: ``{id, name, label, class, ...}`` (201; the same bytes
  under the same name again: 200, the stored record)
* ``GET /v1/images/{id}`` → the exact bytes; ``GET /v1/images?label=L&class=C&limit&offset`` → list;
  ``DELETE /v1/images/{id}``
* ``GET /healthz`` (no token), ``/docs`` (OpenAPI), ``/`` the page (see ``static/page.js``)

Every error is JSON ``{"error": code, "message": one line}`` with a 4xx/5xx status, and a refused upload stores
nothing. A ciphertext's ``ric:classifier`` may only select a classifier the server loaded, by name and fingerprint
(the rule of the hardening issue: metadata never chooses code); the server never needs or accepts a key.
"""

from __future__ import annotations

import asyncio
import hashlib
import struct
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from ric.classifiers import Classifier, load_classifier
from ric.container import PNG_SIGNATURE, read_ciphertext_bytes
from ric.errors import CiphertextError, InputError, NotACiphertextError, quote
from ric.service.batcher import Batcher, Busy
from ric.service.store import Store, StoreError, check_name

STATIC = Path(__file__).resolve().parent / "static"
DEFAULT_CLASSIFIERS = ("svhn-cnn7",)
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


class ServiceError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


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


def create_app(store_dir, classifiers=DEFAULT_CLASSIFIERS, limits: Limits | None = None, **overrides) -> FastAPI:
    """The service for store folder ``store_dir`` with ``classifiers`` (specs for
    :func:`ric.classifiers.load_classifier`, or loaded classifiers), loaded once. ``limits`` (or keyword
    overrides of :class:`Limits` fields, e.g. ``max_batch=1``) bound what a request and a tenant may use."""
    limits = limits or Limits()
    for k, v in overrides.items():
        if not hasattr(limits, k):
            raise TypeError(f"unknown limit {k!r}")
        setattr(limits, k, v)
    models = Classifiers(classifiers)
    store = Store(store_dir, serving=True)
    batcher = Batcher(limits.max_batch, limits.batch_wait_s, limits.queue_max)
    rate = RateLimiter(limits.rate, limits.burst)
    if any(store.recovered.values()):
        print(f"ric serve: store recovery: {store.recovered}", file=sys.stderr, flush=True)

    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(app):
        yield
        batcher.close()
        store.close()

    app = FastAPI(title="RIC cloud", version="1", lifespan=lifespan,
                  description="Classifies and stores noise-like RIC ciphertexts with an unmodified classifier. "
                              "It never sees a key: it learns labels, not images.")
    st = app.state
    st.store, st.batcher, st.limits, st.models, st.rate = store, batcher, limits, models, rate

    @app.exception_handler(ServiceError)
    async def _service_error(request, e: ServiceError):
        return _error(e.status, e.code, e.message, e.headers)

    @app.exception_handler(StoreError)
    async def _store_error(request, e: StoreError):
        return _error(e.status, e.code, str(e))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request, e: StarletteHTTPException):
        code = {401: "unauthorized", 404: "not_found", 405: "method_not_allowed"}.get(e.status_code, "error")
        return _error(e.status_code, code, str(e.detail), getattr(e, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request, e: RequestValidationError):
        errs = e.errors()
        first = errs[0] if errs else {}
        where = ".".join(str(x) for x in first.get("loc", ()))
        return _error(422, "bad_request", f"{where}: {first.get('msg', 'invalid request')}")

    @app.exception_handler(Exception)
    async def _internal(request, e: Exception):
        return _error(500, "internal", f"internal error ({type(e).__name__})")

    async def read_body(request: Request) -> bytes:
        cl = request.headers.get("content-length")
        if cl is not None:
            if not cl.isdigit():
                raise ServiceError(400, "bad_request", "malformed Content-Length")
            if int(cl) > limits.max_body_bytes:
                raise ServiceError(413, "too_large", f"request body of {int(cl)} bytes is over the limit of "
                                                     f"{limits.max_body_bytes} bytes")
        buf = bytearray()

        async def gather():
            async for chunk in request.stream():
                buf.extend(chunk)
                if len(buf) > limits.max_body_bytes:
                    raise ServiceError(413, "too_large", f"request body is over the limit of "
                                                         f"{limits.max_body_bytes} bytes")

        try:
            await asyncio.wait_for(gather(), limits.body_timeout_s)
        except asyncio.TimeoutError:
            raise ServiceError(408, "timeout",
                               f"request body not received within {limits.body_timeout_s:g} s") from None
        if not buf:
            raise ServiceError(400, "empty", "empty request body: send a ciphertext PNG")
        return bytes(buf)

    def inspect(data: bytes, name: str):
        """Parse and check an uploaded ciphertext; returns (ciphertext, classifier). Header checks come before
        any decompression."""
        size = _png_size(data)
        if size is None:
            raise ServiceError(415, "not_png", "the body is not a PNG image: send a RIC ciphertext PNG")
        w, h = size
        if w * h > limits.max_pixels:
            raise ServiceError(413, "image_too_large", f"image is {h}x{w} pixels, over this server's limit of "
                                                       f"{limits.max_pixels} pixels")
        try:
            ct = read_ciphertext_bytes(data, name, max_pixels=limits.max_pixels)
        except NotACiphertextError:
            raise ServiceError(422, "not_a_ciphertext", f"{name}: a PNG without RIC metadata; the service "
                                                        "only takes RIC ciphertexts") from None
        except CiphertextError as e:
            raise ServiceError(400, "bad_ciphertext", str(e)) from None
        clf = models.resolve(ct.classifier)
        c, hh, ww = ct.pixels.shape[2], ct.pixels.shape[0], ct.pixels.shape[1]
        try:
            clf.check_input((c, hh, ww))
        except InputError as e:
            raise ServiceError(422, "wrong_shape", f"{name}: {e}") from None
        return ct, clf

    async def classify(ct, clf) -> int:
        try:
            fut = batcher.submit(clf, np.ascontiguousarray(ct.pixels))
        except Busy as e:
            raise ServiceError(503, "busy", str(e), {"Retry-After": "1"}) from None
        try:
            label = await asyncio.wait_for(asyncio.wrap_future(fut), limits.classify_timeout_s)
        except asyncio.TimeoutError:
            fut.cancel()
            raise ServiceError(504, "timeout",
                               f"classification took longer than {limits.classify_timeout_s:g} s") from None
        return label

    def result(ct, clf, label) -> dict:
        return {"label": label, "class": clf.class_names[label], "classifier": clf.name,
                "fingerprint": clf.fingerprint, "scheme": ct.scheme_name}

    @app.post("/v1/classify", openapi_extra=PNG_BODY, tags=["cloud"],
              summary="Classify one ciphertext (nothing is stored)")
    async def post_classify(request: Request, t: Tenant):
        data = await read_body(request)
        ct, clf = await run_in_threadpool(inspect, data, "upload")
        return result(ct, clf, await classify(ct, clf))

    @app.post("/v1/images", openapi_extra=PNG_BODY, tags=["store"], status_code=201,
              summary="Store and classify one ciphertext")
    async def post_image(request: Request, t: Tenant,
                         name: Annotated[str | None, Query(description="file name kept for ric pull (*.png)")] = None):
        if name is not None:
            check_name(name)
        data = await read_body(request)
        name = name or hashlib.sha256(data).hexdigest()[:16] + ".png"
        ct, clf = await run_in_threadpool(inspect, data, name)
        known = await run_in_threadpool(store.existing, t, hashlib.sha256(data).hexdigest(), name)
        if known is not None:  # a retried upload: nothing to do
            return JSONResponse(known.public(), status_code=200)
        label = await classify(ct, clf)
        img, created = await run_in_threadpool(store.put, t, data, name, label, clf.class_names[label], clf.ident,
                                               ct.scheme_name, limits.max_images_per_tenant)
        return JSONResponse(img.public(), status_code=201 if created else 200)

    @app.get("/v1/images", tags=["store"], summary="List this tenant's images")
    async def list_images(t: Tenant, label: Annotated[int | None, Query(ge=0)] = None,
                          cls: Annotated[str | None, Query(alias="class", max_length=200)] = None,
                          limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
                          offset: Annotated[int, Query(ge=0)] = 0):
        rows, total = await run_in_threadpool(store.list, t, label, cls, limit, offset)
        return {"images": [r.public() for r in rows], "total": total, "limit": limit, "offset": offset}

    @app.get("/v1/images/{image_id}", tags=["store"], summary="The stored bytes, exactly",
             responses={200: {"content": {"image/png": {}}}})
    async def get_image(image_id: str, t: Tenant):
        got = await run_in_threadpool(store.read, t, image_id)
        if got is None:
            raise ServiceError(404, "not_found", f"no image {quote(image_id)} for this tenant")
        img, data = got
        return Response(data, media_type="image/png",
                        headers={"ETag": f'"{img.id}"', "Cache-Control": "private, no-store",
                                 "X-Content-Type-Options": "nosniff"})

    @app.delete("/v1/images/{image_id}", tags=["store"], summary="Delete one image")
    async def delete_image(image_id: str, t: Tenant):
        if not await run_in_threadpool(store.delete, t, image_id):
            raise ServiceError(404, "not_found", f"no image {quote(image_id)} for this tenant")
        return {"deleted": image_id}

    @app.get("/healthz", tags=["service"], summary="Liveness, loaded classifiers, queue length")
    async def healthz():
        return {"status": "ok", "classifiers": sorted(models.by_ident), "queue": batcher.q.qsize(),
                "batching": limits.max_batch > 1, "max_batch": limits.max_batch, "batches": dict(batcher.stats)}

    page_headers = {"Content-Security-Policy": PAGE_CSP, "X-Content-Type-Options": "nosniff",
                    "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(STATIC / "page.html", media_type="text/html; charset=utf-8", headers=page_headers)

    @app.get("/static/{fname}", include_in_schema=False)
    async def static(fname: str):
        types = {"page.js": "text/javascript; charset=utf-8", "page.css": "text/css; charset=utf-8"}
        if fname not in types:
            raise ServiceError(404, "not_found", "no such file")
        return FileResponse(STATIC / fname, media_type=types[fname], headers=page_headers)

    return app


def serve(store_dir, host: str = "127.0.0.1", port: int = 8000, classifiers=DEFAULT_CLASSIFIERS,
          limits: Limits | None = None, log_level: str = "info", torch_threads: int = 1) -> None:
    """Run the service with uvicorn until interrupted (one process; ``torch_threads`` threads for the model)."""
    import torch
    import uvicorn

    torch.set_num_threads(max(1, torch_threads))
    limits = limits or Limits()
    app = create_app(store_dir, classifiers, limits)
    batching = f"on (up to {limits.max_batch})" if limits.max_batch > 1 else "off"
    print(f"ric serve: http://{host}:{port}/ store {store_dir}, classifiers "
          f"{', '.join(sorted(app.state.models.by_ident))}; micro-batching {batching}", file=sys.stderr, flush=True)
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=log_level in ("debug", "info"),
                limit_concurrency=limits.max_connections, timeout_keep_alive=5, server_header=False)
