"""The owner's side of the cloud service (``ric serve``): :class:`Cloud` and the file jobs behind ``ric push``,
``ric pull`` and ``ric classify --url``.

The client never sends a key, and it does not trust the server's answers: every answer is read up to a size limit
and every record is checked (image ids are 64 hex digits, names pass :func:`ric.files.check_file_name`, labels are
integers, class names strings) before it is used; a listing is capped in records and pages; server text is printed
through :func:`ric.errors.quote`. What it pulls is checked against the image id (the SHA-256 of the bytes) and must
parse as a RIC ciphertext, so a pulled file is byte-identical to what was stored under that id. Pulled files keep
the names they were listed with, are written atomically into the output folder and never replace a different
existing file; a listing that repeats a name (also in another case) is refused before anything is written. What a
compromised server can still do is on the security page ("A hostile server"). Needs ``httpx`` (the ``serve``
extra).
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import math
import os
import re
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ric.errors import CloudError, InputError, PlainHTTPWarning, quote

IMAGE_ID = re.compile(r"[0-9a-f]{64}", re.ASCII)
PAGE = 1000  # records asked for per listing request
MAX_RECORDS = 200_000  # records in one listing (twice the service's default quota of 100,000 images per tenant)
MAX_JSON_BYTES = 8 << 20  # one JSON answer (a full page of 1000 records is about 300 KB)
MAX_ERROR_BYTES = 64 << 10  # the body of an error answer that is read for its message
MAX_TEXT = 200  # characters of a class name or classifier name




def read_token(path: str | Path) -> str:
    """A bearer token from a file (the last line ``ric serve token add`` printed)."""
    try:
        lines = [ln.strip() for ln in Path(path).read_text(encoding="utf-8").splitlines() if ln.strip()]
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read token file {path}: {getattr(e, 'strerror', None) or e}") from None
    if not lines or any(ch.isspace() for ch in lines[-1]) or len(lines[-1]) > 256:
        raise InputError(f"token file {path} holds no token (expected one line, as printed by "
                         "`ric serve token add`)")
    return lines[-1]


def exposes_token(url: str) -> bool:
    """True if a request to ``url`` would carry the token unencrypted beyond this machine: plain ``http://`` to a
    host other than ``localhost`` or a loopback address."""
    try:
        u = urlsplit(url)
        host = (u.hostname or "").rstrip(".")
    except ValueError:
        return True
    if u.scheme.lower() != "http":
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True


@dataclass
class Answer:
    """A response read within its size limit: status, headers and body."""

    status_code: int
    headers: dict
    content: bytes

    def json(self):
        return _parse_json(self.content)


def _parse_json(data: bytes):
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as e:  # JSONDecodeError, bad UTF-8, over-long integers, deep nesting
        raise CloudError(f"the service sent an answer that is not valid JSON ({type(e).__name__})") from None


class Cloud:
    """A tenant's connection to the service at ``url`` with bearer ``token``.

    ``client``: an ``httpx.Client`` to send requests through (e.g. FastAPI's ``TestClient``); by default one is
    made for ``url``. ``max_records`` caps a listing (:data:`MAX_RECORDS`). Warns once
    (:class:`PlainHTTPWarning`) if the token would go over plain ``http://`` to a host that is not this machine."""

    def __init__(self, url: str, token: str, timeout: float = 60.0, client=None, max_records: int = MAX_RECORDS):
        try:
            import httpx
        except ImportError:
            raise InputError("the cloud client needs httpx: pip install -e '.[serve]'") from None
        self._httpx = httpx
        self.url = url.rstrip("/")
        self.max_records = max_records
        if exposes_token(self.url):
            warnings.warn(f"the bearer token goes to {self.url} over plain http:// to another machine: anyone on the "
                          "way can read and replay it, and see the ciphertexts; use https:// (a TLS proxy in front of "
                          "ric serve) or an SSH tunnel to 127.0.0.1", PlainHTTPWarning, stacklevel=2)
        self._headers = {"Authorization": f"Bearer {token}", "Accept-Encoding": "identity"}
        self._own = client is None
        self.http = client if client is not None else httpx.Client(timeout=timeout)

    def close(self) -> None:
        if self._own:
            self.http.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _request(self, method: str, path: str, limit: int = MAX_JSON_BYTES, **kw) -> Answer:
        """Send a request and read the answer's body, at most ``limit`` bytes (:data:`MAX_ERROR_BYTES` for an
        error answer, whose message is then quoted); an answer of 400 or more raises :class:`CloudError`."""
        headers = {**self._headers, **kw.pop("headers", {})}
        try:
            with self.http.stream(method, self.url + path, headers=headers, **kw) as r:
                ans = Answer(r.status_code, dict(r.headers), b"")
                cap = limit if r.status_code < 400 else MAX_ERROR_BYTES
                ans.content = self._body(r, cap)
        except self._httpx.HTTPError as e:
            raise CloudError(f"cannot reach {self.url}: {type(e).__name__}: {quote(str(e), 200)}") from None
        if ans.status_code >= 400:
            raise self._refusal(ans)
        return ans

    def _body(self, r, cap: int) -> bytes:
        """The body (not compressed: identity was asked for, anything else is refused) of at most ``cap`` bytes;
        b"" for an error answer that is larger, CloudError for a success that is."""
        enc = r.headers.get("content-encoding", "identity").strip().lower()
        if enc not in ("", "identity"):
            raise CloudError(f"{self.url} answered with content encoding {quote(enc)}, which was not asked for")
        size = r.headers.get("content-length", "")
        over = size.isdigit() and int(size) > cap
        buf = bytearray()
        if not over:
            for chunk in r.iter_bytes():  # = the raw bytes: any encoding but identity was refused above
                buf += chunk
                if len(buf) > cap:
                    over = True
                    break
        if over and r.status_code < 400:
            raise CloudError(f"{self.url} sent an answer of more than {cap} bytes; stopped reading it")
        return b"" if over else bytes(buf)

    def _refusal(self, ans: Answer) -> CloudError:
        try:
            body = _parse_json(ans.content)
        except CloudError:
            body = ans.content.decode("utf-8", "replace")
        if isinstance(body, dict):
            msg, code = body.get("message", body), body.get("error", "")
        else:
            msg, code = body, ""
        code = code if isinstance(code, str) and len(code) <= 64 and code.isascii() else ""
        return CloudError(f"{self.url} answered {ans.status_code}: {quote(str(msg), 200)}", ans.status_code, code)

    def _json(self, method: str, path: str, **kw) -> dict:
        body = self._request(method, path, **kw).json()
        if not isinstance(body, dict):
            raise CloudError(f"{self.url} sent a malformed answer to {method} {path}: expected a JSON object")
        return body

    @staticmethod
    def _bytes(data: bytes | str | Path) -> bytes:
        if isinstance(data, bytes | bytearray):
            return bytes(data)
        try:
            return Path(data).read_bytes()
        except OSError as e:
            raise InputError(f"cannot read {data}: {e.strerror or e}") from None

    def health(self) -> dict:
        return self._json("GET", "/healthz")

    def classify(self, data: bytes | str | Path) -> dict:
        """``{label, class, classifier, fingerprint, scheme}`` for one ciphertext (not stored)."""
        r = self._json("POST", "/v1/classify", content=self._bytes(data), headers={"Content-Type": "image/png"})
        return checked_result(r, f"{self.url}'s classification")

    def push(self, data: bytes | str | Path, name: str | None = None) -> dict:
        """Store one ciphertext (``name`` defaults to the file's name); returns its record, with ``created``
        False when these bytes were already stored under this name. The record must name these bytes (its id is
        their SHA-256) and this name."""
        if name is None and isinstance(data, str | Path):
            name = Path(data).name
        data = self._bytes(data)
        params = {"name": name} if name else {}
        r = self._request("POST", "/v1/images", content=data, params=params, headers={"Content-Type": "image/png"})
        body = r.json()
        rec = checked_record(body, f"{self.url}'s answer to an upload")
        if rec["id"] != hashlib.sha256(data).hexdigest() or (name and rec["name"] != name):
            raise CloudError(f"{self.url} answered an upload of {quote(name or '(unnamed)')} with the record of "
                             f"{quote(rec['name'])} (id {rec['id'][:16]}...), not of the bytes and name sent")
        return {**rec, "created": r.status_code == 201}

    def pull(self, image_id: str) -> bytes:
        """The stored bytes of ``image_id``, checked against it (the id is their SHA-256)."""
        from ric.container import MAX_FILE_BYTES

        if not isinstance(image_id, str) or not IMAGE_ID.fullmatch(image_id):
            raise InputError(f"image id {quote(image_id)} is not 64 hex digits")
        data = self._request("GET", f"/v1/images/{image_id}", limit=MAX_FILE_BYTES).content
        if hashlib.sha256(data).hexdigest() != image_id:
            raise CloudError(f"{self.url} returned bytes for image {quote(image_id)} that do not match its id")
        return data

    def list(self, label: int | None = None, cls: str | None = None) -> list[dict]:
        """Every stored image's record (all pages), optionally only one label or class; each record checked
        (:func:`checked_record`). At most ``max_records`` records and as many pages as they need (plus one):
        a listing that claims more, or does not end, is refused (:class:`CloudError`)."""
        out: list[dict] = []
        max_pages = math.ceil(self.max_records / PAGE) + 1
        for _ in range(max_pages):
            params = {"limit": PAGE, "offset": len(out)}
            if label is not None:
                params["label"] = label
            if cls is not None:
                params["class"] = cls
            page = self._json("GET", "/v1/images", params=params)
            images, total = page.get("images"), page.get("total")
            if not isinstance(images, list) or len(images) > PAGE or type(total) is not int or total < 0:
                raise CloudError(f"{self.url} sent a malformed listing page (expected 'images': a list of at most "
                                 f"{PAGE} records, 'total': a count)")
            if total > self.max_records or len(out) + len(images) > self.max_records:
                raise CloudError(f"{self.url} lists more than {self.max_records} images (total {total}); refusing "
                                 "the listing (max_records raises the cap)")
            out.extend(checked_record(rec, f"{self.url}'s listing, record {len(out) + i}")
                       for i, rec in enumerate(images))
            if not images or len(out) >= total:
                return out
        raise CloudError(f"{self.url}'s listing did not end after {max_pages} pages; refusing it")

    def delete(self, image_id: str) -> None:
        if not isinstance(image_id, str) or not IMAGE_ID.fullmatch(image_id):
            raise InputError(f"image id {quote(image_id)} is not 64 hex digits")
        self._request("DELETE", f"/v1/images/{image_id}")


# ------------------------------------------------------------------------------------------ checking answers
def _malformed(where: str, what: str) -> CloudError:
    return CloudError(f"{where} is malformed: {what}")


def _text(rec: dict, field: str, where: str, required: bool = True) -> str:
    v = rec.get(field, None if required else "")
    if not isinstance(v, str) or len(v) > MAX_TEXT:
        raise _malformed(where, f"{field!r} is not a string of at most {MAX_TEXT} characters")
    try:
        v.encode("utf-8")
    except UnicodeEncodeError:
        raise _malformed(where, f"{field!r} is not valid Unicode") from None
    return v


def _label(rec: dict, where: str) -> int:
    v = rec.get("label")
    if type(v) is not int or not 0 <= v < 1 << 31:
        raise _malformed(where, "'label' is not a class index (an integer from 0)")
    return v


def checked_result(rec, where: str) -> dict:
    """A classification answer ``{label, class, classifier, fingerprint, scheme}`` with its types checked."""
    if not isinstance(rec, dict):
        raise _malformed(where, "not a JSON object")
    return {"label": _label(rec, where), "class": _text(rec, "class", where),
            "classifier": _text(rec, "classifier", where), "fingerprint": _text(rec, "fingerprint", where, False),
            "scheme": _text(rec, "scheme", where, False)}


def checked_record(rec, where: str) -> dict:
    """A stored image's record from the service, checked: ``id`` 64 lowercase hex digits, ``name`` a plain file name
    (:func:`ric.files.check_file_name`), ``label`` an integer, ``class``/``classifier``/``fingerprint``/``scheme``
    strings, ``size`` an integer; anything else in it is dropped. Raises :class:`CloudError`."""
    from ric.files import check_file_name

    if not isinstance(rec, dict):
        raise _malformed(where, "not a JSON object")
    image_id = rec.get("id")
    if not isinstance(image_id, str) or not IMAGE_ID.fullmatch(image_id):
        raise _malformed(where, "'id' is not 64 hex digits")
    try:
        name = check_file_name(rec.get("name"))
    except InputError as e:
        raise CloudError(f"{where}: the service returned an unsafe file name: {e}") from None
    size = rec.get("size", 0)
    if type(size) is not int or size < 0:
        raise _malformed(where, "'size' is not a byte count")
    return {"id": image_id, "name": name, "size": size, **checked_result(rec, where)}


# ------------------------------------------------------------------------------------------ file jobs
def _tick(progress: Callable | None, n: int = 1):
    if progress:
        progress(n)


def _checked_inputs(inputs: list) -> list[tuple[Path, bytes]]:
    """Every input read and checked as a ciphertext (structure and metadata) before anything is sent."""
    from ric.container import read_ciphertext_bytes
    from ric.imageio import list_images

    paths = list_images(inputs)
    names: dict[str, Path] = {}
    out = []
    for p in paths:
        if p.name in names:
            raise InputError(f"{p} and {names[p.name]} have the same name; the store keeps one image per name")
        names[p.name] = p
        data = Cloud._bytes(p)
        read_ciphertext_bytes(data, str(p), pixels=False)
        out.append((p, data))
    return out


def push_files(inputs: list, cloud: Cloud, progress: Callable | None = None) -> list[dict]:
    """Push ciphertext files (each under its file name). A file the service refuses (e.g. a classifier it did
    not load, a name already used for other bytes) is reported in its row (``status`` failed) and the rest go on;
    an authentication or connection failure stops the job."""
    rows = []
    for p, data in _checked_inputs(inputs):
        try:
            rec = cloud.push(data, p.name)
            rows.append({"input": str(p), "status": "stored" if rec["created"] else "exists", "id": rec["id"],
                         "name": rec["name"], "label": rec["label"], "class": rec["class"]})
        except CloudError as e:
            if e.status in (0, 401, 403) or e.status >= 500:
                raise
            rows.append({"input": str(p), "status": "failed", "error": str(e)})
        _tick(progress)
    return rows


def classify_remote(inputs: list, cloud: Cloud, progress: Callable | None = None, workers: int = 4) -> list[dict]:
    """Classify ciphertext files with the service (nothing stored); a few requests in flight share its batches."""
    items = _checked_inputs(inputs)

    def one(item):
        p, data = item
        r = cloud.classify(data)
        _tick(progress)
        return {"input": str(p), "label": r["label"], "class": r["class"], "classifier": r["classifier"]}

    with ThreadPoolExecutor(max(1, workers)) as ex:
        return list(ex.map(one, items))


def plan_pull(records: list[dict], out_dir: Path) -> list[dict]:
    """The rows of a pull (``pending`` or ``skipped``), checked before anything is written: every name safe and
    listed once (:func:`ric.files.name_key`: also not in another case or Unicode form), every id once, every output
    directly in ``out_dir``, and no existing file replaced unless it holds the listed bytes."""
    from ric.files import check_file_name, name_key, sha256_file

    names: dict[str, str] = {}
    ids: set[str] = set()
    rows = []
    for rec in records:
        try:
            name = check_file_name(rec["name"])
        except InputError as e:
            raise CloudError(f"the service returned an unsafe file name: {e}") from None
        key = name_key(name)
        if key in names:
            same = "" if names[key] == name else f" (as {quote(names[key])} too: one file where case is ignored)"
            raise CloudError(f"the service lists the name {quote(name)} twice{same}; nothing was pulled")
        if rec["id"] in ids:
            raise CloudError(f"the service lists image {rec['id'][:16]}... twice; nothing was pulled")
        names[key] = name
        ids.add(rec["id"])
        o = out_dir / name
        if o.parent != out_dir or o.name != name or os.path.dirname(os.path.abspath(o)) != os.path.abspath(out_dir):
            raise CloudError(f"the listed name {quote(name)} would be written outside {out_dir}; nothing was pulled")
        status = "pending"
        if os.path.lexists(o):
            if not (o.is_file() and not o.is_symlink() and sha256_file(o) == rec["id"]):
                raise InputError(f"{o} exists and is not the stored image {rec['id'][:16]}…; refusing to overwrite "
                                 "it: pull into another folder (-o)")
            status = "skipped"
        rows.append({"id": rec["id"], "output": str(o), "status": status, "label": rec["label"],
                     "class": rec["class"]})
    return rows


def pull_files(cloud: Cloud, out_dir: str | Path, label: int | None = None, cls: str | None = None,
               progress: Callable | None = None) -> list[dict]:
    """Pull the tenant's images (optionally one label or class) into ``out_dir`` under their listed names.
    The whole listing is checked first (:func:`plan_pull`): a repeated or unsafe name, or a different existing
    file, stops the job before anything is written. Files already there with the same bytes are skipped. Each
    pulled file must match its id and parse as a RIC ciphertext (structure and metadata) before it is written."""
    from ric.container import read_ciphertext_bytes
    from ric.errors import CiphertextError
    from ric.files import atomic_write_bytes

    rows = plan_pull(cloud.list(label, cls), Path(out_dir))
    _tick(progress, sum(r["status"] == "skipped" for r in rows))
    for r in rows:
        if r["status"] == "pending":
            data = cloud.pull(r["id"])
            try:
                read_ciphertext_bytes(data, Path(r["output"]).name, pixels=False)
            except CiphertextError as e:
                raise CloudError(f"the service returned image {r['id'][:16]}... for {r['output']}, which is not a RIC "
                                 f"ciphertext ({e}); not written") from None
            atomic_write_bytes(r["output"], data)
            r["status"] = "pulled"
            _tick(progress)
    return rows


__all__ = ["Cloud", "CloudError", "PlainHTTPWarning", "read_token", "push_files", "pull_files", "classify_remote",
           "checked_record", "exposes_token"]
