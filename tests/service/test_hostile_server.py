"""The client against a scripted hostile server. :class:`Hostile` answers the client's requests
through ``httpx.MockTransport`` with whatever a test scripts (repeated and case-folded names, endless or oversized
listings, malformed records, terminal escapes, unsafe names, bytes that are not ciphertexts) and records what it
was asked. The client must refuse each with one clear error (exit 2 from the CLI, no traceback) and write nothing,
or nothing beyond files it checked."""

import hashlib
import json
import warnings

import numpy as np
import pytest

httpx = pytest.importorskip("httpx")

from ric import client as client_mod  # noqa: E402
from ric.cli import main  # noqa: E402
from ric.client import Cloud, CloudError, PlainHTTPWarning, exposes_token, plan_pull, pull_files  # noqa: E402
from ric.container import Ciphertext  # noqa: E402
from ric.errors import InputError  # noqa: E402
from ric.files import check_file_name, name_key  # noqa: E402
from ric.keys import new_nonce  # noqa: E402
from ric.service.store import StoreError, check_name  # noqa: E402

URL = "http://127.0.0.1:8000"  # loopback: no plain-http warning; MockTransport: nothing leaves the process


def ciphertext(seed: int) -> bytes:
    """A well-formed ciphertext file (random pixels, signed under a throwaway key)."""
    from ric.keys import SecretKey

    px = np.random.default_rng(seed).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    return Ciphertext(px, "", new_nonce(), 1, "0" * 16, classifier="svhn-cnn7@" + "0" * 16, scheme="exact",
                      bits=6).sign(SecretKey.generate()).to_png()


def record(data: bytes, name: str, **kw) -> dict:
    return {"id": hashlib.sha256(data).hexdigest(), "name": name, "size": len(data), "label": 1, "class": "1",
            "classifier": "svhn-cnn7", "fingerprint": "0" * 16, "scheme": "exact", "created": 0.0, **kw}


def answer(body, status=200) -> "httpx.Response":
    """JSON as Python writes it (ASCII, so that lone surrogates travel as ``\\ud800`` escapes)."""
    return httpx.Response(status, content=json.dumps(body).encode(), headers={"Content-Type": "application/json"})


class Hostile:
    """A scripted server: ``pages(offset)`` gives a listing page (a dict, or an ``httpx.Response``), ``blobs`` the
    bytes served per id; every request is kept in ``seen`` (method, path) and ``requests``."""

    def __init__(self, pages=None, blobs=None):
        self.pages, self.blobs, self.seen, self.requests = pages, blobs or {}, [], []
        self.transport = httpx.MockTransport(self.handle)

    def handle(self, request):
        self.seen.append((request.method, request.url.path))
        self.requests.append(request)
        path = request.url.path
        if path == "/v1/images" and request.method == "GET":
            page = self.pages(int(request.url.params.get("offset", 0)))
            return page if isinstance(page, httpx.Response) else answer(page)
        if path.startswith("/v1/images/"):
            data = self.blobs.get(path.rsplit("/", 1)[1])
            return httpx.Response(200, content=data) if data is not None else httpx.Response(404, json={})
        return httpx.Response(404, json={"error": "not_found", "message": "no such route"})

    def cloud(self, **kw) -> Cloud:
        return Cloud(URL, "ric_token", client=httpx.Client(transport=self.transport), **kw)

    def fetched(self) -> int:
        return sum(p.startswith("/v1/images/") for _, p in self.seen)


def listing(*recs, total=None) -> callable:
    recs = list(recs)
    return lambda offset: {"images": recs[offset:offset + 1000], "total": len(recs) if total is None else total}


def served(*pairs) -> Hostile:
    """A server listing ``(name, data)`` pairs and serving their bytes."""
    recs = [record(d, n) for n, d in pairs]
    return Hostile(listing(*recs), {r["id"]: d for r, (_, d) in zip(recs, pairs, strict=True)})


@pytest.fixture
def cli_against(monkeypatch):
    """Run the CLI against a :class:`Hostile` server: every ``httpx.Client`` the client makes uses its transport."""
    real = httpx.Client

    def run(server: Hostile, argv: list[str], capsys):
        monkeypatch.setattr(httpx, "Client", lambda **kw: real(transport=server.transport, **kw))
        rc = main(argv)
        out, err = capsys.readouterr()
        return rc, out, err

    return run


def one_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "error:" in lines[0] and "Traceback" not in err, err
    assert "\x1b" not in err and "\x07" not in err and not any(0x80 <= ord(c) < 0xa0 for c in err), err
    return lines[0]


# ------------------------------------------------------------------------------------------ item 6: listings
@pytest.mark.parametrize("names", [("a.png", "a.png"), ("Photo.png", "photo.PNG"), ("\u00e9.png", "e\u0301.png"),
                                   ("STRASSE.png", "stra\u00dfe.png")])
