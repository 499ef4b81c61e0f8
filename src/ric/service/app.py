"""The cloud's HTTP API (FastAPI): classify ciphertexts, store them per tenant, give them back.

Endpoints (all ``/v1`` ones need ``Authorization: Bearer <token>``; bodies are raw PNG bytes, ``image/png``):

* ``POST /v1/classify`` → ``{label, class, classifier, fingerprint, scheme}`` (nothing stored)
* ``POST /v1/images?name=N`` → stores and classifies: ``{id, name, label, class, ...}`` (201; the same bytes
  under the same name again: 200, the stored record)
* ``GET /v1/images/{id}`` → the exact bytes; ``GET /v1/images?label=L&class=C&limit&offset`` → list;
  ``DELETE /v1/images/{id}``
* ``GET /healthz`` (``{"status": "ok"}`` without a token; with one also classifiers, queue and counters),
  ``/docs`` (OpenAPI; Swagger UI from ``static/``, offline), ``/`` the page (``static/page.js``)

Every error is JSON ``{"error": code, "message": one line}`` with a 4xx/5xx status, and a refused upload stores
nothing. A ciphertext's ``ric:classifier`` may only select a classifier the server loaded, by name and fingerprint
(untrusted metadata never chooses code); the server never needs or accepts a key.
"""

from __future__ import annotations

import sys
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from ric.service.batcher import Batcher
from ric.service.core import (  # noqa: F401  (Limits, DEFAULT_CLASSIFIERS: the API of this module)
    DEFAULT_CLASSIFIERS,
    Classifiers,
    Limits,
    RateLimiter,
    ServiceError,
    TenantSlots,
    error_response,
)
from ric.service.guard import InFlight, uvicorn_config
from ric.service.routes import router
from ric.service.store import Store, StoreError


def create_app(store_dir, classifiers=DEFAULT_CLASSIFIERS, limits: Limits | None = None, stack: str | None = None,
               **overrides) -> FastAPI:
    """The service for store folder ``store_dir`` with ``classifiers`` (specs for
    :func:`ric.classifiers.load_classifier`, or loaded classifiers), loaded once. ``limits`` (or keyword
    overrides of :class:`Limits` fields, e.g. ``max_batch=1``) bound what a request and a tenant may use.
    ``stack``: classify the way that serving stack does (:data:`ric.stacks.STACKS`, e.g. ``onnxruntime``); an
    unknown name or a missing library stops the start with one clear error (:class:`~ric.errors.InputError`)."""
    serving = serving_stack(stack)
    limits = limits or Limits()
    for k, v in overrides.items():
        if not hasattr(limits, k):
            raise TypeError(f"unknown limit {k!r}")
        setattr(limits, k, v)
    models = Classifiers(classifiers)
    store = Store(store_dir, serving=True)
    batcher = Batcher(limits.max_batch, limits.batch_wait_s, limits.queue_max_pixels, limits.batch_max_pixels,
                      serving)
    rate = RateLimiter(limits.rate, limits.burst)
    if any(store.recovered.values()):
        print(f"ric serve: store recovery: {store.recovered}", file=sys.stderr, flush=True)
    if store.recovered.get("orphan_blobs_quarantined"):
        print(f"ric serve: {store.recovered['orphan_blobs_quarantined']} stored file(s) that the index does not list "
              f"were moved to {store.quarantine} (nothing was deleted; an index restored from a backup may lack "
              "their rows)", file=sys.stderr, flush=True)

    @asynccontextmanager
    async def lifespan(app):
        yield
        batcher.close()
        store.close()

    app = FastAPI(title="RIC cloud", version="1", lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Classifies and stores noise-like RIC ciphertexts with an unmodified classifier. "
                              "It never sees a key: it learns labels, not images.")
    st = app.state
    st.store, st.batcher, st.limits, st.models, st.rate = store, batcher, limits, models, rate
    st.stack = serving.name if serving is not None else "torch"
    st.tenant_slots, st.conn_stats = TenantSlots(limits.max_in_flight_per_tenant), {}
    app.add_middleware(InFlight, limit=limits.max_in_flight, stats=st.conn_stats)

    _add_error_handlers(app)
    app.include_router(router)
    _add_docs(app)
    return app


def serving_stack(name: str | None):
    """The :class:`ric.stacks.Stack` named ``name`` with its libraries checked (``None``: ric's own path)."""
    if name is None:
        return None
    from ric.stacks import get_stack

    st = get_stack(name)
    st.check()
    return st


def _add_docs(app: FastAPI) -> None:
    """``/docs``: Swagger UI from the vendored ``static/swagger-ui-*`` files (swagger-ui-dist, Apache-2.0), so that
    the page works without the internet; FastAPI's default loads them from a CDN."""
    from fastapi.openapi.docs import get_swagger_ui_html

    @app.get("/docs", include_in_schema=False)
    async def docs():
        return get_swagger_ui_html(openapi_url=app.openapi_url, title="RIC cloud: API",
                                   swagger_js_url="/static/swagger-ui-bundle.js",
                                   swagger_css_url="/static/swagger-ui.css",
                                   swagger_favicon_url="/static/swagger-favicon.png")


def _add_error_handlers(app: FastAPI) -> None:
    """Every error as JSON ``{"error": code, "message": one line}``."""

    @app.exception_handler(ServiceError)
    async def _service_error(request, e: ServiceError):
        return error_response(e.status, e.code, e.message, e.headers)

    @app.exception_handler(StoreError)
    async def _store_error(request, e: StoreError):
        return error_response(e.status, e.code, str(e))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request, e: StarletteHTTPException):
        code = {401: "unauthorized", 404: "not_found", 405: "method_not_allowed"}.get(e.status_code, "error")
        return error_response(e.status_code, code, str(e.detail), getattr(e, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request, e: RequestValidationError):
        errs = e.errors()
        first = errs[0] if errs else {}
        where = ".".join(str(x) for x in first.get("loc", ()))
        return error_response(422, "bad_request", f"{where}: {first.get('msg', 'invalid request')}")

    @app.exception_handler(Exception)
    async def _internal(request, e: Exception):
        return error_response(500, "internal", f"internal error ({type(e).__name__})")


def serve(store_dir, host: str = "127.0.0.1", port: int = 8000, classifiers=DEFAULT_CLASSIFIERS,
          limits: Limits | None = None, log_level: str = "info", torch_threads: int = 1, stack: str | None = None
          ) -> None:
    """Run the service with uvicorn until interrupted (one process; ``torch_threads`` threads for the model)."""
    import torch
    import uvicorn

    torch.set_num_threads(max(1, torch_threads))
    limits = limits or Limits()
    app = create_app(store_dir, classifiers, limits, stack)
    batching = f"on (up to {limits.max_batch})" if limits.max_batch > 1 else "off"
    print(f"ric serve: http://{host}:{port}/ store {store_dir}, classifiers "
          f"{', '.join(sorted(app.state.models.by_ident))} (stack {app.state.stack}); micro-batching {batching}",
          file=sys.stderr, flush=True)
    uvicorn.Server(uvicorn_config(app, host, port, limits, log_level)).run()
