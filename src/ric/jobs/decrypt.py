"""The decryption job: authenticate every file first, then decrypt what is pending.

Streaming: a first pass (:func:`scan_decrypt`) reads the files one at a time, authenticates each as it is read and
keeps only its metadata (and, up to :data:`HELD_BYTES`, the files that ciphertexts seal, so that they are opened
once); then the scheme objects are loaded and checked (a file's model may only name a shipped bundle unless the
caller gives one). The second pass (:func:`decrypt_pending`) reads, re-checks and decrypts ``batch_size`` files at a
time. Restart rules: an existing output is skipped if it is this ciphertext's recovered image (its
``ric:recovered-mac`` binds it to this ciphertext and key) or the sealed file's very bytes, redone if it is another
image recovered under the key, and refused otherwise unless ``force``.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ric.container import (
    RECOVERED_FROM_FIELD,
    RECOVERED_MAC_FIELD,
    Ciphertext,
    keyed_name_id,
    message_digest,
    read_any,
    recovered_mac,
)
from ric.errors import AuthenticationError, CiphertextError, InputError, RICError
from ric.files import atomic_write_bytes, sha256_file
from ric.imageio import open_image, write_png
from ric.jobs.plan import outputs, refuse_overwriting_inputs, refuse_unproven, tick
from ric.keys import SecretKey
from ric.schemes import Scheme, SchemeOptions, SealedFile, scheme_class

HELD_BYTES = 512 << 20  # sealed files kept from the scan for the write (the rest are opened again)


class Decrypters:
    """The scheme objects of one decryption job (or of one Ray worker, across its tasks), each loaded once."""

    def __init__(self, opts: SchemeOptions | None = None):
        self.opts = opts or SchemeOptions()
        self._loaded: dict[tuple, Scheme] = {}

    def group(self, ct: Ciphertext) -> tuple:
        """Ciphertexts with one group key are decrypted together, by one scheme object."""
        cls = scheme_class(ct.scheme_name)
        return (cls.name, cls.decrypter_key(ct, self.opts), cls.batch_key(ct))

    def get(self, group: tuple) -> Scheme:
        if group[:2] not in self._loaded:
            self._loaded[group[:2]] = scheme_class(group[0]).for_decryption(group[1], self.opts)
        return self._loaded[group[:2]]


@dataclass
class DecryptScan:
    """A decryption job after its first pass: one row per file (``skipped`` or ``pending``), each file's message
    digest (pass 2 checks that the file did not change), the pending files grouped by the scheme object that
    decrypts them, and the sealed files kept from the scan (index -> :class:`~ric.schemes.SealedFile`)."""

    rows: list[dict]
    digests: list[bytes]
    groups: dict[tuple, list[int]]
    schemes: dict[tuple, Scheme]
    held: dict[int, SealedFile] = field(default_factory=dict)


def scan_decrypt(paths: list[Path], outs: list[Path], key: SecretKey, decrypters: Decrypters | None = None,
                 verify: bool = True, force: bool = False, any_name: bool = False, planned: bool = False
                 ) -> DecryptScan:
    """Pass 1: authenticate every file (raises before anything is written), find the finished outputs (an existing
    output that no decryption under ``key`` made is refused unless ``force``), and load and check the scheme
    objects that the pending files need. ``planned``: ``outs`` are already the final outputs (a sealed file's name
    included: a Ray chunk after the scan of the whole job), else a sealed file is written under its sealed name."""
    decrypters = decrypters or Decrypters()
    metas: list[Ciphertext] = []  # pixels dropped: a zero view of the right shape
    digests: list[bytes] = []
    files: dict[int, tuple[str, str]] = {}  # ciphertexts that seal a file: (sealed name, sha256 of the file)
    held: dict[int, SealedFile] = {}
    nbytes = 0
    for i, p in enumerate(paths):  # structure, then the tag, one file in memory at a time
        ct = read_verified(p, key, verify)
        sealed = scheme_class(ct.scheme_name).sealed_file(ct, key)
        if sealed is not None:
            files[i] = (sealed.name, hashlib.sha256(sealed.data).hexdigest())
            nbytes += len(sealed.data)
            if nbytes <= HELD_BYTES:
                held[i] = sealed
        elif verify and ct.name_id and not any_name:
            _check_name_binding(p, ct, key)
        digests.append(message_digest(ct))
        metas.append(replace(ct, pixels=np.broadcast_to(np.zeros((), np.uint8), ct.pixels.shape)))
    outs = _planned_outputs(outs, files, paths, force) if planned else _file_outputs(paths, outs, files, force)
    rows = []
    for i, (p, o, ct) in enumerate(zip(paths, outs, metas, strict=True)):  # after every tag
        done = os.path.lexists(o) and (_same_file(o, files[i][1]) if i in files else
                                       _own_recovery(o, key, digests[i], force))
        rows.append({"input": str(p), "output": str(o), "status": "skipped" if done else "pending",
                     "target": ct.target if ct.target >= 0 else None, "scheme": ct.scheme_name})
    groups: dict[tuple, list[int]] = {}
    for i, (ct, r) in enumerate(zip(metas, rows, strict=True)):
        if r["status"] == "pending":
            groups.setdefault(decrypters.group(ct), []).append(i)
    schemes = {gk: _checked(decrypters.get(gk), idx, metas, paths) for gk, idx in groups.items()}
    held = {i: s for i, s in held.items() if rows[i]["status"] == "pending"}
    return DecryptScan(rows, digests, groups, schemes, held)


def _checked(sch: Scheme, idx: list[int], metas: list[Ciphertext], paths: list[Path]) -> Scheme:
    """``sch`` after checking that it can decrypt every file of its group (before the first write)."""
    for i in idx:
        try:
            sch.check_decryptable(metas[i])
        except CiphertextError as e:
            raise CiphertextError(f"{paths[i]}: {e}") from None
    return sch


def read_verified(p: Path, key: SecretKey, verify: bool) -> Ciphertext:
    """Read a ciphertext of any scheme and (``verify``) authenticate it as its scheme does."""
    ct = read_any(p)
    if verify:
        scheme_class(ct.scheme_name).authenticate(ct, key, source=str(p))
    return ct


def _check_name_binding(p: Path, ct: Ciphertext, key: SecretKey) -> None:
    """Refuse a ciphertext whose authenticated ``ric:name-id`` is not that of the name it is read under."""
    if not hmac.compare_digest(keyed_name_id(key, p.name), ct.name_id):
        raise AuthenticationError(f"{p}: this ciphertext was written under another file name (renamed, or swapped "
                                  "by whoever stored it); rename it back, or pass --any-name to decrypt it as it is")


def _file_outputs(paths: list[Path], outs: list[Path], files: dict[int, tuple[str, str]], force: bool = False
                  ) -> list[Path]:
    """The outputs of a decryption job: ``<stem>.png`` for pixel payloads, the sealed file name for sealed files
    (the name travels inside the authenticated payload). Two files with the same name get ``name (2).ext``, ... in
    input order; an existing file that is not this one is refused (it would be replaced), before any write,
    unless ``force``."""
    outs = list(outs)
    taken = {o for i, o in enumerate(outs) if i not in files}
    for i, (name, digest) in sorted(files.items()):
        folder = outs[i].parent
        base = Path(_plain_name(name, paths[i]))
        o, n = folder / base.name, 1
        while o in taken:
            n += 1
            o = folder / f"{base.stem} ({n}){base.suffix}"
        taken.add(o)
        _refuse_other_file(o, digest, paths[i], force)
        outs[i] = o
    outputs(paths, outs[0].parent if outs else Path("."), outs)  # two ciphertexts of one name, not sealed files
    refuse_overwriting_inputs(paths, outs)
    return outs


def _planned_outputs(outs: list[Path], files: dict[int, tuple[str, str]], paths: list[Path], force: bool
                     ) -> list[Path]:
    """``outs`` as given (already final), after the same refusal as :func:`_file_outputs`."""
    for i, (_, digest) in files.items():
        _refuse_other_file(outs[i], digest, paths[i], force)
    return list(outs)


def _refuse_other_file(o: Path, digest: str, source: Path, force: bool) -> None:
    """Refuse (before any write) an existing ``o`` that is not the file ``source`` seals, unless ``force``."""
    if os.path.lexists(o) and not _same_file(o, digest) and not force:
        raise InputError(f"{o} exists and is not the photo that {source} holds; decryption replaces no file "
                         "it did not make: move it away, choose another output folder (-o), or pass --force")


def _plain_name(name: str, source: Path) -> str:
    """The sealed file name if it is a plain file name (no folder, no control character), else the ciphertext's
    stem with the name's suffix."""
    ok = (name not in ("", ".", "..") and "/" not in name and "\\" not in name and len(name) <= 255
          and all(ch.isprintable() for ch in name))
    return name if ok else source.stem + "".join(ch for ch in Path(name).suffix if ch.isalnum() or ch == ".")[:8]


