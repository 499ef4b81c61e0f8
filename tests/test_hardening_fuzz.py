"""Property-based fuzzing of the ciphertext reader and of ``ric decrypt`` / ``ric classify`` on
mutated files (flipped bytes, cut files, removed/duplicated/moved/edited chunks, CRCs recomputed so that edits
reach the parser). Every mutation ends in a RICError with exit 2 or 3 and no output file, never in another
exception; a file that still parses and verifies must be the original ciphertext (a no-op mutation, such as
moving a text chunk). ``classify`` needs no key, so it may label a file whose pixels were changed (exit 0).
The client's parsing of a server's answers (listings, records, classifications, upload records, error
bodies, raw bytes) is fuzzed the same way against a scripted server (``httpx.MockTransport``)."""

import contextlib
import hashlib
import io
import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ric.api import sample_images
from ric.cli import main
from ric.container import FIELDS, read_ciphertext, read_ciphertext_bytes
from ric.errors import AuthenticationError, RICError
from ric.imageio import read_image
from tests import _png

FUZZ = settings(max_examples=40, deadline=None, database=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture(scope="module")
def original(tmp_path_factory, tiny_ric, key):
    """One ciphertext of a sample image (fast tiny model) and the key file, made once."""
    import torch

    d = tmp_path_factory.mktemp("fuzz")
    x = torch.from_numpy(read_image(sample_images()[0][2])).permute(2, 0, 1)[None].float() / 255
    ct = tiny_ric.encrypt(x, key)[0].ciphertext
    assert ct is not None
    key.save(d / "k.key")
    return ct, ct.to_png(), d / "k.key"


_VALUES = st.one_of(st.text(st.characters(min_codepoint=0, max_codepoint=255), max_size=70),
                    st.sampled_from(["", "0", "00", "+1", "1_0", " 1", "1 ", "-0", "A" * 32, "a" * 32, "a" * 64,
                                     "paper", "exact", "RIC-1", "svhn-cnn7@" + "0" * 16, "../x", "os:system"]))


@st.composite
def mutated(draw, data: bytes) -> bytes:
    """``data`` after 1-3 chunk-level edits (CRCs fixed) and/or a raw flip or cut (CRCs not fixed)."""
    chunks = _png.split(data)
    for _ in range(draw(st.integers(0, 3))):
        op = draw(st.sampled_from(["remove", "duplicate", "move", "body", "text", "insert"]))
        i = draw(st.integers(0, len(chunks) - 1))
        if op == "remove" and len(chunks) > 1:
            del chunks[i]
        elif op == "duplicate":
            chunks.insert(draw(st.integers(0, len(chunks))), chunks[i])
        elif op == "move":
            c = chunks.pop(i)
            chunks.insert(draw(st.integers(0, len(chunks))), c)
        elif op == "body" and chunks[i][1]:
            t, b = chunks[i]
            j = draw(st.integers(0, len(b) - 1))
            chunks[i] = (t, b[:j] + bytes([b[j] ^ draw(st.integers(1, 255))]) + b[j + 1:])
        elif op == "text":
            texts = [k for k, (t, _) in enumerate(chunks) if t == b"tEXt"]
            k = texts[i % len(texts)] if texts else i
            key = chunks[k][1].split(b"\x00", 1)[0].decode("latin-1") if texts else "ric:target"
            chunks[k] = _png.text(key, draw(_VALUES))
        elif op == "insert":
            key = draw(st.one_of(st.sampled_from([f"ric:{f}" for f in FIELDS] + ["ric:format"]),
                                 st.text(st.characters(min_codepoint=32, max_codepoint=126), min_size=1, max_size=20)))
            chunks.insert(draw(st.integers(1, len(chunks))), _png.text(key, draw(_VALUES)))
    out = _png.join(chunks)
    raw = draw(st.sampled_from(["none", "flip", "cut"]))
    if raw == "flip" or (raw == "none" and out == data):
        j = draw(st.integers(0, len(out) - 1))
        out = out[:j] + bytes([out[j] ^ draw(st.integers(1, 255))]) + out[j + 1:]
    elif raw == "cut":
        out = out[:draw(st.integers(0, len(out) - 1))]
    return out


def _ric_text(data: bytes) -> list:
    return sorted(b for t, b in _png.split(data) if t in (b"tEXt", b"zTXt", b"iTXt") and b.startswith(b"ric:"))


def _same_ciphertext(ct, original) -> bool:
    return (np.array_equal(ct.pixels, original.pixels) and ct.meta() == original.meta()
            and ct.tag == original.tag)


@FUZZ
@given(st.data())
def test_reader_on_mutated_files(original, key, data):
    ct0, png, _ = original
    mutant = data.draw(mutated(png))
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "m.png"
        p.write_bytes(mutant)
        try:
            ct = read_ciphertext(p)
            ct.verify(key)
        except RICError as e:
            assert e.exit_code in (2, 3), e
            assert "\n" not in str(e) and "\x1b" not in str(e)
            return
    # it parsed and verified: only a no-op mutation may do that, with the same RIC text, byte for byte (no
    # duplicate, re-spelt or extra ric:* chunk may pass)
    assert _same_ciphertext(ct, ct0) and _ric_text(mutant) == _ric_text(png)


def _cli(argv) -> tuple[int, list[str], str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(argv)
    return rc, err.getvalue().strip().splitlines(), out.getvalue()


@FUZZ
@given(st.data())
def test_cli_decrypt_on_mutated_files(original, data):
    _, png, keyfile = original
    mutant = data.draw(mutated(png))
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "ct").mkdir()
        (Path(d) / "ct" / "m.png").write_bytes(mutant)
        rc, err, _ = _cli(["decrypt", str(Path(d) / "ct"), "-o", str(Path(d) / "rec"), "-k", str(keyfile), "-q"])
        # the original names the test-only model "tiny": even a no-op mutation ends in exit 2 (not shipped)
        assert rc in (2, 3) and len(err) == 1 and "error:" in err[0], (rc, err)
        assert not (Path(d) / "rec").exists() or not any((Path(d) / "rec").iterdir())


@FUZZ
@given(st.data())
def test_cli_classify_on_mutated_files(original, data):
    _, png, _ = original
    mutant = data.draw(mutated(png))
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "m.png").write_bytes(mutant)
        rc, err, out = _cli(["classify", str(Path(d) / "m.png"), "--json"])
        if rc == 0:  # no key: a file that parses is labelled, whatever its pixels
            assert '"label"' in out
        else:
            assert rc == 2 and len(err) == 1 and "error:" in err[0], (rc, err)


