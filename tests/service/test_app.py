"""The cloud service through FastAPI's TestClient: the API, tenants, limits and abuse cases (each a 4xx
with a JSON error and nothing stored), the store's crash recovery, the batcher, the client and its CLI verbs."""

import hashlib
import os
import threading
import time
import warnings

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

with warnings.catch_warnings():  # newer Starlette asks for httpx2 in its TestClient; httpx still works
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient  # noqa: E402

from ric.api import encrypt_files, sample_images  # noqa: E402
from ric.classifiers import load_classifier  # noqa: E402
from ric.cli import main  # noqa: E402
from ric.client import Cloud, CloudError, pull_files, push_files  # noqa: E402
from ric.container import Ciphertext, read_ciphertext  # noqa: E402
from ric.errors import InputError  # noqa: E402
from ric.keys import new_nonce  # noqa: E402
from ric.service.app import create_app  # noqa: E402
from ric.service.batcher import Batcher, Busy  # noqa: E402
from ric.service.store import Store, StoreError, check_name  # noqa: E402
from tests import _png  # noqa: E402

URL = "http://testserver"


@pytest.fixture(scope="session")
def clf():
    return load_classifier("svhn-cnn7")


@pytest.fixture(scope="session")
def cts(tmp_path_factory, key):
    """Six exact-scheme ciphertexts of the shipped samples."""
    d = tmp_path_factory.mktemp("service-ct")
    files, _ = sample_images()
    rows = encrypt_files(files[:6], d / "ct", key)
    assert all(r["status"] == "encrypted" for r in rows)
    return sorted((d / "ct").iterdir())


@pytest.fixture
def svc(tmp_path, clf):
    """(TestClient, store, token of tenant alice, token of tenant bob)."""
    app = create_app(tmp_path / "store", classifiers=[clf])
    store = app.state.store
    alice, bob = store.add_token("alice"), store.add_token("bob")
    with TestClient(app) as c:
        yield c, store, alice, bob


def auth(token):
    return {"Authorization": f"Bearer {token}"}


def png(c, data, token, name=None):
    """POST /v1/images with a file (its name by default) or bytes."""
    if hasattr(data, "read_bytes"):
        name, data = name or data.name, data.read_bytes()
    return c.post("/v1/images", content=data, params={"name": name} if name else {},
                  headers={**auth(token), "Content-Type": "image/png"})


def assert_nothing_stored(store):
    chk = store.check()
    assert chk["rows"] == 0 and chk["blobs"] == 0 and chk["temp_files"] == [] and chk["orphans"] == []
    assert store.db.execute("SELECT count(*) FROM images").fetchone()[0] == 0


def assert_json_error(r, status):
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error", "message"} and body["error"] and body["message"], body
    return body


# ------------------------------------------------------------------------------------------ the API
def test_health_docs_and_page(svc):
    c, _, alice, _ = svc
    assert c.get("/healthz").json() == {"status": "ok"}  # no token: liveness only, no counters
    h = c.get("/healthz", headers=auth(alice)).json()
    assert h["status"] == "ok" and h["classifiers"][0].startswith("svhn-cnn7@") and h["batching"]
    assert "requests" in h["batches"] and "in_flight" in h["connections"]
    assert_json_error(c.get("/healthz", headers=auth("ric_wrong")), 401)
    spec = c.get("/openapi.json").json()
    assert {"/v1/classify", "/v1/images", "/v1/images/{image_id}", "/healthz"} <= set(spec["paths"])
    assert "image/png" in spec["paths"]["/v1/images"]["post"]["requestBody"]["content"]
    docs = c.get("/docs")  # Swagger UI from the vendored files: no CDN, so it works offline
    assert docs.status_code == 200 and "/static/swagger-ui-bundle.js" in docs.text and "http" not in docs.text
    for f, kind in (("swagger-ui-bundle.js", "javascript"), ("swagger-ui.css", "css"), ("swagger-favicon.png", "png")):
        r = c.get(f"/static/{f}")
        assert r.status_code == 200 and kind in r.headers["content-type"] and len(r.content) > 500
    assert c.get("/redoc").status_code == 404  # ReDoc would need a CDN
    page = c.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "/static/page.js" in page.text and "token" not in page.headers.get("set-cookie", "")
    js = c.get("/static/page.js")
    assert js.status_code == 200 and "Authorization" in js.text and "innerHTML" not in js.text
    assert_json_error(c.get("/static/../app.py"), 404)


