"""Uploads that would make the server work far beyond what they send, files hidden beside the pixels, and query
parameters out of range (hostile-peer issue, items 2, 9 and 10): refused before any decoding, 4xx, nothing stored."""

import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient  # noqa: E402

from ric.classifiers import load_classifier  # noqa: E402
from ric.container import Ciphertext  # noqa: E402
from ric.imageio import png_bytes, to_tensor  # noqa: E402
from ric.keys import new_nonce  # noqa: E402
from ric.preprocess import Preprocess  # noqa: E402
from ric.service.app import create_app  # noqa: E402
from tests import _png  # noqa: E402
from tests.service._live import PeakRSS, live  # noqa: E402

GIB = 1 << 30


@pytest.fixture(scope="module")
def resizing():
    """svhn-cnn7 declaring a resize to 32x32, so that it accepts ciphertexts of any size (as photo classifiers do)."""
    clf = load_classifier("svhn-cnn7")
    clf.preprocess = Preprocess("resize", (32, 32))
    clf.predict(to_tensor(np.zeros((1, 64, 64, 3), np.uint8)))  # warm up (the first resize is slow)
    return clf


def _ct(clf, pixels) -> bytes:
    """A structurally valid ciphertext for ``clf`` with these pixels (the server has no key: it cannot check tags),
    compressed as well as zlib can (an attacker's choice: ric itself writes stored blocks)."""
    ct = Ciphertext(pixels, "", new_nonce(), 1, "0" * 16, tag=b"\x01" * 32, classifier=clf.ident, scheme="exact",
                    bits=6)
    return png_bytes(ct.pixels, ct.text_chunks(), 9)


def _auth(token):
    return {"Authorization": f"Bearer {token}", "Content-Type": "image/png"}


def test_uploads_declaring_huge_zero_images_cost_the_server_nothing(tmp_path, resizing):
    """24 concurrent 2048x2048 all-zero uploads (tens of KB each): refused from the header; the server stays small
    and keeps answering. Before the fix each was decoded twice, turned into floats and resized."""
    bomb = _ct(resizing, np.zeros((2048, 2048, 3), np.uint8))
    assert len(bomb) < 64 << 10
    app = create_app(tmp_path / "s", classifiers=[resizing], rate=0, max_in_flight=64, max_in_flight_per_tenant=32)
    token = app.state.store.add_token("alice")
    with live(app) as (url, _), httpx.Client(timeout=60) as c, PeakRSS() as mem:
        def one(_):
            return c.post(url + "/v1/classify", content=bomb, headers=_auth(token))

        with ThreadPoolExecutor(24) as ex:
            answers = list(ex.map(one, range(24)))
        assert c.get(url + "/healthz").status_code == 200
    assert {r.status_code for r in answers} == {413}, answers[0].text
    assert "more than a ciphertext of that size holds" in answers[0].json()["message"]
    assert mem.growth < GIB, mem.growth
    assert app.state.batcher.stats["requests"] == 0  # nothing reached the model


def test_dense_uploads_are_budgeted_in_pixels(tmp_path, resizing):
    """Large uploads that are dense enough to be ciphertexts: at most ``queue_max_pixels`` sub-pixels are decoded
    at a time, the rest get 503 at once, and every forward pass holds at most ``batch_max_pixels``."""
    px = np.random.default_rng(0).integers(0, 16, (512, 512, 3), dtype=np.uint8)
    n = px.size
    slow = load_classifier("svhn-cnn7")
    slow.preprocess = resizing.preprocess
    fast = slow.predict
    slow.predict = lambda x: (time.sleep(1.0), fast(x))[1]  # a busy model: the budget must hold the rest off
    data = _ct(slow, px)
    app = create_app(tmp_path / "s", classifiers=[slow], rate=0, queue_max_pixels=3 * n, batch_max_pixels=n,
                     batch_wait_s=0.05, max_in_flight_per_tenant=32)
    token = app.state.store.add_token("alice")
    peak = [0]
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            peak[0] = max(peak[0], app.state.batcher.pending_pixels)

    with live(app) as (url, _), httpx.Client(timeout=60) as c, PeakRSS() as mem:
        th = threading.Thread(target=watch, daemon=True)
        th.start()
        with ThreadPoolExecutor(12) as ex:
            answers = list(ex.map(lambda _: c.post(url + "/v1/classify", content=data, headers=_auth(token)),
                                  range(12)))
        stop.set()
        th.join()
    codes = sorted(r.status_code for r in answers)
    assert 200 in codes and 503 in codes and set(codes) <= {200, 503}, codes
    busy = next(r for r in answers if r.status_code == 503)
    assert busy.json()["error"] == "busy" and busy.headers["retry-after"] == "1"
    assert 0 < peak[0] <= 3 * n and app.state.batcher.pending_pixels == 0
    assert app.state.batcher.stats["largest_batch"] == 1  # one image of n sub-pixels per pass
    assert mem.growth < GIB, mem.growth


