"""Tampering with ciphertext files: every edit of a pixel, a metadata field or the PNG layout, and every wrong
key, must be refused by the container's tag (measured as rejection rates).

Everything works on tensors in [0,1] (N×C×H×W) or uint8 pixels, so the tests run it on tiny data;
:mod:`ric.security.report` runs it on the shipped models (``ric security``)."""

from __future__ import annotations

import struct
import zlib
from dataclasses import replace
from pathlib import Path

import numpy as np

from ric.container import Ciphertext
from ric.errors import AuthenticationError
from ric.keys import SecretKey, new_nonce


def tag_rejection(cts: list[Ciphertext], key: SecretKey, wrong_keys: list[SecretKey], seed: int = 0) -> dict:
    """Fraction of wrong keys and of tampered files (pixel bit, target, nonce, model) that verification rejects;
    also checks that the right key accepts every untouched file."""
    rng = np.random.default_rng(seed)

    def rejected(ct, k):
        try:
            ct.verify(k)
            return False
        except AuthenticationError:
            return True

    accepted = sum(not rejected(ct, key) for ct in cts)
    wrong = [rejected(ct, k) for k in wrong_keys for ct in cts]
    tampered: dict[str, list] = {"pixel bit": [], "target": [], "nonce": [], "model": [], "classifier": []}
    for ct in cts:
        px = ct.pixels.copy()
        h, w, c = px.shape
        px[rng.integers(h), rng.integers(w), rng.integers(c)] ^= np.uint8(1 << int(rng.integers(8)))
        variants = {"pixel bit": replace(ct, pixels=px), "target": replace(ct, target=ct.target + 1),
                    "nonce": replace(ct, nonce=new_nonce()), "model": replace(ct, model=ct.model + "x"),
                    "classifier": replace(ct, classifier=ct.classifier + "x")}
        for name, v in variants.items():
            tampered[name].append(rejected(v, key))
    return {"right_key_accepted": accepted / len(cts), "wrong_keys_rejected": float(np.mean(wrong)),
            "wrong_key_trials": len(wrong),
            "tampered_rejected": {k: float(np.mean(v)) for k, v in tampered.items()}, "tamper_trials": len(cts)}


# ------------------------------------------------------------------------------------------ edits of real files
_PNG = b"\x89PNG\r\n\x1a\n"


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """The (type, body) chunks of a PNG file, in order."""
    if data[:8] != _PNG:
        raise ValueError("not a PNG")
    out, i = [], 8
    while i + 8 <= len(data):
        n = struct.unpack(">I", data[i:i + 4])[0]
        out.append((data[i + 4:i + 8], data[i + 8:i + 8 + n]))
        i += 12 + n
    return out


def png_bytes_of(chunks: list[tuple[bytes, bytes]]) -> bytes:
    """A PNG file from (type, body) chunks, with valid CRCs."""
    return _PNG + b"".join(struct.pack(">I", len(b)) + t + b + struct.pack(">I", zlib.crc32(t + b)) for t, b in chunks)


def _text(chunk: tuple[bytes, bytes]) -> tuple[str, str] | None:
    t, b = chunk
    if t != b"tEXt" or b"\0" not in b:
        return None
    k, v = b.split(b"\0", 1)
    return k.decode("latin-1"), v.decode("latin-1")


def _set_field(chunks, field: str, value: str | None):
    """Replace (``value``) or remove (``None``) the tEXt chunk ``ric:<field>``."""
    out = []
    for c in chunks:
        kv = _text(c)
        if kv and kv[0] == f"ric:{field}":
            if value is not None:
                out.append((b"tEXt", f"ric:{field}".encode() + b"\0" + value.encode("latin-1")))
        else:
            out.append(c)
    return out


def _duplicate_field(chunks, field: str, value: str | None = None):
    """A second ``ric:<field>`` chunk right after the first (same value, or ``value``)."""
    out = []
    for c in chunks:
        out.append(c)
        kv = _text(c)
        if kv and kv[0] == f"ric:{field}":
            out.append((b"tEXt", f"ric:{field}".encode() + b"\0" + (kv[1] if value is None else value).encode()))
    return out


