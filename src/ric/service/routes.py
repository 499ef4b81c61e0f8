"""The HTTP endpoints (an ``APIRouter`` included by :func:`ric.service.app.create_app`); each reads what it needs
(store, limits, loaded classifiers, batcher) from ``request.app.state``."""

from __future__ import annotations

import asyncio
import hashlib
import struct
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from ric.container import max_subpixels, read_ciphertext_bytes
from ric.errors import CiphertextError, InputError, NotACiphertextError, quote
from ric.service.batcher import Busy
from ric.service.core import PAGE_CSP, PNG_BODY, STATIC, Bearer, ServiceError, Tenant, authenticate, png_size
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


# PNG chunks a ciphertext may carry besides IHDR, IDAT and IEND: text (the RIC metadata) and the small standard
# ones that PNG tools add. Anything else (private chunks above all) is refused: the service stores pixels and
# their metadata, not files hidden beside them.
ANCILLARY_OK = frozenset({b"tEXt", b"zTXt", b"iTXt", b"tIME", b"pHYs", b"sRGB", b"gAMA", b"cHRM", b"iCCP", b"sBIT",
                          b"bKGD"})


def check_upload(limits, data: bytes, name: str) -> int:
    """Checks of an upload from its chunk headers alone, before anything is decompressed; returns the image's
    sub-pixels (what it will cost decoded). Refuses: not a PNG (415); over ``max_pixels`` (413); more sub-pixels
    than its bytes can hold as a ciphertext (413, see :class:`~ric.service.limits.Limits`); chunks other than the
    image data over ``max_meta_bytes`` (413); a chunk type a ciphertext does not have, or image data padded
    beyond what deflate needs (422)."""
    size = png_size(data)
    if size is None:
        raise ServiceError(415, "not_png", "the body is not a PNG image: send a RIC ciphertext PNG")
    w, h = size
    if w * h > limits.max_pixels:
        raise ServiceError(413, "image_too_large", f"image is {h}x{w} pixels, over this server's limit of "
                                                   f"{limits.max_pixels} pixels")
    c = {0: 1, 2: 3}.get(data[25] if len(data) > 25 else -1, 4)  # colour type: grey, RGB (else the parser refuses)
    n = w * h * c
    if n > max_subpixels(len(data), limits.min_bits_per_subpixel):
        raise ServiceError(413, "image_too_large",
                           f"{name}: the header declares {h}x{w}x{c} sub-pixels in {len(data)} bytes, more than a "
                           f"ciphertext of that size holds (at least {limits.min_bits_per_subpixel:g} bits per "
                           "sub-pixel): not decoded")
    meta, idat = _chunk_bytes(data, name, limits.max_meta_bytes)
    if idat > h * (1 + w * c) * 1.001 + 1024:
        raise ServiceError(422, "bad_ciphertext", f"{name}: {idat} bytes of image data for {h}x{w}x{c} pixels: "
                                                  "padded beyond what deflate needs")
    return n


def _chunk_bytes(data: bytes, name: str, max_meta: int) -> tuple[int, int]:
    """(bytes outside the image data, image data bytes), walking the chunk headers only (no CRCs: the parser
    checks those); stops as soon as the metadata is over ``max_meta``."""
    pos, meta, idat = 8, 8, 0
    while pos + 12 <= len(data):
        (n,) = struct.unpack_from(">I", data, pos)
        typ = bytes(data[pos + 4:pos + 8])
        if typ == b"IDAT":
            idat += n
            meta += 12
        else:
            meta += 12 + n
            if typ not in (b"IHDR", b"IEND") and typ not in ANCILLARY_OK:
                raise ServiceError(422, "bad_ciphertext", f"{name}: PNG chunk {quote(typ.decode('latin-1'))} is "
                                                          "not part of a RIC ciphertext (private or unknown chunk)")
        if meta > max_meta:
            raise ServiceError(413, "too_large", f"{name}: more than {max_meta} bytes of PNG chunks besides the "
                                                 "image data")
        pos += 12 + n
        if typ == b"IEND":
            break
    return meta, idat


def inspect(st, data: bytes, name: str):
    """Parse and check an uploaded ciphertext (decoded once); returns (ciphertext, classifier)."""
    limits = st.limits
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


