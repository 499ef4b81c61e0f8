"""The service's store: tenants, bearer tokens (SHA-256 hashes only) and content-addressed ciphertexts.

Layout of a store folder::

    index.sqlite3 (+ -wal, -shm)   tenants, tokens, images (SQLite, WAL, synchronous=FULL)
    blobs/ab/<sha256>              ciphertext bytes, named by their SHA-256 (shared by tenants that store them)
    tmp/                           uploads being written (removed on start)
    quarantine/<sha256>            stored files that the index did not list on start (moved, never deleted)
    lock                           flock of the serving process (one server per store)

The folder and its sub-folders are mode 0700, every file 0600 (tightened on open), so other local users can read
neither the token hashes nor the ciphertexts.

Writing an image: bytes → ``tmp/`` file, ``fsync`` → ``os.replace`` into ``blobs/`` → ``fsync`` of the folder →
``INSERT`` + ``COMMIT``; only then is the upload acknowledged. A crash (``SIGKILL``, power loss) before the commit
leaves a temp file (removed when the store is next opened for serving) or an unreferenced blob (moved to
``quarantine/`` then, and reported: an index restored from a backup also leaves the newer images unreferenced, and
they must not be lost; :meth:`Store.recover`); a crash after it leaves a complete, indexed file. Deleting:
``DELETE`` + ``COMMIT``, then the blob is unlinked if no row refers to it any more (a crash in between leaves an
orphan, quarantined on start).

Image ids are the SHA-256 of the bytes (the client checks what it pulls against them); names are unique per
tenant and are what ``ric pull`` writes (:func:`check_name`).
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import sqlite3
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ric.errors import InputError, StoreError, quote
from ric.files import check_file_name

TOKEN_PREFIX = "ric_"
TENANT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", re.ASCII)
IMAGE_ID = re.compile(r"[0-9a-f]{64}", re.ASCII)

SCHEMA = """
CREATE TABLE IF NOT EXISTS tenants (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS tokens (
    hash TEXT PRIMARY KEY, tenant INTEGER NOT NULL REFERENCES tenants(id), created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS images (
    tenant INTEGER NOT NULL REFERENCES tenants(id), id TEXT NOT NULL, name TEXT NOT NULL, size INTEGER NOT NULL,
    label INTEGER NOT NULL, class TEXT NOT NULL, classifier TEXT NOT NULL, scheme TEXT NOT NULL,
    created REAL NOT NULL, PRIMARY KEY (tenant, id), UNIQUE (tenant, name));
CREATE INDEX IF NOT EXISTS images_by_label ON images (tenant, label);
CREATE INDEX IF NOT EXISTS images_by_blob ON images (id);
"""


def check_name(name: str) -> str:
    """A stored image's name, as ``ric pull`` will write it into its output folder: the rules of
    :func:`ric.files.check_file_name` (a plain file name ending in ``.png``: no folder, leading dot, control or
    bidirectional character, ``:`` or Windows device name; at most 200 UTF-8 bytes). Raises :class:`StoreError`
    (422) otherwise. The client checks every listed name again before it writes."""
    try:
        return check_file_name(name, ".png")
    except InputError as e:
        raise StoreError(f"image {e}", 422, "bad_name") from None


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass
class Image:
    id: str
    name: str
    size: int
    label: int
    cls: str
    classifier: str
    scheme: str
    created: float

    def public(self) -> dict:
        name, _, fp = self.classifier.rpartition("@")
        return {"id": self.id, "name": self.name, "size": self.size, "label": self.label, "class": self.cls,
                "classifier": name, "fingerprint": fp, "scheme": self.scheme, "created": self.created}


_COLS = "id, name, size, label, class, classifier, scheme, created"


class Store:
    """One store folder. ``serving=True`` takes the folder's lock (one serving process per store) and runs
    :meth:`recover`; the token commands open it with ``serving=False`` (safe while a server runs)."""

    def __init__(self, root: str | Path, serving: bool = False):
        self.root = Path(root)
        self.blobs = self.root / "blobs"
        self.tmp = self.root / "tmp"
        self.quarantine = self.root / "quarantine"
        for d in (self.root, self.blobs, self.tmp):
            d.mkdir(mode=0o700, parents=True, exist_ok=True)
        index = self.root / "index.sqlite3"
        os.close(os.open(index, os.O_WRONLY | os.O_CREAT, 0o600))  # SQLite gives -wal and -shm the index's mode
        self._private()
        self._lock = threading.RLock()
        self._lockfile = None
        if serving:
            self._take_lock()
        self.db = sqlite3.connect(index, timeout=10.0, check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA busy_timeout = 10000")
        self.db.execute("PRAGMA journal_mode = WAL")
        self.db.execute("PRAGMA synchronous = FULL")
        self.db.execute("PRAGMA foreign_keys = ON")
        self.db.executescript(SCHEMA)
        self.recovered = self.recover() if serving else {}

    def _private(self) -> None:
        """Mode 0700 for the store's folders and 0600 for the files at its top (a store made by an older version
        was 0755 / 0644); where this process may not change a mode, it leaves it."""
        for p in (self.root, self.blobs, self.tmp, self.quarantine, *self.root.glob("index.sqlite3*"),
                  self.root / "lock"):
            try:
                if p.is_dir():
                    os.chmod(p, 0o700)
                elif p.is_file():
                    os.chmod(p, 0o600)
            except OSError:
                pass

    def _take_lock(self) -> None:
        import fcntl

        os.close(os.open(self.root / "lock", os.O_WRONLY | os.O_CREAT, 0o600))
        f = open(self.root / "lock", "a+")  # noqa: SIM115 (held for the life of the store)
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.close()
            raise InputError(f"store {self.root} is in use by another server") from None
        self._lockfile = f

    def close(self) -> None:
        with self._lock:
            self.db.close()
            if self._lockfile is not None:
                self._lockfile.close()
                self._lockfile = None

    # ------------------------------------------------------------------ crash recovery
    def recover(self) -> dict:
        """Clean up what a crash can leave: temp files are removed; blobs that no row refers to are moved to
        ``quarantine/`` (never deleted: an index restored from a backup leaves newer images unreferenced too).
        Returns the counts, and the number of rows whose blob is missing (reported, not deleted)."""
        with self._lock:
            temps = 0
            for p in self.tmp.iterdir():
                if p.is_file() or p.is_symlink():
                    p.unlink()
                    temps += 1
            known = {r[0] for r in self.db.execute("SELECT DISTINCT id FROM images")}
            orphans, seen = 0, set()
            for sub in self.blobs.iterdir():
                if not sub.is_dir():
                    continue
                for p in sub.iterdir():
                    if IMAGE_ID.fullmatch(p.name) and p.name not in known:
                        self._quarantine(p)
                        orphans += 1
                    else:
                        seen.add(p.name)
            self._fsync_dir(self.tmp)
            return {"temp_files_removed": temps, "orphan_blobs_quarantined": orphans,
                    "rows_without_blob": len(known - seen)}

    def _quarantine(self, blob: Path) -> None:
        """Move an unreferenced blob to ``quarantine/`` (a name already there gets a numbered suffix)."""
        self.quarantine.mkdir(mode=0o700, exist_ok=True)
        dest, k = self.quarantine / blob.name, 0
        while dest.exists():
            k += 1
            dest = self.quarantine / f"{blob.name}.{k}"
        os.replace(blob, dest)
        self._fsync_dir(self.quarantine)
        self._fsync_dir(blob.parent)

    # ------------------------------------------------------------------ tenants and tokens
    def add_token(self, tenant: str) -> str:
        """Create ``tenant`` if needed and a new bearer token for it; return the token (only its hash is kept)."""
        if not TENANT_NAME.fullmatch(tenant or ""):
            raise InputError(f"tenant name {quote(tenant)} must be 1-64 letters, digits, '.', '_' or '-'")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = time.time()
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                self.db.execute("INSERT OR IGNORE INTO tenants (name, created) VALUES (?, ?)", (tenant, now))
                (tid,) = self.db.execute("SELECT id FROM tenants WHERE name = ?", (tenant,)).fetchone()
                self.db.execute("INSERT INTO tokens (hash, tenant, created) VALUES (?, ?, ?)",
                                (hash_token(token), tid, now))
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
        return token

    def revoke_tokens(self, tenant: str) -> int:
        """Revoke every token of ``tenant`` (its images stay); returns how many."""
        with self._lock:
            cur = self.db.execute("DELETE FROM tokens WHERE tenant = (SELECT id FROM tenants WHERE name = ?)",
                                  (tenant,))
            return cur.rowcount

    def remove_token(self, token: str) -> bool:
        """Revoke one token (by its value); True if it existed."""
        with self._lock:
            return self.db.execute("DELETE FROM tokens WHERE hash = ?", (hash_token(token),)).rowcount > 0

    def tenants(self) -> list[dict]:
        with self._lock:
            rows = self.db.execute(
                "SELECT t.name, (SELECT count(*) FROM tokens k WHERE k.tenant = t.id), "
                "(SELECT count(*) FROM images i WHERE i.tenant = t.id), "
                "(SELECT coalesce(sum(size), 0) FROM images i WHERE i.tenant = t.id) FROM tenants t ORDER BY t.name"
            ).fetchall()
        return [{"tenant": n, "tokens": k, "images": i, "bytes": b} for n, k, i, b in rows]

    def tenant_for(self, token: str) -> tuple[int, str] | None:
        """(tenant id, name) for a presented token, or None."""
        if not token or len(token) > 256:
            return None
        with self._lock:
            row = self.db.execute("SELECT t.id, t.name FROM tokens k JOIN tenants t ON t.id = k.tenant "
                                  "WHERE k.hash = ?", (hash_token(token),)).fetchone()
        return (row[0], row[1]) if row else None

    # ------------------------------------------------------------------ images
    def blob_path(self, image_id: str) -> Path:
        return self.blobs / image_id[:2] / image_id

    def get(self, tenant: int, image_id: str) -> Image | None:
        if not IMAGE_ID.fullmatch(image_id or ""):
            return None
        with self._lock:
            row = self.db.execute(f"SELECT {_COLS} FROM images WHERE tenant = ? AND id = ?",
                                  (tenant, image_id)).fetchone()
        return Image(*row) if row else None

    def by_name(self, tenant: int, name: str) -> Image | None:
        with self._lock:
            row = self.db.execute(f"SELECT {_COLS} FROM images WHERE tenant = ? AND name = ?",
                                  (tenant, name)).fetchone()
        return Image(*row) if row else None

    def read(self, tenant: int, image_id: str) -> tuple[Image, bytes] | None:
        img = self.get(tenant, image_id)
        if img is None:
            return None
        return img, self.blob_path(img.id).read_bytes()

    def list(self, tenant: int, label: int | None = None, cls: str | None = None, limit: int = 1000,
             offset: int = 0) -> tuple[list[Image], int]:
        where, args = ["tenant = ?"], [tenant]
        if label is not None:
            where.append("label = ?")
            args.append(label)
        if cls is not None:
            where.append("class = ?")
            args.append(cls)
        w = " AND ".join(where)
        with self._lock:
            (total,) = self.db.execute(f"SELECT count(*) FROM images WHERE {w}", args).fetchone()
            rows = self.db.execute(f"SELECT {_COLS} FROM images WHERE {w} ORDER BY label, name LIMIT ? OFFSET ?",
                                   [*args, limit, offset]).fetchall()
        return [Image(*r) for r in rows], total

    def count(self, tenant: int) -> int:
        with self._lock:
            return self.db.execute("SELECT count(*) FROM images WHERE tenant = ?", (tenant,)).fetchone()[0]

    def bytes_used(self, tenant: int) -> int:
        with self._lock:
            return self.db.execute("SELECT coalesce(sum(size), 0) FROM images WHERE tenant = ?",
                                   (tenant,)).fetchone()[0]

    def put(self, tenant: int, data: bytes, name: str, label: int, cls: str, classifier: str, scheme: str,
            max_images: int | None = None, max_bytes: int | None = None) -> tuple[Image, bool]:
        """Store ``data`` for ``tenant`` under ``name``; returns (image, created). The same bytes under the
        same name again return the stored image (``created`` False: a retried upload is harmless); a name
        already used for other bytes, or these bytes under another name, is refused (409); so is an upload
        over the tenant's quota of ``max_images`` images or ``max_bytes`` bytes (403)."""
        check_name(name)
        image_id = hashlib.sha256(data).hexdigest()
        existing = self.existing(tenant, image_id, name)
        if existing is not None:
            return existing, False
        fd, tmp = tempfile.mkstemp(dir=self.tmp, prefix=image_id[:16] + ".", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            img = Image(image_id, name, len(data), int(label), cls, classifier, scheme, time.time())
            with self._lock:
                existing = self.existing(tenant, image_id, name)
                if existing is not None:
                    return existing, False
                if max_images is not None and self.count(tenant) >= max_images:
                    raise StoreError(f"this tenant's store is full ({max_images} images); delete some first",
                                     403, "quota_exceeded")
                if max_bytes is not None and self.bytes_used(tenant) + len(data) > max_bytes:
                    raise StoreError(f"this tenant's store is full ({self.bytes_used(tenant)} of {max_bytes} bytes "
                                     f"used, this upload is {len(data)}); delete some first", 403, "quota_exceeded")
                dest = self.blob_path(image_id)
                dest.parent.mkdir(mode=0o700, exist_ok=True)
                os.replace(tmp, dest)
                tmp = None
                self._fsync_dir(dest.parent)
                self.db.execute(f"INSERT INTO images (tenant, {_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                (tenant, img.id, img.name, img.size, img.label, img.cls, img.classifier, img.scheme,
                                 img.created))  # autocommit: durable (WAL, synchronous=FULL) when it returns
            return img, True
        finally:
            if tmp is not None and os.path.exists(tmp):
                os.unlink(tmp)

    def existing(self, tenant: int, image_id: str, name: str) -> Image | None:
        """The stored image if ``tenant`` already has these bytes under this name (a retried upload), None if
        neither is stored; :class:`StoreError` (409) if only one of them is."""
        same = self.get(tenant, image_id)
        if same is not None:
            if same.name == name:
                return same
            raise StoreError(f"these bytes are already stored as {quote(same.name)} (id {image_id})", 409,
                             "duplicate")
        other = self.by_name(tenant, name)
        if other is not None:
            raise StoreError(f"name {quote(name)} is already used by another image (id {other.id}); delete it or "
                             "push under another name", 409, "name_taken")
        return None

    def delete(self, tenant: int, image_id: str) -> bool:
        if not IMAGE_ID.fullmatch(image_id or ""):
            return False
        with self._lock:
            cur = self.db.execute("DELETE FROM images WHERE tenant = ? AND id = ?", (tenant, image_id))
            if cur.rowcount == 0:
                return False
            (refs,) = self.db.execute("SELECT count(*) FROM images WHERE id = ?", (image_id,)).fetchone()
            if refs == 0:
                p = self.blob_path(image_id)
                if p.exists():
                    p.unlink()
                    self._fsync_dir(p.parent)
        return True

    def check(self) -> dict:
        """Consistency check for tests and the crash benchmark: every row's blob exists and hashes to its id,
        no unreferenced blob, no temp file."""
        with self._lock:
            ids = {r[0] for r in self.db.execute("SELECT DISTINCT id FROM images")}
        bad, missing, files = [], [], set()
        for sub in self.blobs.iterdir():
            for p in sub.iterdir() if sub.is_dir() else []:
                files.add(p.name)
        for i in ids:
            p = self.blob_path(i)
            if not p.is_file():
                missing.append(i)
            elif hashlib.sha256(p.read_bytes()).hexdigest() != i:
                bad.append(i)
        return {"rows": len(ids), "blobs": len(files), "missing": missing, "corrupt": bad,
                "orphans": sorted(files - ids), "temp_files": sorted(p.name for p in self.tmp.iterdir())}

    @staticmethod
    def _fsync_dir(d: Path) -> None:
        try:
            fd = os.open(d, os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(fd)
        except OSError:
            pass
        finally:
            os.close(fd)