def _reencode(data: bytes, keep_text: bool, jpeg: bool = False) -> bytes:
    """What an image tool does: decode and save again (as PNG; ``jpeg``: through a JPEG at quality 95 first),
    copying the text chunks or dropping them."""
    import io

    from PIL import Image, PngImagePlugin

    img = Image.open(io.BytesIO(data), formats=["PNG"])
    img.load()
    info = PngImagePlugin.PngInfo()
    for k, v in (img.text if keep_text else {}).items():
        info.add_text(k, v)
    px = img.convert("RGB") if img.mode != "RGB" else img
    if jpeg:
        buf = io.BytesIO()
        px.save(buf, "JPEG", quality=95)
        px = Image.open(io.BytesIO(buf.getvalue()), formats=["JPEG"]).convert(img.mode)
    out = io.BytesIO()
    px.save(out, "PNG", pnginfo=info, compress_level=9)
    return out.getvalue()


def file_edits(ct: Ciphertext, other_key_id: str) -> dict[str, bytes]:
    """Edited copies (PNG bytes) of the file of ``ct``: metadata edits, removed and duplicated chunks, and
    re-encodings. Every one must be refused (:class:`CiphertextError` or :class:`AuthenticationError`)."""
    data = ct.to_png()
    ch = png_chunks(data)
    meta = {kv[0]: kv[1] for kv in map(_text, ch) if kv}
    fp = meta.get("ric:model-fp", "0" * 16)
    flipped = ("1" if fp[0] == "0" else "0") + fp[1:]
    return {
        "key-id edited": png_bytes_of(_set_field(ch, "key-id", other_key_id)),
        "model-fp edited": png_bytes_of(_set_field(ch, "model-fp", flipped)),
        "model-fp removed": png_bytes_of(_set_field(ch, "model-fp", None)),
        "nonce removed": png_bytes_of(_set_field(ch, "nonce", None)),
        "tag removed": png_bytes_of(_set_field(ch, "tag", None)),
        "target duplicated (other value)": png_bytes_of(_duplicate_field(ch, "target", str(ct.target + 1))),
        "target duplicated (same value)": png_bytes_of(_duplicate_field(ch, "target")),
        "tag duplicated (same value)": png_bytes_of(_duplicate_field(ch, "tag")),
        "re-encoded, metadata dropped": _reencode(data, keep_text=False),
        "re-encoded through JPEG q95, metadata kept": _reencode(data, keep_text=True, jpeg=True),
    }


def file_edit_rejection(cts: list[Ciphertext], key: SecretKey, folder: str | Path) -> dict:
    """Write each ciphertext as a real PNG, apply every edit of :func:`file_edits`, read the file back with
    :func:`~ric.container.read_ciphertext` and verify it under the right key. Returns, per edit, how often it
    was refused and by which error; ``accepted`` counts files that passed (each is a failure of the check),
    ``other`` any other exception (a bug). Also checks that a lossless re-encoding that keeps the pixels and
    every field is accepted (the tag covers the content, not the PNG encoding)."""
    from ric.container import read_ciphertext
    from ric.errors import CiphertextError

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    other = SecretKey.generate().key_id
    res: dict[str, dict] = {}

    def outcome(data: bytes, name: str) -> str:
        p = folder / name
        p.write_bytes(data)
        try:
            read_ciphertext(p).verify(key)
            return "accepted"
        except AuthenticationError:
            return "AuthenticationError"
        except CiphertextError:
            return "CiphertextError"
        except Exception as e:  # noqa: BLE001 - reported, not swallowed: any other exception is a bug
            return f"other: {type(e).__name__}"
        finally:
            p.unlink(missing_ok=True)

    lossless = 0
    for i, ct in enumerate(cts):
        for name, data in file_edits(ct, other).items():
            r = res.setdefault(name, {"files": 0, "rejected": 0, "by": {}})
            o = outcome(data, f"{i}.png")
            r["files"] += 1
            r["rejected"] += o in ("AuthenticationError", "CiphertextError")
            r["by"][o] = r["by"].get(o, 0) + 1
        lossless += outcome(_reencode(ct.to_png(), keep_text=True), f"{i}.png") == "accepted"
    for r in res.values():
        r["rejected_share"] = r["rejected"] / r["files"]
    return {"edits": res, "files": len(cts), "lossless_reencode_accepted": lossless / max(1, len(cts))}