def admit(st, n: int):
    """A ticket for ``n`` sub-pixels of the classify budget (503 when it is spent)."""
    try:
        return st.batcher.admit(n)
    except Busy as e:
        raise ServiceError(503, "busy", str(e), {"Retry-After": "1"}) from None


async def classify(st, ct, clf, ticket) -> int:
    """The label, from the micro-batcher (504 after ``classify_timeout_s``)."""
    limits = st.limits
    fut = st.batcher.submit(clf, np.ascontiguousarray(ct.pixels), ticket)
    try:
        label = await asyncio.wait_for(asyncio.wrap_future(fut), limits.classify_timeout_s)
    except asyncio.TimeoutError:
        fut.cancel()
        raise ServiceError(504, "timeout",
                           f"classification took longer than {limits.classify_timeout_s:g} s") from None
    return label


async def decode_and_classify(st, data: bytes, name: str, n: int):
    """(ciphertext, classifier, label) for an upload that passed :func:`check_upload` (``n`` sub-pixels): the
    budget is taken before the upload is decoded and given back when its forward pass and this request are done."""
    ticket = admit(st, n)
    try:
        ct, clf = await run_in_threadpool(inspect, st, data, name)
        return ct, clf, await classify(st, ct, clf, ticket)
    finally:
        ticket.release()


def result(ct, clf, label) -> dict:
    return {"label": label, "class": clf.class_names[label], "classifier": clf.name,
            "fingerprint": clf.fingerprint, "scheme": ct.scheme_name}


@router.post("/v1/classify", openapi_extra=PNG_BODY, tags=["cloud"],
          summary="Classify one ciphertext (nothing is stored)")
async def post_classify(request: Request, t: Tenant):
    st = request.app.state
    data = await read_body(request)
    ct, clf, label = await decode_and_classify(st, data, "upload", check_upload(st.limits, data, "upload"))
    return result(ct, clf, label)


@router.post("/v1/images", openapi_extra=PNG_BODY, tags=["store"], status_code=201,
          summary="Store and classify one ciphertext")
async def post_image(request: Request, t: Tenant,
                     name: Annotated[str | None, Query(description="file name kept for ric pull (*.png)")] = None):
    st = request.app.state
    store, limits = st.store, st.limits
    if name is not None:
        check_name(name)
    data = await read_body(request)
    digest = hashlib.sha256(data).hexdigest()
    name = name or digest[:16] + ".png"
    n = check_upload(limits, data, name)
    known = await run_in_threadpool(store.existing, t, digest, name)
    if known is not None:  # a retried upload of bytes already checked and stored: nothing to do
        return JSONResponse(known.public(), status_code=200)
    ct, clf, label = await decode_and_classify(st, data, name, n)
    img, created = await run_in_threadpool(store.put, t, data, name, label, clf.class_names[label], clf.ident,
                                           ct.scheme_name, limits.max_images_per_tenant, limits.max_bytes_per_tenant)
    return JSONResponse(img.public(), status_code=201 if created else 200)


MAX_QUERY_INT = 999_999_999  # labels are at most 9 digits (ric:target); offsets are bounded the same way


@router.get("/v1/images", tags=["store"], summary="List this tenant's images")
async def list_images(request: Request, t: Tenant, label: Annotated[int | None, Query(ge=0, le=MAX_QUERY_INT)] = None,
                      cls: Annotated[str | None, Query(alias="class", max_length=200)] = None,
                      limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
                      offset: Annotated[int, Query(ge=0, le=MAX_QUERY_INT)] = 0):
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


@router.get("/healthz", tags=["service"], summary="Liveness; with a tenant token also the loaded classifiers, "
                                                   "queue and counters")
async def healthz(request: Request, creds: Bearer):
    """``{"status": "ok"}`` for anyone; the rest only with a valid token (401 for a wrong one)."""
    st = request.app.state
    if creds is None:
        return {"status": "ok"}
    await run_in_threadpool(authenticate, request, creds)
    b = st.batcher
    return {"status": "ok", "classifiers": sorted(st.models.by_ident), "stack": st.stack, "queue": b.queued(),
            "pending_pixels": b.pending_pixels, "batching": st.limits.max_batch > 1, "max_batch": st.limits.max_batch,
            "batches": dict(b.stats), "connections": dict(st.conn_stats)}


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
