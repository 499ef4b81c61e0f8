"""The encryption job: scan (read and check every input, find finished outputs), then encrypt what is pending.

Restart rules: an existing output is skipped if it is this input's finished ciphertext (it verifies under the key,
fits the scheme and carries the keyed hash of *this* input, ``ric:plain-mac``), redone if it is another ciphertext
under the key, and refused (nothing written) if it is anything else, unless ``force``. A photo that the scheme seals
as its file (:meth:`~ric.schemes.base.Scheme.takes_file`) is named by an opaque keyed id unless ``keep_names``.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ric.container import Ciphertext, file_mac, keyed_name_id, plain_mac, read_ciphertext
from ric.errors import RICError
from ric.imageio import PHOTO_FORMATS, probe_image
from ric.jobs.plan import outputs, refuse_overwriting_inputs, refuse_unproven, tick
from ric.keys import SecretKey
from ric.photos import read_photo, read_photo_bytes
from ric.schemes.base import Scheme


def scan_encrypt(paths: list[Path], outs: list[Path], key: SecretKey, sch: Scheme, convert: str = "strict",
                 strip: bool = False, keep_names: bool = False, force: bool = False) -> tuple[list[dict], list[int]]:
    """Read and check every input (raises on the first bad one, before anything is written) and find the outputs
    that are already finished (status ``skipped``); an existing output that is not a ciphertext under ``key`` is
    refused unless ``force``. Returns the rows and the indices of the pending ones. One image
    is in memory at a time: :func:`encrypt_pending` reads the pending ones again, ``batch_size`` at a time. A photo
    (:meth:`~ric.schemes.base.Scheme.takes_file`) is checked from its header here and decoded once, later."""
    rows: list[dict] = []
    todo: list[int] = []
    outs = list(outs)
    for i, p in enumerate(paths):
        if _takes_file(p, sch):
            if not keep_names:
                outs[i] = outs[i].parent / (keyed_name_id(key, p.name) + ".png")
                outputs(paths[:i + 1], outs[i].parent, outs[:i + 1])
                refuse_overwriting_inputs(paths, outs[i:i + 1])
            row = _scan_photo(p, outs[i], key, sch, strip, force)
        else:
            o = outs[i]
            a = sch.read_plain(p, convert)
            sch.check_shape(a.shape)
            ct = own_ciphertext(o, key, force)
            row = ({"input": str(p), "output": str(o), "status": "skipped", "target": ct.target}
                   if ct is not None and _finished_ciphertext(ct, key, sch, a)
                   else {"input": str(p), "output": str(o), "status": "pending", "scheme": sch.name})
        rows.append(row)
        if row["status"] == "pending":
            todo.append(len(rows) - 1)
    return rows, todo


def _takes_file(p: Path, sch: Scheme) -> bool:
    """True if the scheme seals the file at ``p`` as a photo (its header is read and checked, nothing decoded)."""
    if type(sch).takes_file is Scheme.takes_file:
        return False
    h, w, _ = probe_image(p, formats=PHOTO_FORMATS)
    sch.check_shape((h, w, sch.channels))
    return sch.takes_file(h, w)


def _scan_photo(p: Path, o: Path, key: SecretKey, sch: Scheme, strip: bool, force: bool = False) -> dict:
    row = {"input": str(p), "output": str(o), "status": "pending", "scheme": sch.name, "carrier": "file"}
    if strip:  # a format --strip-metadata cannot handle stops the job here, before anything is written
        read_photo_bytes(p, strip)
    ct = own_ciphertext(o, key, force)
    if ct is None:
        return row  # the file is read once, when it is encrypted
    data = read_photo_bytes(p, strip)[0]
    try:
        sch.check_ciphertext(ct)
    except RICError:
        return row  # another scheme or classifier: redo it (written atomically)
    if ct.plain_mac and ct.plain_mac.isascii() and hmac.compare_digest(file_mac(key, ct.nonce, data), ct.plain_mac):
        row.update(status="skipped", target=ct.target)
    return row


def _read_pending(rows: list[dict], idx: list[int], sch: Scheme, convert: str) -> list[tuple[int, np.ndarray]]:
    """The pixels of the pending rows ``idx``, read again; a file that became unreadable since the scan fails its
    row (status ``failed``) instead of stopping the job."""
    out = []
    for ri in idx:
        try:
            a = sch.read_plain(Path(rows[ri]["input"]), convert)
            sch.check_shape(a.shape)
        except RICError as e:
            rows[ri].update(status="failed", error=str(e), code=e.exit_code)
            continue
        out.append((ri, a))
    return out


PHOTO_BATCH_PIXELS = 16_000_000  # decoded photo pixels held at once: one 12 MP photo, or many small ones


def encrypt_pending(rows: list[dict], todo: list[int], key: SecretKey, sch: Scheme, batch_size: int = 64,
                    progress: Callable | None = None, convert: str = "strict", strip: bool = False) -> None:
    """Encrypt the pending rows ``todo`` (from :func:`scan_encrypt`), reading ``batch_size`` images at a time (photos
    up to :data:`PHOTO_BATCH_PIXELS` decoded pixels at a time); each ciphertext is written atomically as it is made
    (status ``encrypted``), a failure is recorded in its row (status ``failed``, ``error``, ``code``: the CLI's exit
    code for it)."""
    photos = [ri for ri in todo if rows[ri].get("carrier") == "file"]
    done = 0
    for chunk in _photo_chunks(rows, photos, sch, convert, strip, batch_size):
        for (ri, photo), res in zip(chunk, sch.encrypt_photos([p for _, p in chunk], key), strict=True):
            if _record(rows[ri], res):
                res.ciphertext.plain_mac = file_mac(key, res.ciphertext.nonce, photo.data)
                _save_named(res.ciphertext, key, rows[ri]["output"])
                rows[ri].update(status="encrypted", carrier_shape=list(res.ciphertext.pixels.shape))
        tick(progress, len(chunk))
        done += len(chunk)
    tick(progress, len(photos) - done)  # the photos that could not be read
    grid = [ri for ri in todo if rows[ri].get("carrier") != "file"]
    for s in range(0, len(grid), batch_size):
        idx = grid[s:s + batch_size]
        chunk = _read_pending(rows, idx, sch, convert)
        for (ri, a), res in zip(chunk, sch.encrypt([a for _, a in chunk], key) if chunk else [], strict=True):
            if _record(rows[ri], res):
                res.ciphertext.plain_mac = plain_mac(key, res.ciphertext.nonce, a)
                _save_named(res.ciphertext, key, rows[ri]["output"])
                rows[ri]["status"] = "encrypted"
        tick(progress, len(idx))


def _photo_chunks(rows: list[dict], idx: list[int], sch: Scheme, convert: str, strip: bool, batch_size: int):
    """The pending photos, decoded (once each), in chunks of at most ``batch_size`` photos and
    :data:`PHOTO_BATCH_PIXELS` pixels (a larger photo goes alone); a photo that turned out to be truncated or corrupt
    fails its own row (code 2) and the job goes on. Yields lists of (row index, photo)."""
    chunk, pixels = [], 0
    for ri in idx:
        try:
            photo = read_photo(rows[ri]["input"], sch.channels, convert, strip)
        except RICError as e:
            rows[ri].update(status="failed", error=str(e).removeprefix(f"{rows[ri]['input']}: "), code=e.exit_code)
            continue
        n = photo.pixels.shape[0] * photo.pixels.shape[1]
        if chunk and (pixels + n > PHOTO_BATCH_PIXELS or len(chunk) >= batch_size):
            yield chunk
            chunk, pixels = [], 0
        chunk.append((ri, photo))
        pixels += n
    if chunk:
        yield chunk


def _record(row: dict, res) -> bool:
    """Copy an encryption result into its row; False (row ``failed``) when there is no ciphertext."""
    row.update(target=res.target, attempts=res.attempts)
    if res.unchecked:
        row["unchecked_stacks"] = list(res.unchecked)
    if res.ciphertext is None:
        row.update(status="failed", error=res.error, code=res.code)
        return False
    return True


def _save_named(ct: Ciphertext, key: SecretKey, path: str | Path) -> None:
    """Sign and write ``ct`` with ``ric:name-id`` bound to the file name it is written under."""
    ct.name_id = keyed_name_id(key, Path(path).name)
    ct.sign(key).save(path)


def own_ciphertext(o: Path, key: SecretKey, force: bool = False) -> Ciphertext | None:
    """The ciphertext at ``o`` if there is one that verifies under ``key`` (a job under this key made it); None if
    ``o`` does not exist, or with ``force`` for anything else; any other existing file is refused."""
    if not os.path.lexists(o):
        return None
    try:
        ct = read_ciphertext(o)
        ct.verify(key)
    except RICError:
        if force:
            return None
        refuse_unproven(o, "a RIC ciphertext that verifies under this key")
    return ct


def _finished_ciphertext(ct: Ciphertext, key: SecretKey, sch: Scheme, pixels: np.ndarray) -> bool:
    """True if ``ct`` (verified under ``key``) is a finished encryption of ``pixels`` by ``sch``."""
    try:
        sch.check_ciphertext(ct)
    except RICError:
        return False  # another scheme or model: redo it (written atomically)
    mac = ct.plain_mac
    # made from another image (or by a version without the field): redo it
    return bool(mac) and mac.isascii() and hmac.compare_digest(plain_mac(key, ct.nonce, pixels), mac)