def test_classify_labels_like_the_ciphertext_target_and_stores_nothing(svc, cts):
    c, store, alice, _ = svc
    for p in cts:
        r = c.post("/v1/classify", content=p.read_bytes(), headers=auth(alice))
        assert r.status_code == 200, r.text
        body = r.json()
        ct = read_ciphertext(p)
        assert body["label"] == ct.target and body["class"] == str(ct.target)  # the exact scheme's C(c) = t
        assert f"{body['classifier']}@{body['fingerprint']}" == ct.classifier and body["scheme"] == "exact"
    assert_nothing_stored(store)


def test_store_list_get_delete(svc, cts):
    c, store, alice, _ = svc
    ids = {}
    for p in cts:
        r = png(c, p, alice)
        assert r.status_code == 201, r.text
        rec = r.json()
        assert rec["id"] == hashlib.sha256(p.read_bytes()).hexdigest() and rec["name"] == p.name
        assert rec["label"] == read_ciphertext(p).target
        ids[p.name] = rec["id"]
    again = png(c, cts[0], alice)  # a retried upload: the stored record, nothing new
    assert again.status_code == 200 and again.json()["id"] == ids[cts[0].name]
    listing = c.get("/v1/images", headers=auth(alice)).json()
    assert listing["total"] == len(cts) and {i["name"] for i in listing["images"]} == {p.name for p in cts}
    lab = read_ciphertext(cts[0]).target
    only = c.get("/v1/images", params={"label": lab}, headers=auth(alice)).json()["images"]
    assert only and all(i["label"] == lab for i in only)
    for p in cts:
        r = c.get(f"/v1/images/{ids[p.name]}", headers=auth(alice))
        assert r.status_code == 200 and r.content == p.read_bytes() and r.headers["content-type"] == "image/png"
    # a name already used for other bytes, and the same bytes under another name: 409, nothing stored
    assert_json_error(png(c, cts[1].read_bytes(), alice, name=cts[0].name), 409)
    assert_json_error(png(c, cts[1].read_bytes(), alice, name="other.png"), 409)
    assert c.delete(f"/v1/images/{ids[cts[0].name]}", headers=auth(alice)).json() == {"deleted": ids[cts[0].name]}
    assert_json_error(c.get(f"/v1/images/{ids[cts[0].name]}", headers=auth(alice)), 404)
    assert_json_error(c.delete(f"/v1/images/{ids[cts[0].name]}", headers=auth(alice)), 404)
    assert not store.blob_path(ids[cts[0].name]).exists()
    chk = store.check()
    assert chk["rows"] == len(cts) - 1 == chk["blobs"] and not (chk["orphans"] or chk["missing"] or chk["corrupt"])


def test_tenants_are_isolated(svc, cts):
    c, store, alice, bob = svc
    rec = png(c, cts[0], alice).json()
    assert c.get("/v1/images", headers=auth(bob)).json() == {"images": [], "total": 0, "limit": 1000, "offset": 0}
    assert_json_error(c.get(f"/v1/images/{rec['id']}", headers=auth(bob)), 404)
    assert_json_error(c.delete(f"/v1/images/{rec['id']}", headers=auth(bob)), 404)
    assert c.get(f"/v1/images/{rec['id']}", headers=auth(alice)).status_code == 200
    # bob may store the same bytes; both keep them, one blob; alice deleting hers leaves bob's
    assert png(c, cts[0], bob).status_code == 201
    assert c.delete(f"/v1/images/{rec['id']}", headers=auth(alice)).status_code == 200
    assert c.get(f"/v1/images/{rec['id']}", headers=auth(bob)).content == cts[0].read_bytes()


# ------------------------------------------------------------------------------ abuse: 4xx, JSON, nothing stored
def _ct_bytes(classifier, shape=(32, 32, 3)):
    """A structurally valid ciphertext (the server cannot check tags: it has no key)."""
    px = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    return Ciphertext(px, "", new_nonce(), 1, "0" * 16, tag=b"\x01" * 32, classifier=classifier, scheme="exact",
                      bits=6).to_png()


