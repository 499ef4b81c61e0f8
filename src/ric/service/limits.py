"""The service's limits (:class:`Limits`), in a module of their own so that ``ric serve --help`` can show their
defaults without importing the web stack."""

from __future__ import annotations

from dataclasses import dataclass

from ric.container import MIN_SEALED_BITS


@dataclass
class Limits:
    """What one request, one tenant and all clients together may use. ``rate <= 0`` switches the rate limit off;
    ``max_batch=1`` switches micro-batching off; 0 switches off any of the connection and in-flight limits.

    Pixels are counted as sub-pixels (height × width × channels, the bytes of decoded uint8 pixels). An upload
    whose header declares more sub-pixels than ``8 × bytes / min_bits_per_subpixel`` is refused before it is
    decoded: every ciphertext the service accepts carries at least :data:`ric.container.MIN_SEALED_BITS`
    incompressible bits per sub-pixel (its sealed digits are AEAD output), so such a file cannot be one."""

    max_body_bytes: int = 8 << 20  # request body (a ciphertext PNG)
    max_pixels: int = 1 << 22  # image size (pixels), checked from the PNG header before anything is decoded
    min_bits_per_subpixel: float = MIN_SEALED_BITS  # declared sub-pixels per body byte at most 8 / this (0: off)
    max_meta_bytes: int = 64 << 10  # PNG chunks other than the image data (the RIC metadata is under 1 KiB)
    rate: float = 50.0  # requests per second per tenant (token bucket) ...
    burst: int = 100  # ... and its depth
    queue_max_pixels: int = 1 << 26  # sub-pixels decoded for classification and not yet classified, all requests
    batch_max_pixels: int = 1 << 24  # sub-pixels per forward pass (a larger single image goes alone)
    max_batch: int = 64  # images per forward pass
    batch_wait_s: float = 0.002  # how long the batcher waits for company after the first request
    classify_timeout_s: float = 30.0
    body_timeout_s: float = 30.0  # reading one request body
    max_images_per_tenant: int = 100_000
    max_bytes_per_tenant: int = 1 << 30  # stored ciphertext bytes per tenant
    max_in_flight: int = 32  # requests handled at once, all clients (503 beyond); idle connections hold none
    max_in_flight_per_tenant: int = 16  # requests one tenant has in flight (429 beyond)
    max_connections: int = 1024  # open connections in all (closed at once beyond)
    max_connections_per_client: int = 32  # open connections from one client address (closed at once beyond)
    header_timeout_s: float = 10.0  # a connection that sends no complete request head in this time is closed
