"""Files without RIC metadata are not unpacked before authentication (hostile-peer issue, item 11): a header in
the pixels that claims far more pixels than the file can hold is refused before decoding, a key id that is not
the key's is refused before the payload is unpacked, and the payload is unpacked a piece at a time."""

import tracemalloc

import numpy as np
import pytest
from PIL import Image

from ric.cli import main
from ric.container import read_any
from ric.errors import AuthenticationError, CiphertextError
from ric.keys import SecretKey, new_nonce
from ric.schemes import exact

MIB = 1 << 20


def _header_only(path, key_id: str, h: int, w: int, bits: int = 6) -> None:
    """A grey PNG without metadata: an exact-scheme public header in its first digits, zeros elsewhere (tiny)."""
    head = exact.HEADER.pack(exact.MAGIC, exact.VERSION, bytes.fromhex(key_id), new_nonce())
    need = -(-8 * len(head) // bits)
    a = np.zeros(h * w, np.uint8)
    a[0] = bits
    a[1:1 + need] = exact.to_digits(head, bits, need)
    Image.fromarray(a.reshape(h, w), mode="L").save(path)


def test_a_small_file_claiming_a_huge_image_is_refused_before_decoding(tmp_path, key, capsys):
    f = tmp_path / "bomb.png"
    _header_only(f, key.key_id, 8192, 8192)  # 64 Mpx of zeros in a few tens of KB
    assert f.stat().st_size < 200_000
    tracemalloc.start()
    try:
        with pytest.raises(CiphertextError, match="more than the limit"):
            read_any(f)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * MIB, peak  # before: 64 MB of pixels, then a bit array of several hundred MB
    key.save(tmp_path / "k")
    assert main(["decrypt", str(f), "-o", str(tmp_path / "rec"), "-k", str(tmp_path / "k")]) == 2
    assert "bomb.png" in capsys.readouterr().err and not (tmp_path / "rec").exists()


def test_another_key_id_is_refused_before_the_payload_is_unpacked(key, monkeypatch):
    other = SecretKey(bytes(range(1, 33)))
    pixels = exact.seal(other, new_nonce(), 6, (32, 32, 3), np.zeros((32, 32, 3), np.uint8))

    real = exact.from_digits

    def unpack(digits, *a, **k):  # the public header (a few dozen digits) may be read; the payload may not
        if len(digits) > 100:
            raise AssertionError("the payload was unpacked before the key id was compared")
        return real(digits, *a, **k)

    monkeypatch.setattr(exact, "from_digits", unpack)
    with pytest.raises(AuthenticationError, match=f"wrong key .*key id {other.key_id}"):
        exact.open_sealed(key, pixels)


def test_the_payload_is_unpacked_a_piece_at_a_time():
    rng = np.random.default_rng(0)
    digits = rng.integers(0, 64, 8 * MIB, dtype=np.uint8)
    whole = np.packbits(((digits[:, None] >> np.arange(5, -1, -1, dtype=np.uint8)) & 1).reshape(-1)).tobytes()
    tracemalloc.start()
    try:
        got = exact.from_digits(digits, 6)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert got == whole and exact.from_digits(digits[:1001], 6, piece=16) == whole[:1001 * 6 // 8]
    assert peak < 24 * MIB, peak  # 6 MiB of output; before: two 48 MiB bit arrays