def _same_file(path: Path, digest: str) -> bool:
    try:
        return os.path.isfile(path) and not os.path.islink(path) and sha256_file(path) == digest
    except OSError:
        return False


def decrypt_pending(paths: list[Path], scan: DecryptScan, key: SecretKey, verify: bool = True, batch_size: int = 64,
                    progress: Callable | None = None) -> None:
    """Pass 2: read, re-check and decrypt the pending files ``batch_size`` at a time (a sealed file kept from the
    scan is written as it is); each recovered image is written atomically with its ``ric:recovered-mac`` (status
    ``decrypted``)."""
    rows, digests = scan.rows, scan.digests
    for gk, idx in scan.groups.items():  # batch_size files in memory at a time
        for s in range(0, len(idx), batch_size):
            part = idx[s:s + batch_size]
            again = [i for i in part if i not in scan.held]
            cts = []
            for i in again:
                ct = read_any(paths[i])
                if message_digest(ct) != digests[i]:
                    raise CiphertextError(f"{paths[i]}: file changed while decrypting; rerun")
                cts.append(ct)
            got = dict(zip(again, scan.schemes[gk].decrypt(cts, key, verify=verify) if cts else [], strict=True))
            for i in part:
                _write(rows[i]["output"], scan.held.pop(i) if i in scan.held else got[i], key, digests[i])
                rows[i]["status"] = "decrypted"
            tick(progress, len(part))


