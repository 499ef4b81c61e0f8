"""Raw PNG chunk editing for the tests of the strict ciphertext reader (CRCs recomputed, so edits reach the parser)."""

import struct
import zlib

SIG = b"\x89PNG\r\n\x1a\n"


def chunk(typ: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + typ + body + struct.pack(">I", zlib.crc32(typ + body))


def split(data: bytes) -> list[tuple[bytes, bytes]]:
    """(type, body) of every chunk of a well-formed PNG."""
    assert data.startswith(SIG)
    pos, out = len(SIG), []
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        out.append((data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]))
        pos += 12 + n
    return out


def join(chunks) -> bytes:
    return SIG + b"".join(chunk(t, b) for t, b in chunks)


def text(key: str, value: str) -> tuple[bytes, bytes]:
    return b"tEXt", key.encode("latin-1") + b"\x00" + value.encode("latin-1")


def set_text(data: bytes, key: str, value: str | None) -> bytes:
    """Replace (or, with None, remove) the tEXt chunk ``key``."""
    out = []
    for t, b in split(data):
        if t == b"tEXt" and b.split(b"\x00", 1)[0] == key.encode():
            if value is not None:
                out.append(text(key, value))
        else:
            out.append((t, b))
    return join(out)


def add_chunk(data: bytes, new: tuple[bytes, bytes], before: bytes = b"IEND") -> bytes:
    out = []
    for t, b in split(data):
        if t == before:
            out.append(new)
        out.append((t, b))
    return join(out)


def header_only(w: int, h: int, depth: int = 8, colour: int = 0) -> bytes:
    """A PNG whose header claims w×h (tiny, valid zlib data that does not fill it)."""
    return join([(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, colour, 0, 0, 0)),
                 (b"IDAT", zlib.compress(b"\x00" * 64)), (b"IEND", b"")])