def test_fuzz_original_is_valid(original, key):
    """Control: the unmutated file reads, verifies and classifies."""
    ct0, png, _ = original
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "c.png"
        p.write_bytes(png)
        ct = read_ciphertext(p)
        ct.verify(key)
        assert _same_ciphertext(ct, ct0)
        assert _cli(["classify", str(p)])[0] == 0
        with pytest.raises(AuthenticationError):
            ct.pixels[0, 0, 0] ^= 1
            ct.verify(key)


# ------------------------------------------------------------------------------ the client's answers
_JSON = st.recursive(st.none() | st.booleans() | st.integers(-2, 10 ** 13) | st.floats(allow_nan=False) |
                     st.text(max_size=12), lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c,
                                                                                                  max_size=3),
                     max_leaves=12)
_NAMES = st.one_of(st.sampled_from(["a.png", "b.png", "c.png"]),
                   st.sampled_from(["A.png", "CON.png", "a:b.png", "\u202egnp.png", "../a.png", "\ud800.png", ".a.png",
                                    "a.PNG", "e\u0301.png", "\u00e9.png"]),
                   st.text(max_size=12).map(lambda s: s + ".png"), _JSON)


@st.composite
def _record(draw, ids: list[str], clean: bool = False) -> dict:
    """A listing record: a well-formed one (``clean``), or one with some fields replaced by anything or removed."""
    rec = {"id": draw(st.sampled_from(ids)), "name": draw(_NAMES), "size": 1, "label": draw(st.integers(0, 9)),
           "class": draw(st.sampled_from(["7", "\x1b[31mseven", "\u009b2J"])), "classifier": "svhn-cnn7",
           "fingerprint": "0" * 16, "scheme": "exact", "created": 0.0}
    for k in [] if clean else draw(st.lists(st.sampled_from(sorted(rec)), max_size=2, unique=True)):
        if draw(st.booleans()):
            rec[k] = draw(_JSON)
        else:
            del rec[k]
    return rec