def test_abuse_cases(svc, cts, clf):
    c, store, alice, bob = svc
    good = cts[0].read_bytes()
    name_fp = clf.ident.rpartition("@")
    cases = {
        "no token": (c.post("/v1/images", content=good, params={"name": "a.png"}), 401),
        "bad token": (png(c, good, "ric_" + "x" * 43, name="a.png"), 401),
        "not bearer": (c.post("/v1/images", content=good, headers={"Authorization": f"Basic {alice}"}), 401),
        "oversized (Content-Length)": (png(c, good + b"\0" * (9 << 20), alice, name="a.png"), 413),
        "oversized (streamed)": (c.post("/v1/images", headers=auth(alice), params={"name": "a.png"},
                                        content=iter([good[:8]] + [b"\0" * (1 << 20)] * 9)), 413),
        "non-PNG": (png(c, b"GIF89a" + b"\0" * 100, alice, name="a.png"), 415),
        "empty": (png(c, b"", alice, name="a.png"), 400),
        "plain PNG": (png(c, _png.join([t for t in _png.split(good) if t[0] != b"tEXt"]), alice, name="a.png"), 422),
        "unknown classifier (code spec)": (png(c, _ct_bytes("os:system@0123456789abcdef"), alice, name="a.png"), 422),
        "unknown classifier (other model)": (png(c, _ct_bytes("mnist-cnn5@0123456789abcdef"), alice, name="a.png"),
                                             422),
        "same name, other fingerprint": (png(c, _ct_bytes(f"{name_fp[0]}@{'f' * 16}"), alice, name="a.png"), 422),
        "grey for an RGB classifier": (png(c, _ct_bytes(clf.ident, (32, 32, 1)), alice, name="a.png"), 422),
        "image too large (header)": (png(c, _png.header_only(5000, 5000, colour=2), alice, name="a.png"), 413),
        "corrupt PNG": (png(c, good[:-20] + bytes([good[-20] ^ 1]) + good[-19:], alice, name="a.png"), 400),
        "path in name": (png(c, good, alice, name="../evil.png"), 422),
        "hidden name": (png(c, good, alice, name=".evil.png"), 422),
        "not .png": (png(c, good, alice, name="evil.sh"), 422),
        "bad label query": (c.get("/v1/images", params={"label": "x"}, headers=auth(alice)), 422),
        "bad id": (c.get("/v1/images/..%2Findex.sqlite3", headers=auth(alice)), 404),
    }
    for what, (r, status) in cases.items():
        body = assert_json_error(r, status)
        assert "Traceback" not in body["message"], what
    assert "www-authenticate" in cases["no token"][0].headers
    assert "not loaded" in cases["unknown classifier (code spec)"][0].json()["message"]
    assert "fingerprints differ" in cases["same name, other fingerprint"][0].json()["message"]
    for r in (c.post("/v1/classify", content=_ct_bytes("os:system@0123456789abcdef"), headers=auth(alice)),
              c.post("/v1/classify", content=b"hello", headers=auth(alice))):
        assert r.status_code in (415, 422)
    assert_nothing_stored(store)


def test_rate_limit_per_tenant(tmp_path, clf, cts):
    app = create_app(tmp_path / "s", classifiers=[clf], rate=1.0, burst=2)
    a, b = app.state.store.add_token("a"), app.state.store.add_token("b")
    with TestClient(app) as c:
        codes = [c.get("/v1/images", headers=auth(a)).status_code for _ in range(3)]
        assert codes == [200, 200, 429]
        r = c.get("/v1/images", headers=auth(a))
        assert_json_error(r, 429)
        assert int(r.headers["retry-after"]) >= 1
        assert c.get("/v1/images", headers=auth(b)).status_code == 200  # another tenant's bucket


def test_quota(tmp_path, clf, cts):
    app = create_app(tmp_path / "s", classifiers=[clf], max_images_per_tenant=2)
    t = app.state.store.add_token("a")
    with TestClient(app) as c:
        assert [png(c, p, t).status_code for p in cts[:3]] == [201, 201, 403]
        assert app.state.store.check()["rows"] == 2


