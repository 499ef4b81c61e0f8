"""Connections that send nothing, or half a request head, cannot stop the service (hostile-peer issue, item 1):
a real uvicorn server with ``ric serve``'s settings, 300 such connections, and a tenant still gets its answers."""

import socket
import time

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from ric.classifiers import load_classifier  # noqa: E402
from ric.service.app import create_app  # noqa: E402
from tests.service._live import live  # noqa: E402


@pytest.fixture(scope="module")
def clf():
    return load_classifier("svhn-cnn7")


def _connect(port, src, head=b""):
    s = socket.socket()
    s.bind((src, 0))
    s.connect(("127.0.0.1", port))
    if head:
        s.sendall(head)
    return s


def _closed_by_server(s, wait=0.5) -> bool:
    """True if the server closed ``s`` (whatever it sent before is read and dropped)."""
    s.settimeout(wait)
    try:
        while s.recv(4096):
            pass
        return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_300_silent_or_half_sent_connections_and_a_tenant_still_gets_200(tmp_path, clf):
    app = create_app(tmp_path / "s", classifiers=[clf], header_timeout_s=3.0, max_connections_per_client=40)
    token = app.state.store.add_token("alice")
    socks = []
    with live(app) as (url, port):
        try:
            t0 = time.monotonic()
            for i in range(300):  # 30 from each of 10 addresses (under the per-address cap of 40); half send a
                head = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" if i % 2 else b""  # half-sent request head
                socks.append(_connect(port, f"127.0.0.{2 + i % 10}", head))
            with httpx.Client(timeout=5) as c:
                r = c.get(url + "/v1/images", headers={"Authorization": f"Bearer {token}"})
                assert r.status_code == 200, r.text  # ric serve's old limit_concurrency=128 answered 503 here
                assert c.get(url + "/healthz").json() == {"status": "ok"}
                h = c.get(url + "/healthz", headers={"Authorization": f"Bearer {token}"}).json()
            assert h["connections"]["connections"] >= 300 and h["connections"]["refused_connections"] == 0
            assert time.monotonic() - t0 < 2.8  # all of this happened before the header timeout
            time.sleep(t0 + 3.5 - time.monotonic())  # past the header timeout: the server closed every one of them
            assert all(_closed_by_server(s) for s in socks)
            assert app.state.conn_stats["header_timeouts"] >= 300
        finally:
            for s in socks:
                s.close()


def test_connections_per_client_address_are_capped(tmp_path, clf):
    app = create_app(tmp_path / "s", classifiers=[clf], max_connections_per_client=5)
    token = app.state.store.add_token("alice")
    socks = []
    with live(app) as (url, port):
        try:
            socks = [_connect(port, "127.0.0.9") for _ in range(8)]
            closed = [_closed_by_server(s, 0.3) for s in socks]
            assert closed == [False] * 5 + [True] * 3  # the sixth and later are closed at once
            with httpx.Client(timeout=5) as c:  # another address is not affected
                assert c.get(url + "/v1/images", headers={"Authorization": f"Bearer {token}"}).status_code == 200
            assert app.state.conn_stats["refused_connections"] == 3
        finally:
            for s in socks:
                s.close()


def test_a_keep_alive_connection_must_send_its_next_head_in_time(tmp_path, clf):
    app = create_app(tmp_path / "s", classifiers=[clf], header_timeout_s=0.5)
    with live(app) as (_, port):
        s = _connect(port, "127.0.0.1", b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            s.settimeout(2)
            got = b""
            while not got.endswith(b'"status":"ok"}'):
                got += s.recv(4096)
            assert got.startswith(b"HTTP/1.1 200")
            s.sendall(b"GET /healthz HTTP/1.1\r\n")  # one byte at a time would cancel uvicorn's keep-alive timer
            time.sleep(0.8)
            assert _closed_by_server(s)
        finally:
            s.close()


def _slow_upload(port, token):
    """A request that stays in flight: an authenticated upload whose body never comes (until the body timeout)."""
    head = (f"POST /v1/classify HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
            "Content-Type: image/png\r\nContent-Length: 1000\r\n\r\n\x89PNG").encode()
    s = _connect(port, "127.0.0.1", head)
    s.settimeout(5)
    return s


def _wait_for(cond, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not cond() and time.monotonic() < deadline:
        time.sleep(0.01)
    return cond()


def test_requests_in_flight_are_bounded_not_connections(tmp_path, clf):
    app = create_app(tmp_path / "s", classifiers=[clf], max_in_flight=2, body_timeout_s=1.0)
    token = app.state.store.add_token("alice")
    a = {"Authorization": f"Bearer {token}"}
    with live(app) as (url, port), httpx.Client(timeout=5) as c:
        idle = [_connect(port, "127.0.0.3") for _ in range(20)]  # hold no slot
        assert c.get(url + "/v1/images", headers=a).status_code == 200
        slow = [_slow_upload(port, token) for _ in range(2)]
        assert _wait_for(lambda: app.state.conn_stats["in_flight"] == 2)
        r = c.get(url + "/v1/images", headers=a)
        assert r.status_code == 503 and r.json()["error"] == "busy" and r.headers["retry-after"] == "1"
        assert all(s.recv(4096).startswith(b"HTTP/1.1 408") for s in slow)  # the body timeout frees them
        assert _wait_for(lambda: app.state.conn_stats["in_flight"] == 0)
        assert c.get(url + "/v1/images", headers=a).status_code == 200
        assert app.state.conn_stats["refused_in_flight"] == 1
        for s in idle + slow:
            s.close()


def test_requests_in_flight_per_tenant_are_bounded(tmp_path, clf):
    app = create_app(tmp_path / "s", classifiers=[clf], max_in_flight_per_tenant=1, body_timeout_s=2.0)
    ta, tb = app.state.store.add_token("a"), app.state.store.add_token("b")
    tid = app.state.store.tenant_for(ta)[0]
    with live(app) as (url, port), httpx.Client(timeout=5) as c:
        slow = _slow_upload(port, ta)
        assert _wait_for(lambda: app.state.tenant_slots.held(tid) == 1)  # authenticated, reading its body
        r = c.get(url + "/v1/images", headers={"Authorization": f"Bearer {ta}"})
        assert r.status_code == 429 and r.json()["error"] == "too_many_requests"
        assert c.get(url + "/v1/images", headers={"Authorization": f"Bearer {tb}"}).status_code == 200
        assert slow.recv(4096).startswith(b"HTTP/1.1 408")
        assert _wait_for(lambda: c.get(url + "/v1/images", headers={"Authorization": f"Bearer {ta}"}).status_code
                         == 200)
        slow.close()


def test_a_client_that_waits_for_its_answers_is_never_refused(tmp_path, clf):
    """A slot is given back before the client's next request is read: sequential requests at the limits of one
    request in flight, in all and per tenant, all get 200."""
    app = create_app(tmp_path / "s", classifiers=[clf], max_in_flight=1, max_in_flight_per_tenant=1, rate=0)
    token = app.state.store.add_token("alice")
    with live(app) as (url, _), httpx.Client(timeout=5, headers={"Authorization": f"Bearer {token}"}) as c:
        codes = [c.get(url + "/v1/images").status_code for _ in range(100)]
    assert codes == [200] * 100, sorted(set(codes))