@st.composite
def _answer(draw, ids: list[str]):
    """One HTTP answer to a listing request: (status, body bytes)."""
    status = draw(st.sampled_from([200] * 12 + [400, 401, 404, 413, 500]))
    kind = draw(st.sampled_from(["page"] * 6 + ["honest", "json", "bytes"]))
    if kind == "honest":  # the good ciphertext (ids[0]) under a safe name
        rec = dict(draw(_record(ids[:1], clean=True)), name="a.png")
        return 200, json.dumps({"images": [rec], "total": 1}).encode()
    if kind == "bytes":
        return status, draw(st.binary(max_size=64))
    if kind == "json":
        body = draw(_JSON)
    else:
        images = draw(st.lists(st.one_of(_record(ids, clean=True), _record(ids), _JSON), max_size=4))
        body = {"images": images, "total": draw(st.one_of(st.just(len(images)), st.integers(-1, 6), st.just(10 ** 12),
                                                          _JSON))}
        if status >= 400:
            body = {"error": draw(st.text(max_size=8)), "message": draw(st.text(max_size=40))}
    return status, json.dumps(body).encode()


def _check_pulled(out: Path, ids: list[str], blobs: dict) -> None:
    """Whatever the outcome, only checked files were written: directly in ``out``, safe names (unique where case
    is ignored), bytes matching a listed id, parsing as a ciphertext."""
    from ric.files import check_file_name, name_key

    files = sorted(out.iterdir()) if out.exists() else []
    assert len({name_key(p.name) for p in files}) == len(files)
    for p in files:
        assert p.parent == out and check_file_name(p.name) == p.name
        data = p.read_bytes()
        assert hashlib.sha256(data).hexdigest() in ids and read_ciphertext_bytes(data, pixels=False)


@FUZZ
@given(st.data())
def test_client_pull_on_fuzzed_answers(original, data):
    """``pull_files`` against a server that answers anything: it ends in rows it checked, or in one RICError
    (exit 2) whose message is printable (server text quoted), never in another exception."""
    httpx = pytest.importorskip("httpx")
    from ric.client import Cloud, pull_files

    good = original[1]
    junk = data.draw(st.binary(max_size=32))
    blobs = {hashlib.sha256(b).hexdigest(): b for b in (good, junk)}
    ids = [*blobs, *blobs, "0" * 64, "zz"]
    answers = data.draw(st.lists(_answer(ids), min_size=1, max_size=3))
    seen = []

    def handle(request):
        path = request.url.path
        if path.startswith("/v1/images/"):
            b = blobs.get(path.rsplit("/", 1)[1])
            return httpx.Response(200, content=b) if b is not None else httpx.Response(404, content=b"{}")
        status, body = answers[min(len(seen), len(answers) - 1)]
        seen.append(status)
        return httpx.Response(status, content=body, headers={"Content-Type": "application/json"})

    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "out"
        cloud = Cloud("http://127.0.0.1:9", "ric_t", client=httpx.Client(transport=httpx.MockTransport(handle)),
                      max_records=8)
        try:
            rows = pull_files(cloud, out)
        except RICError as e:
            assert e.exit_code == 2 and str(e).isprintable(), repr(str(e))
        else:
            assert all(r["status"] == "pulled" for r in rows)
            assert sorted(out.iterdir() if rows else []) == sorted(Path(r["output"]) for r in rows)
        _check_pulled(out, ids, blobs)
        assert len(seen) <= 3 * 2  # pages are capped (max_records 8: at most 2 pages)


@FUZZ
@given(st.data())
def test_client_classify_and_push_on_fuzzed_answers(original, data):
    httpx = pytest.importorskip("httpx")
    from ric.client import Cloud

    status = data.draw(st.sampled_from([200, 201, 200, 422, 500]))
    good = {"id": hashlib.sha256(original[1]).hexdigest(), "name": "c.png", "size": 1, "label": 3, "class": "3",
            "classifier": "svhn-cnn7", "fingerprint": "0" * 16, "scheme": "exact"}
    body = data.draw(st.one_of(_JSON, _record([good["id"], "0" * 64]), st.just(good)))
    raw = data.draw(st.one_of(st.just(json.dumps(body).encode()), st.binary(max_size=40)))
    transport = httpx.MockTransport(lambda request: httpx.Response(status, content=raw))
    cloud = Cloud("http://127.0.0.1:9", "ric_t", client=httpx.Client(transport=transport))
    for call in (lambda: cloud.classify(original[1]), lambda: cloud.push(original[1], "c.png")):
        try:
            r = call()
        except RICError as e:
            assert e.exit_code == 2 and str(e).isprintable(), repr(str(e))
            continue
        assert type(r["label"]) is int and isinstance(r["class"], str) and isinstance(r["classifier"], str)
        if "id" in r:  # an upload's record: it names the bytes and the name that were sent
            assert r["id"] == good["id"] and r["name"] == "c.png"