# ------------------------------------------------------------------------------------------ store
def test_store_recovers_from_a_crash(tmp_path, cts):
    s = Store(tmp_path / "s", serving=True)
    tid = s.tenant_for(s.add_token("a"))[0]
    img, created = s.put(tid, cts[0].read_bytes(), cts[0].name, 1, "1", "svhn-cnn7@x", "exact")
    assert created
    (s.tmp / "half-written.tmp").write_bytes(b"partial")  # crash while writing
    orphan = "ab" + "0" * 62
    (s.blobs / "ab").mkdir(exist_ok=True)
    (s.blobs / "ab" / orphan).write_bytes(b"renamed, never committed")  # crash between rename and commit
    with pytest.raises(InputError, match="in use"):
        Store(tmp_path / "s", serving=True)  # one server per store
    s.close()
    s2 = Store(tmp_path / "s", serving=True)
    assert s2.recovered == {"temp_files_removed": 1, "orphan_blobs_quarantined": 1, "rows_without_blob": 0}
    assert (s2.quarantine / orphan).read_bytes() == b"renamed, never committed"  # moved aside, not deleted
    chk = s2.check()
    assert chk["rows"] == 1 and not (chk["orphans"] or chk["temp_files"] or chk["missing"] or chk["corrupt"])
    assert s2.read(tid, img.id)[1] == cts[0].read_bytes()
    s2.close()


def test_failed_write_leaves_nothing(tmp_path, cts, monkeypatch):
    s = Store(tmp_path / "s", serving=True)
    tid = s.tenant_for(s.add_token("a"))[0]

    def boom(*a):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        s.put(tid, cts[0].read_bytes(), cts[0].name, 1, "1", "c@x", "exact")
    monkeypatch.undo()
    assert_nothing_stored(s)
    s.close()


def test_token_cli_prints_token_last_and_stores_only_its_hash(tmp_path, capsys):
    assert main(["serve", "token", "add", "alice", "--store", str(tmp_path / "s")]) == 0
    token = capsys.readouterr().out.strip().splitlines()[-1]
    assert token.startswith("ric_") and len(token) > 40
    s = Store(tmp_path / "s")
    assert s.tenant_for(token)[1] == "alice" and s.tenant_for(token + "x") is None
    s.close()
    raw = b"".join(p.read_bytes() for p in (tmp_path / "s").iterdir() if p.is_file())
    assert token.encode() not in raw and hashlib.sha256(token.encode()).hexdigest().encode() in raw
    assert main(["serve", "token", "add", "../evil", "--store", str(tmp_path / "s")]) == 2
    assert main(["serve", "token", "revoke", "alice", "--store", str(tmp_path / "s")]) == 0
    s = Store(tmp_path / "s")
    assert s.tenant_for(token) is None
    s.close()


@pytest.mark.parametrize("name", ["a.png", "photo 1.PNG", "été.png"])
def test_check_name_accepts(name):
    assert check_name(name) == name


@pytest.mark.parametrize("name", ["", ".png", "../a.png", "a/b.png", "a\\b.png", "a\x1b[31m.png", "a.png\n",
                                  " a.png", "a.jpg", "x" * 300 + ".png", "..", "."])
def test_check_name_refuses(name):
    with pytest.raises(StoreError):
        check_name(name)


# ------------------------------------------------------------------------------------------ batcher
class _SlowClassifier:
    def __init__(self, delay=0.0):
        self.delay, self.calls = delay, []

    def predict(self, x):
        import torch

        self.calls.append(len(x))
        time.sleep(self.delay)
        return torch.arange(len(x)) % 10


def test_batcher_shares_forward_passes_and_can_be_switched_off():
    for max_batch, expect_calls in ((64, 1), (1, 8)):
        clf = _SlowClassifier()
        b = Batcher(max_batch=max_batch, max_wait=0.3)
        futs = [b.submit(clf, np.zeros((4, 4, 3), np.uint8)) for _ in range(8)]
        labels = [f.result(5) for f in futs]
        b.close()
        assert len(clf.calls) == expect_calls and sum(clf.calls) == 8
        assert labels == (list(range(8)) if max_batch > 1 else [0] * 8)


def test_batcher_queue_is_bounded_in_pixels():
    clf = _SlowClassifier(delay=1.0)
    b = Batcher(max_batch=1, max_wait=0, max_pixels=2 * 12)  # two 2x2x3 images, waiting or being classified
    first = b.submit(clf, np.zeros((2, 2, 3), np.uint8))
    deadline = time.monotonic() + 5
    while b.queued() and time.monotonic() < deadline:  # the worker took the first one
        time.sleep(0.01)
    b.submit(clf, np.zeros((2, 2, 3), np.uint8))
    with pytest.raises(Busy):  # the one in the forward pass still counts
        b.submit(clf, np.zeros((2, 2, 3), np.uint8))
    assert first.result(5) == 0
    b.close()


