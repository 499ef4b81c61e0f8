"""The cloud as an HTTP service (``ric serve``): classify ciphertexts, keep them per tenant, give them back.

* :mod:`ric.service.store`: tenants, bearer-token hashes and a content-addressed ciphertext store (SQLite WAL
  index, atomic file writes, crash recovery on start). Needs only the standard library.
* :mod:`ric.service.batcher`: the micro-batching classify queue (concurrent requests share forward passes), with
  its budget of decoded pixels.
* :mod:`ric.service.limits`: what requests, tenants and connections may use (:class:`~ric.service.limits.Limits`).
* :mod:`ric.service.guard`: requests in flight, connections per client address, the request-head timeout.
* :mod:`ric.service.app`: the FastAPI application (:func:`create_app`) and :func:`serve` (uvicorn); needs the
  ``serve`` extra (``pip install -e '.[serve]'``, included in ``.[dev]``).

The service never needs or accepts a key: it sees noise-like ciphertexts and learns their labels.
"""

from __future__ import annotations


def create_app(*args, **kwargs):
    from ric.service.app import create_app as _create

    return _create(*args, **kwargs)


__all__ = ["create_app"]
