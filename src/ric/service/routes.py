"""The HTTP endpoints (an ``APIRouter`` included by :func:`ric.service.app.create_app`); each reads what it needs
(store, limits, loaded classifiers, batcher) from ``request.app.state``."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from ric.container import read_ciphertext_bytes
from ric.errors import CiphertextError, InputError, NotACiphertextError, quote
from ric.service.batcher import Busy
from ric.service.core import PAGE_CSP, PNG_BODY, STATIC, ServiceError, Tenant, _png_size
from ric.service.store import check_name

router = APIRouter()


async def read_body(request: Request) -> bytes:
    """The request body, at most ``max_body_bytes`` and within ``body_timeout_s``; never empty."""
    limits = request.app.state.limits
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


def inspect(st, data: bytes, name: str):
    """Parse and check an uploaded ciphertext; returns (ciphertext, classifier). Header checks come before
    any decompression."""
    limits = st.limits
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
    clf = st.models.resolve(ct.classifier)
    c, hh, ww = ct.pixels.shape[2], ct.pixels.shape[0], ct.pixels.shape[1]
    try:
        clf.check_input((c, hh, ww))
    except InputError as e:
        raise ServiceError(422, "wrong_shape", f"{name}: {e}") from None
    return ct, clf


async def classify(st, ct, clf) -> int:
    """The label, from the micro-batcher (503 when its queue is full, 504 after ``classify_timeout_s``)."""
    limits = st.limits
    try:
        fut = st.batcher.submit(clf, np.ascontiguousarray(ct.pixels))
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


@router.post("/v1/classify", openapi_extra=PNG_BODY, tags=["cloud"],
          summary="Classify one ciphertext (nothing is stored)")
async def post_classify(request: Request, t: Tenant):
    st = request.app.state
    data = await read_body(request)
    ct, clf = await run_in_threadpool(inspect, st, data, "upload")
    return result(ct, clf, await classify(st, ct, clf))


@router.post("/v1/images", openapi_extra=PNG_BODY, tags=["store"], status_code=201,
          summary="Store and classify one ciphertext")
async def post_image(request: Request, t: Tenant,
                     name: Annotated[str | None, Query(description="file name kept for ric pull (*.png)")] = None):
    st = request.app.state
    store, limits = st.store, st.limits
    if name is not None:
        check_name(name)
    data = await read_body(request)
    name = name or hashlib.sha256(data).hexdigest()[:16] + ".png"
    ct, clf = await run_in_threadpool(inspect, st, data, name)
    known = await run_in_threadpool(store.existing, t, hashlib.sha256(data).hexdigest(), name)
    if known is not None:  # a retried upload: nothing to do
        return JSONResponse(known.public(), status_code=200)
    label = await classify(st, ct, clf)
    img, created = await run_in_threadpool(store.put, t, data, name, label, clf.class_names[label], clf.ident,
                                           ct.scheme_name, limits.max_images_per_tenant)
    return JSONResponse(img.public(), status_code=201 if created else 200)


@router.get("/v1/images", tags=["store"], summary="List this tenant's images")
async def list_images(request: Request, t: Tenant, label: Annotated[int | None, Query(ge=0)] = None,
                      cls: Annotated[str | None, Query(alias="class", max_length=200)] = None,
                      limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
                      offset: Annotated[int, Query(ge=0)] = 0):
    rows, total = await run_in_threadpool(request.app.state.store.list, t, label, cls, limit, offset)
    return {"images": [r.public() for r in rows], "total": total, "limit": limit, "offset": offset}


@router.get("/v1/images/{image_id}", tags=["store"], summary="The stored bytes, exactly",
         responses={200: {"content": {"image/png": {}}}})
async def get_image(request: Request, image_id: str, t: Tenant):
    got = await run_in_threadpool(request.app.state.store.read, t, image_id)
    if got is None:
        raise ServiceError(404, "not_found", f"no image {quote(image_id)} for this tenant")
    img, data = got
    return Response(data, media_type="image/png",
                    headers={"ETag": f'"{img.id}"', "Cache-Control": "private, no-store",
                             "X-Content-Type-Options": "nosniff"})


@router.delete("/v1/images/{image_id}", tags=["store"], summary="Delete one image")
async def delete_image(request: Request, image_id: str, t: Tenant):
    if not await run_in_threadpool(request.app.state.store.delete, t, image_id):
        raise ServiceError(404, "not_found", f"no image {quote(image_id)} for this tenant")
    return {"deleted": image_id}


@router.get("/healthz", tags=["service"], summary="Liveness, loaded classifiers, queue length")
async def healthz(request: Request):
    st = request.app.state
    return {"status": "ok", "classifiers": sorted(st.models.by_ident), "queue": st.batcher.q.qsize(),
            "batching": st.limits.max_batch > 1, "max_batch": st.limits.max_batch,
            "batches": dict(st.batcher.stats)}

PAGE_HEADERS = {"Content-Security-Policy": PAGE_CSP, "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}


@router.get("/", include_in_schema=False)
async def page():
    return FileResponse(STATIC / "page.html", media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)


@router.get("/static/{fname}", include_in_schema=False)
async def static(fname: str):
    types = {"page.js": "text/javascript; charset=utf-8", "page.css": "text/css; charset=utf-8",
             "swagger-ui-bundle.js": "text/javascript; charset=utf-8", "swagger-ui.css": "text/css; charset=utf-8",
             "swagger-favicon.png": "image/png"}
    if fname not in types:
        raise ServiceError(404, "not_found", "no such file")
    return FileResponse(STATIC / fname, media_type=types[fname], headers=PAGE_HEADERS)