@pytest.fixture
def svc(tmp_path):
    clf = load_classifier("svhn-cnn7")
    app = create_app(tmp_path / "store", classifiers=[clf])
    with TestClient(app) as c:
        yield c, app, app.state.store.add_token("alice"), clf


def test_private_chunks_and_padding_are_refused_and_nothing_is_stored(svc):
    c, app, token, clf = svc
    good = _ct(clf, np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8))
    private = _png.add_chunk(good, (b"prVt", b"\0" * (7 << 20)))  # a 7 MiB file beside 32x32 pixels
    comment = _png.add_chunk(good, _png.text("Comment", "x" * (7 << 20)))
    chunks = _png.split(good)
    idat = next(b for t, b in chunks if t == b"IDAT")
    stored_block_padding = bytes([0x00, 0x00, 0x00, 0xFF, 0xFF])  # an empty non-final stored block
    padded = _png.join([(t, b if t != b"IDAT" else b[:2] + stored_block_padding * 20_000 + b[2:]) for t, b in chunks])
    assert len(idat) < 5000 < len(padded) - len(good)
    for data, status, code in ((private, 422, "bad_ciphertext"), (comment, 413, "too_large"),
                               (padded, 422, "bad_ciphertext")):
        r = c.post("/v1/images", content=data, params={"name": "a.png"}, headers=_auth(token))
        assert r.status_code == status and r.json()["error"] == code, r.text
    assert "private or unknown chunk" in c.post("/v1/classify", content=private, headers=_auth(token)).json()["message"]
    assert app.state.store.check()["blobs"] == 0
    assert c.post("/v1/images", content=good, params={"name": "a.png"}, headers=_auth(token)).status_code == 201


def test_byte_quota_per_tenant(tmp_path):
    clf = load_classifier("svhn-cnn7")
    rng = np.random.default_rng(2)
    cts = [_ct(clf, rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)) for _ in range(3)]
    app = create_app(tmp_path / "s", classifiers=[clf], max_bytes_per_tenant=len(cts[0]) + len(cts[1]) + 10)
    a, b = app.state.store.add_token("a"), app.state.store.add_token("b")
    with TestClient(app) as c:
        codes = [c.post("/v1/images", content=d, params={"name": f"{i}.png"}, headers=_auth(a)).status_code
                 for i, d in enumerate(cts)]
        assert codes == [201, 201, 403]
        r = c.post("/v1/images", content=cts[2], params={"name": "2.png"}, headers=_auth(a))
        assert r.json()["error"] == "quota_exceeded" and "bytes" in r.json()["message"]
        assert c.post("/v1/images", content=cts[2], params={"name": "2.png"}, headers=_auth(b)).status_code == 201
        used = {r["tenant"]: r["bytes"] for r in app.state.store.tenants()}
        assert used == {"a": len(cts[0]) + len(cts[1]), "b": len(cts[2])}  # what `ric serve token list` shows


@pytest.mark.parametrize("query", [{"label": "99999999999999999999"}, {"label": str(2 ** 63)}, {"label": "-1"},
                                   {"offset": "99999999999999999999"}, {"offset": "-1"}, {"limit": "0"},
                                   {"limit": "99999999999999999999"}])
def test_query_parameters_out_of_range_are_a_422(svc, query):
    c, _, token, _ = svc
    r = c.get("/v1/images", params=query, headers=_auth(token))
    assert r.status_code == 422 and r.json()["error"] == "bad_request", r.text