def test_concurrent_requests_share_batches(tmp_path, clf, cts):
    app = create_app(tmp_path / "s", classifiers=[clf], batch_wait_s=0.5)
    t = app.state.store.add_token("a")
    with TestClient(app) as c:
        out = [None] * 8

        def one(i):
            out[i] = c.post("/v1/classify", content=cts[i % len(cts)].read_bytes(), headers=auth(t)).status_code

        threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
        [th.start() for th in threads]
        [th.join() for th in threads]
        assert out == [200] * 8
        assert app.state.batcher.stats["largest_batch"] > 1


# ------------------------------------------------------------------------------------------ client and CLI verbs
def test_client_push_pull_round_trip(svc, cts, tmp_path):
    c, store, alice, _ = svc
    cloud = Cloud(URL, alice, client=c)
    rows = push_files(cts, cloud)
    assert [r["status"] for r in rows] == ["stored"] * len(cts)
    assert [r["status"] for r in push_files(cts, cloud)] == ["exists"] * len(cts)
    out = tmp_path / "pulled"
    got = pull_files(cloud, out)
    assert sorted(r["status"] for r in got) == ["pulled"] * len(cts)
    for p in cts:
        assert (out / p.name).read_bytes() == p.read_bytes()
    assert {r["status"] for r in pull_files(cloud, out)} == {"skipped"}
    lab = rows[0]["label"]
    assert {r["label"] for r in pull_files(cloud, tmp_path / "one", label=lab)} == {lab}
    # a different file already there is never replaced; nothing is written
    (tmp_path / "clash").mkdir()
    (tmp_path / "clash" / cts[-1].name).write_bytes(b"mine")
    with pytest.raises(InputError, match="refusing to overwrite"):
        pull_files(cloud, tmp_path / "clash")
    assert [p.name for p in (tmp_path / "clash").iterdir()] == [cts[-1].name]
    assert cloud.classify(cts[0])["label"] == rows[0]["label"]
    cloud.delete(rows[0]["id"])
    assert len(cloud.list()) == len(cts) - 1
    with pytest.raises(CloudError) as e:
        Cloud(URL, "ric_wrong", client=c).list()
    assert e.value.status == 401 and "unknown or revoked token" in str(e.value)


def test_client_refuses_unsafe_names_from_the_server(tmp_path, monkeypatch):
    cloud = Cloud.__new__(Cloud)
    monkeypatch.setattr(Cloud, "list", lambda self, label=None, cls=None: [
        {"id": "0" * 64, "name": "../../etc/evil.png", "label": 0, "class": "0"}])
    with pytest.raises(CloudError, match="unsafe file name"):
        pull_files(cloud, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_client_checks_pulled_bytes_against_the_id(svc, cts):
    c, _, alice, _ = svc
    cloud = Cloud(URL, alice, client=c)
    rec = cloud.push(cts[0])
    assert cloud.pull(rec["id"]) == cts[0].read_bytes()
    cloud._request = lambda *a, **k: type("R", (), {"content": b"tampered"})()
    with pytest.raises(CloudError, match="do not match"):
        cloud.pull(rec["id"])


def test_cli_verbs_errors(tmp_path, cts, capsys):
    tok = tmp_path / "tok"
    tok.write_text("ric_abc\n")
    assert main(["classify", str(cts[0]), "--token-file", str(tok)]) == 2  # --token-file without --url
    assert "--url" in capsys.readouterr().err
    assert main(["classify", str(cts[0]), "--url", "http://127.0.0.1:9"]) == 2
    assert "--token-file" in capsys.readouterr().err
    (tmp_path / "empty").write_text("\n")
    assert main(["push", str(cts[0]), "--url", "http://127.0.0.1:9", "--token-file", str(tmp_path / "empty")]) == 2
    assert "holds no token" in capsys.readouterr().err
    assert main(["push", str(cts[0]), "--url", "http://127.0.0.1:9", "--token-file", str(tok)]) == 2
    assert "cannot reach" in capsys.readouterr().err
    plain = tmp_path / "plain.png"
    plain.write_bytes(_png.join([t for t in _png.split(cts[0].read_bytes()) if t[0] != b"tEXt"]))
    assert main(["push", str(plain), "--url", "http://127.0.0.1:9", "--token-file", str(tok)]) == 2
    assert "not a RIC ciphertext" in capsys.readouterr().err  # checked before anything is sent
    assert main(["serve", "--port", "1"]) == 2
    assert "--store" in capsys.readouterr().err
