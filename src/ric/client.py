"""The owner's side of the cloud service (``ric serve``): :class:`Cloud` and the file jobs behind ``ric push``,
``ric pull`` and ``ric classify --url``.

The client never sends a key. What it pulls is checked against the image id (the SHA-256 of the bytes), so a
pulled file is byte-identical to what was pushed; pulled files keep the names they were pushed with, are written
atomically, and never replace a different existing file. Needs ``httpx`` (the ``serve`` extra).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ric.errors import CloudError, InputError, quote


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


class Cloud:
    """A tenant's connection to the service at ``url`` with bearer ``token``.

    ``client``: an ``httpx.Client`` to send requests through (e.g. FastAPI's ``TestClient``); by default one is
    made for ``url``."""

    def __init__(self, url: str, token: str, timeout: float = 60.0, client=None):
        try:
            import httpx
        except ImportError:
            raise InputError("the cloud client needs httpx: pip install -e '.[serve]'") from None
        self._httpx = httpx
        self.url = url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}"}
        self._own = client is None
        self.http = client if client is not None else httpx.Client(timeout=timeout)

    def close(self) -> None:
        if self._own:
            self.http.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _request(self, method: str, path: str, **kw):
        try:
            headers = {**self._headers, **kw.pop("headers", {})}
            r = self.http.request(method, self.url + path, headers=headers, **kw)
        except self._httpx.HTTPError as e:
            raise CloudError(f"cannot reach {self.url}: {type(e).__name__}: {str(e)[:200]}") from None
        if r.status_code >= 400:
            try:
                body = r.json()
                msg, code = str(body.get("message", body)), str(body.get("error", ""))
            except ValueError:
                msg, code = r.text[:200], ""
            raise CloudError(f"{self.url} answered {r.status_code}: {msg}", r.status_code, code)
        return r

    @staticmethod
    def _bytes(data: bytes | str | Path) -> bytes:
        if isinstance(data, bytes | bytearray):
            return bytes(data)
        try:
            return Path(data).read_bytes()
        except OSError as e:
            raise InputError(f"cannot read {data}: {e.strerror or e}") from None

    def health(self) -> dict:
        return self._request("GET", "/healthz").json()

    def classify(self, data: bytes | str | Path) -> dict:
        """``{label, class, classifier, fingerprint, scheme}`` for one ciphertext (not stored)."""
        return self._request("POST", "/v1/classify", content=self._bytes(data),
                             headers={"Content-Type": "image/png"}).json()

    def push(self, data: bytes | str | Path, name: str | None = None) -> dict:
        """Store one ciphertext (``name`` defaults to the file's name); returns its record, with ``created``
        False when these bytes were already stored under this name."""
        if name is None and isinstance(data, str | Path):
            name = Path(data).name
        params = {"name": name} if name else {}
        r = self._request("POST", "/v1/images", content=self._bytes(data), params=params,
                          headers={"Content-Type": "image/png"})
        return {**r.json(), "created": r.status_code == 201}

    def pull(self, image_id: str) -> bytes:
        """The stored bytes of ``image_id``, checked against it (the id is their SHA-256)."""
        data = self._request("GET", f"/v1/images/{image_id}").content
        if hashlib.sha256(data).hexdigest() != image_id:
            raise CloudError(f"{self.url} returned bytes for image {quote(image_id)} that do not match its id")
        return data

    def list(self, label: int | None = None, cls: str | None = None) -> list[dict]:
        """Every stored image's record (all pages), optionally only one label or class."""
        out: list[dict] = []
        while True:
            params = {"limit": 1000, "offset": len(out)}
            if label is not None:
                params["label"] = label
            if cls is not None:
                params["class"] = cls
            page = self._request("GET", "/v1/images", params=params).json()
            out.extend(page["images"])
            if not page["images"] or len(out) >= page["total"]:
                return out

    def delete(self, image_id: str) -> None:
        self._request("DELETE", f"/v1/images/{image_id}")


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


def pull_files(cloud: Cloud, out_dir: str | Path, label: int | None = None, cls: str | None = None,
               progress: Callable | None = None) -> list[dict]:
    """Pull the tenant's images (optionally one label or class) into ``out_dir`` under their pushed names.
    Files already there with the same bytes are skipped; a different existing file is never replaced: the job
    refuses before writing anything."""
    from ric.files import atomic_write_bytes
    from ric.service.store import StoreError, check_name

    out_dir = Path(out_dir)
    rows = []
    for rec in cloud.list(label, cls):
        try:
            name = check_name(rec["name"])
        except StoreError as e:
            raise CloudError(f"the service returned an unsafe file name: {e}") from None
        o = out_dir / name
        status = "pending"
        if os.path.lexists(o):
            same = o.is_file() and not o.is_symlink() and hashlib.sha256(o.read_bytes()).hexdigest() == rec["id"]
            if not same:
                raise InputError(f"{o} exists and is not the stored image {rec['id'][:16]}…; refusing to overwrite "
                                 "it: pull into another folder (-o)")
            status = "skipped"
        rows.append({"id": rec["id"], "output": str(o), "status": status, "label": rec["label"],
                     "class": rec["class"]})
    _tick(progress, sum(r["status"] == "skipped" for r in rows))
    for r in rows:
        if r["status"] == "pending":
            atomic_write_bytes(r["output"], cloud.pull(r["id"]))
            r["status"] = "pulled"
            _tick(progress)
    return rows


__all__ = ["Cloud", "CloudError", "read_token", "push_files", "pull_files", "classify_remote"]