def test_repeated_and_case_folded_names_are_refused_before_writing(tmp_path, names):
    server = served(*[(n, ciphertext(i)) for i, n in enumerate(names)])
    with pytest.raises(CloudError, match="lists the name .* twice.*nothing was pulled"):
        pull_files(server.cloud(), tmp_path / "out")
    assert not (tmp_path / "out").exists() and server.fetched() == 0


def test_one_image_listed_twice_is_refused(tmp_path):
    data = ciphertext(0)
    server = Hostile(listing(record(data, "a.png"), record(data, "b.png")), {hashlib.sha256(data).hexdigest(): data})
    with pytest.raises(CloudError, match="twice"):
        pull_files(server.cloud(), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_listing_claiming_a_huge_total_ends_with_an_error(tmp_path):
    n = [0]

    def endless(offset):  # non-empty pages of fresh names, for ever
        n[0] += 1
        return {"images": [record(ciphertext(0), f"p{n[0]}-{i}.png") for i in range(3)], "total": 10 ** 12}

    server = Hostile(endless)
    with pytest.raises(CloudError, match="lists more than 200000 images"):
        server.cloud().list()
    assert len(server.seen) == 1
    server = Hostile(lambda offset: {**endless(offset), "total": 50})  # a plausible total that is never reached
    with pytest.raises(CloudError, match="did not end after 2 pages"):
        server.cloud(max_records=50).list()
    assert len(server.seen) == 2
    server = Hostile(lambda offset: {"images": [record(ciphertext(0), f"{offset}-{i}.png") for i in range(20)],
                                     "total": 40})
    with pytest.raises(CloudError, match="more than 30 images"):
        server.cloud(max_records=30).list()


def test_answers_are_read_only_up_to_their_limit(tmp_path):
    sent = [0]

    def stream():
        while True:  # an endless body
            sent[0] += 1 << 16
            yield b" " * (1 << 16)

    server = Hostile(lambda offset: httpx.Response(200, content=stream()))
    with pytest.raises(CloudError, match=r"answer of more than 8388608 bytes; stopped reading"):
        server.cloud().list()
    assert sent[0] <= client_mod.MAX_JSON_BYTES + (1 << 17)
    # a declared length over the limit is refused before the body is read
    sent[0] = 0
    big = Hostile(lambda offset: httpx.Response(200, content=stream(), headers={"Content-Length": str(1 << 40)}))
    with pytest.raises(CloudError, match="more than"):
        big.cloud().list()
    assert sent[0] == 0
    # a pulled image is capped as well (at the ciphertext size limit), and so is an error answer
    rec = record(b"x", "a.png")
    server = Hostile(listing(rec))
    server.handle = lambda request: httpx.Response(200, content=stream(), headers={"Content-Length": str(1 << 40)})
    server.transport = httpx.MockTransport(server.handle)
    with pytest.raises(CloudError, match="more than 268435456 bytes"):
        server.cloud().pull(rec["id"])
    err = Hostile(lambda offset: httpx.Response(500, content=stream()))
    with pytest.raises(CloudError, match="answered 500") as e:
        err.cloud().list()
    assert len(str(e.value)) < 400


def test_compressed_answers_that_were_not_asked_for_are_refused():
    import gzip

    body = gzip.compress(json.dumps({"images": [], "total": 0}).encode() + b" " * (1 << 24))
    server = Hostile(lambda offset: httpx.Response(200, content=body, headers={"Content-Encoding": "gzip"}))
    with pytest.raises(CloudError, match="content encoding 'gzip'"):
        server.cloud().list()
    assert server.requests[0].headers["accept-encoding"] == "identity"


MALFORMED = [
    ({"images": ["x"], "total": 1}, "record 0 is malformed: not a JSON object"),
    ({"images": [{"id": "zz", "name": "a.png", "label": 1, "class": "1"}], "total": 1}, "'id' is not 64 hex"),
    ({"images": [record(b"a", "\ud800.png")], "total": 1}, "not valid Unicode"),
    ({"images": [record(b"a", 7)], "total": 1}, "unsafe file name"),
    ({"images": [record(b"a", "a.png", label="7")], "total": 1}, "'label' is not a class index"),
    ({"images": [record(b"a", "a.png", label=True)], "total": 1}, "'label' is not a class index"),
    ({"images": [record(b"a", "a.png", **{"class": ["x"]})], "total": 1}, "'class' is not a string"),
    ({"images": [record(b"a", "a.png", **{"class": "x" * 5000})], "total": 1}, "'class' is not a string"),
    ({"images": [record(b"a", "a.png", size=-1)], "total": 1}, "'size' is not a byte count"),
    ({"images": {}, "total": 1}, "malformed listing page"),
    ({"images": [], "total": "1"}, "malformed listing page"),
    ({"images": [], "total": 1.5}, "malformed listing page"),
    ({"images": [record(b"a", "a.png")] * 1001, "total": 5000}, "malformed listing page"),
    (["not", "an", "object"], "expected a JSON object"),
]


@pytest.mark.parametrize("page,message", MALFORMED, ids=range(len(MALFORMED)))
def test_malformed_records_give_a_clear_error(tmp_path, page, message):
    server = Hostile(lambda offset: page)
    with pytest.raises(CloudError, match=message):
        pull_files(server.cloud(), tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("body", [b"not json", b"\xff\xfe{", b"[" * 100_000 + b"]" * 100_000,
                                  b'{"total": 1' + b"1" * 5000 + b"}"], ids=["text", "utf16", "deep", "long-int"])
def test_answers_that_are_not_json_give_a_clear_error(body):
    server = Hostile(lambda offset: httpx.Response(200, content=body))
    with pytest.raises(CloudError, match="not valid JSON"):
        server.cloud().list()


def test_cli_pull_on_malformed_listings_exits_2_without_traceback(tmp_path, capsys, cli_against):
    (tmp_path / "tok").write_text("ric_token\n")
    argv = ["pull", "--url", URL, "--token-file", str(tmp_path / "tok"), "-o", str(tmp_path / "out")]
    for page in ({"images": ["x"], "total": 1}, {"images": [record(b"a", "\ud800.png")], "total": 1},
                 {"images": [record(b"a", "a.png"), record(b"b", "A.png")], "total": 2},
                 {"images": [record(b"a", "a.png")], "total": 10 ** 12}):
        rc, _, err = cli_against(Hostile(lambda offset, page=page: page), argv, capsys)
        assert rc == 2, err
        one_error(err)
    assert not (tmp_path / "out").exists()


def test_server_text_is_quoted(tmp_path, capsys, cli_against):
    """Terminal escapes in an error message and in class names reach the terminal only quoted."""
    evil = "\x1b[2J\x1b]0;owned\x07\u009b31m\u202egnp.exe"
    (tmp_path / "tok").write_text("ric_token\n")
    refuse = Hostile(lambda offset: httpx.Response(403, json={"error": "\x1b[1m", "message": evil}))
    rc, _, err = cli_against(refuse, ["pull", "--url", URL, "--token-file", str(tmp_path / "tok"), "-o",
                                      str(tmp_path / "out")], capsys)
    assert rc == 2 and "answered 403" in one_error(err) and "\\x1b[2J" in err
    # a classification answer whose class name holds escapes: quoted in the text output, escaped in --json
    ct = tmp_path / "c.png"
    ct.write_bytes(ciphertext(1))
    labels = Hostile()
    labels.handle = lambda request: httpx.Response(200, json={"label": 3, "class": evil, "classifier": "svhn-cnn7",
                                                              "fingerprint": "0" * 16, "scheme": "exact"})
    labels.transport = httpx.MockTransport(labels.handle)
    for extra in ([], ["--json"]):
        rc, out, err = cli_against(labels, ["classify", str(ct), "--url", URL, "--token-file", str(tmp_path / "tok"),
                                            *extra], capsys)
        assert rc == 0 and "\x1b" not in out and "\u202e" not in out and "\u009b" not in out, out
        assert ("\\x1b[2J" in out) if not extra else json.loads(out)["items"][0]["class"] == evil


def test_pulled_bytes_must_be_a_ciphertext(tmp_path, monkeypatch):
    """A server can serve any bytes whose SHA-256 is the id it lists; they are written only if they parse as a
    RIC ciphertext (here PostScript, which Pillow would hand to Ghostscript)."""
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\nshowpage\n"
    good = ciphertext(2)
    server = served(("a.png", good), ("b.png", eps))
    with pytest.raises(CloudError, match="b.png, which is not a RIC ciphertext"):
        pull_files(server.cloud(), tmp_path / "out")
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["a.png"]
    assert (tmp_path / "out" / "a.png").read_bytes() == good


def test_push_answers_must_name_the_bytes_and_name_sent():
    data = ciphertext(3)
    server = Hostile()
    server.handle = lambda request: httpx.Response(201, json=record(ciphertext(4), "a.png"))
    server.transport = httpx.MockTransport(server.handle)
    with pytest.raises(CloudError, match="not of the bytes and name sent"):
        server.cloud().push(data, "a.png")
    server.handle = lambda request: httpx.Response(201, json=record(data, "other.png"))
    server.transport = httpx.MockTransport(server.handle)
    with pytest.raises(CloudError, match="not of the bytes and name sent"):
        server.cloud().push(data, "a.png")
    server.handle = lambda request: httpx.Response(201, json=record(data, "a.png"))
    server.transport = httpx.MockTransport(server.handle)
    assert server.cloud().push(data, "a.png")["created"] is True


def test_ids_are_checked_before_they_go_into_a_url():
    cloud = Hostile().cloud()
    for bad in ("../../healthz", "A" * 64, "0" * 63, 7):
        with pytest.raises(InputError, match="not 64 hex digits"):
            cloud.pull(bad)
        with pytest.raises(InputError, match="not 64 hex digits"):
            cloud.delete(bad)


# ------------------------------------------------------------------------------------------ item 7: names
UNSAFE = ["CON.png", "con.tar.png", "Nul.png", "COM1.png", "lpt9.x.png", "AUX .png", "com\u00b9.png", "a:b.png",
          "C:x.png", "a\u0085b.png", "a\u009bb.png", "a\x7fb.png", "\u202egnp.exe.png", "a\u2066b.png", "a\u200fb.png",
          "a\u2028b.png", "\ud800.png", "a\x1b[31m.png", "../a.png", "a\\b.png", ".hidden.png", " a.png", "a.jpg",
          "x" * 300 + ".png", "", None]


@pytest.mark.parametrize("name", UNSAFE, ids=range(len(UNSAFE)))
def test_unsafe_names_are_refused_by_client_and_server(tmp_path, name):
    with pytest.raises(InputError):
        check_file_name(name)
    with pytest.raises(StoreError) as e:  # the service refuses them on upload (422)
        check_name(name)
    assert e.value.status == 422
    server = Hostile(listing(record(b"a", name)))
    with pytest.raises(CloudError, match="unsafe file name|malformed"):
        pull_files(server.cloud(), tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name", ["a.png", "photo 1.PNG", "\u00e9t\u00e9.png", "console.png", "COM10.png",
                                  "LPT.png", "\u4e2d\u6587.png", "\U0001f468\u200d\U0001f469.png"])
def test_ordinary_names_pass(name):
    assert check_file_name(name) == name == check_name(name)


def test_names_that_are_one_file_on_windows_or_macos_share_a_key():
    assert name_key("Photo.PNG") == name_key("photo.png") == name_key("PHOTO.png")
    assert name_key("\u00e9.png") == name_key("e\u0301.png") and name_key("a.png") != name_key("b.png")


def test_every_output_lies_in_the_output_folder(tmp_path, monkeypatch):
    """The second line of defence: were a name to get past check_file_name, it still may not leave -o."""
    recs = [record(b"a", "../evil.png")]
    monkeypatch.setattr("ric.files.check_file_name", lambda name, suffix=".png": name)
    with pytest.raises(CloudError, match="would be written outside"):
        plan_pull(recs, tmp_path / "out")


# ------------------------------------------------------------------------------------------ item 12 (client)
def test_a_token_over_plain_http_to_another_machine_warns_once(tmp_path, capsys, cli_against):
    assert [exposes_token(u) for u in ("http://10.0.0.1:8000", "http://cloud.example", "HTTP://Example.com/x")] == \
        [True] * 3
    assert not any(exposes_token(u) for u in ("http://127.0.0.1:8000", "http://localhost:1", "http://[::1]:80",
                                              "https://cloud.example", "http://127.8.9.1/"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Cloud("http://cloud.example", "t").close()
        Cloud("https://cloud.example", "t").close()
        Cloud("http://127.0.0.1:8000", "t").close()
    assert [w.category for w in caught] == [PlainHTTPWarning]
    assert "plain http://" in str(caught[0].message)
    (tmp_path / "tok").write_text("ric_token\n")
    server = served(("a.png", ciphertext(5)), ("b.png", ciphertext(6)))
    rc, _, err = cli_against(server, ["pull", "--url", "http://cloud.example:8000", "--token-file",
                                      str(tmp_path / "tok"), "-o", str(tmp_path / "out")], capsys)
    assert rc == 0 and len(list((tmp_path / "out").iterdir())) == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ric pull: warning:") and "plain http://" in lines[0], err
    rc, _, err = cli_against(server, ["pull", "--url", URL, "--token-file", str(tmp_path / "tok"), "-o",
                                      str(tmp_path / "out")], capsys)
    assert rc == 0 and err == ""


def test_an_honest_listing_pulls_and_skips(tmp_path):
    """Control: the same scripted server, behaving, is pulled, and a second pull skips what is there."""
    pairs = [(f"{i}.png", ciphertext(10 + i)) for i in range(3)]
    rows = pull_files(served(*pairs).cloud(), tmp_path / "out")
    assert [r["status"] for r in rows] == ["pulled"] * 3
    assert all((tmp_path / "out" / n).read_bytes() == d for n, d in pairs)
    assert [r["status"] for r in pull_files(served(*pairs).cloud(), tmp_path / "out")] == ["skipped"] * 3
