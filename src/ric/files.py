"""Files: atomic writes (a temporary file in the same folder, ``fsync``, ``os.replace``) and content hashes.

Every output of RIC goes through :func:`atomic_write_bytes`, so an interrupted job never leaves a half-written
file and a reader never sees one. Secrets (key files, :meth:`ric.keys.SecretKey.save`; tenant tokens, ``ric serve
token add --out``) go through :func:`write_private`: mode 0600, never overwritten without ``force``.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_private(path: str | Path, data: bytes, force: bool = False) -> None:
    """Write a secret: mode 0600 from the start, complete or not at all; :class:`FileExistsError` if ``path``
    exists, unless ``force``.

    Race-free: the data goes to a fresh 0600 temporary file in the same folder, which is then hard-linked to
    ``path`` (fails if anything exists there, even a file created a moment ago) or, with ``force``, renamed
    over it atomically. Where the file system has no hard links, ``path`` is created with ``O_EXCL``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")  # mode 0600
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if force:
            os.replace(tmp, path)
            return
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise
        except OSError:  # no hard links here: exclusive create
            _write_exclusive(path, data)
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)


def _write_exclusive(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