def _write(out: str, plain: np.ndarray | SealedFile, key: SecretKey, digest: bytes) -> None:
    if isinstance(plain, np.ndarray):
        write_png(out, plain, {RECOVERED_MAC_FIELD: recovered_mac(key, digest, plain),
                               RECOVERED_FROM_FIELD: digest.hex()})
    else:  # a sealed file: its own bytes
        atomic_write_bytes(out, plain.data)


def _own_recovery(o: Path, key: SecretKey, ct_digest: bytes, force: bool = False) -> bool:
    """True if ``o`` is the finished recovered image of the ciphertext with message digest ``ct_digest`` (skip it);
    False if it is another image recovered under ``key`` (redo it), or with ``force`` for anything else; any other
    existing file is refused."""
    src = _recovered_from(o, key, ct_digest)
    if src is None and not force:
        refuse_unproven(o, "an image recovered under this key (its ric:recovered-mac does not verify)")
    return src == ct_digest


def _recovered_from(o: Path, key: SecretKey, ct_digest: bytes) -> bytes | None:
    """The message digest of the ciphertext whose recovered image under ``key`` the file ``o`` is: ``ct_digest``
    if its ``ric:recovered-mac`` verifies for that ciphertext, else the digest its ``ric:recovered-from`` names if
    the MAC verifies for that one; None for anything else (a file no decryption under this key made). One HMAC or
    two, no decryption."""
    try:
        with open_image(o, formats=("PNG",)) as img:
            text = dict(getattr(img, "text", None) or {})
            a = np.array(img, dtype=np.uint8)
    except RICError:
        return None
    mac, named = text.get(RECOVERED_MAC_FIELD, ""), text.get(RECOVERED_FROM_FIELD, "")
    if not (isinstance(mac, str) and mac.isascii() and mac) or a.ndim not in (2, 3):
        return None
    a = a if a.ndim == 3 else a[:, :, None]
    for dg in (ct_digest, _hex_digest(named)):
        if dg is not None and hmac.compare_digest(recovered_mac(key, dg, a), mac):
            return dg
    return None


def _hex_digest(s) -> bytes | None:
    if not isinstance(s, str) or len(s) != 64 or not s.isascii():
        return None
    try:
        return bytes.fromhex(s)
    except ValueError:
        return None
