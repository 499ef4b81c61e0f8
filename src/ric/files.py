"""Files: atomic writes (a temporary file in the same folder, ``fsync``, ``os.replace``) and content hashes.

Every output of RIC goes through :func:`atomic_write_bytes`, so an interrupted job never leaves a half-written
file and a reader never sees one. Secrets (key files, :meth:`ric.keys.SecretKey.save`; tenant tokens, ``ric serve
token add --out``) go through :func:`write_private`: mode 0600, never overwritten without ``force``.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import unicodedata
from pathlib import Path

from ric.errors import InputError, quote

MAX_NAME_BYTES = 200
# Characters a file name from elsewhere (a server's listing) may not hold: C0 and C1 controls and DEL (terminal
# escapes), line and paragraph separators, bidirectional overrides, embeddings, isolates and marks (they make
# "gpj.png" display as something else), and ":" (an NTFS alternate data stream; a drive on Windows).
_BAD_CHARS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c:]")
# Windows device names, reserved whatever the extension ("CON.png", "lpt1.x.png" name the device, not a file).
_DEVICE = re.compile(r"(CON|PRN|AUX|NUL|COM[1-9¹²³]|LPT[1-9¹²³])", re.IGNORECASE)


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


def check_file_name(name, suffix: str = ".png") -> str:
    """``name`` if it is a plain file name that is safe to create in a folder on any common system, else
    :class:`InputError`: a non-empty string of valid Unicode (no lone surrogates), at most :data:`MAX_NAME_BYTES`
    UTF-8 bytes, ending in ``suffix`` (any case), without folders (``/``, ``\\``), a leading dot, surrounding
    spaces, control characters (C0, C1), bidirectional controls, ``:`` or a Windows device name (``CON``, ``PRN``,
    ``AUX``, ``NUL``, ``COM1``-``9``, ``LPT1``-``9``, with any extension). The service checks the names it stores
    with it (:func:`ric.service.store.check_name`) and ``ric pull`` checks every name a server lists again."""
    if not isinstance(name, str) or not name:
        raise InputError("file name is empty or not a string")
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        raise InputError(f"file name {quote(name)} is not valid Unicode (a lone surrogate)") from None
    why = ("it names a folder" if "/" in name or "\\" in name or name in (".", "..") else
           "it starts with a dot" if name.startswith(".") else
           "it has leading or trailing spaces" if name != name.strip() else
           "it holds a control, bidirectional or ':' character" if _BAD_CHARS.search(name) else
           f"it is longer than {MAX_NAME_BYTES} bytes" if size > MAX_NAME_BYTES else
           f"it does not end in {suffix}" if not name.lower().endswith(suffix) else
           "it is a Windows device name" if _DEVICE.fullmatch(name.split(".")[0].rstrip(" ")) else "")
    if why:
        raise InputError(f"file name {quote(name)} is not a plain file name ending in {suffix}: {why}")
    return name


def name_key(name: str) -> str:
    """The form under which two file names are the same file on a case-insensitive or normalising file system
    (Windows, macOS): Unicode canonical caseless matching, NFD(casefold(NFD(name)))."""
    return unicodedata.normalize("NFD", unicodedata.normalize("NFD", name).casefold())
