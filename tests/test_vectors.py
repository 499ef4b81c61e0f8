"""Known answers for every byte format (tests/vectors/, written by scripts/make_vectors.py): HKDF sub-keys and
what is built from them, the RIC-1 container's message and tag, the exact scheme's header and sealed payload, and
fixture ciphertexts that must keep decrypting. Each vector is checked against ric and, where the format is
simple enough, against an independent computation with ``cryptography``/``hashlib`` from its written definition."""

import hashlib
import hmac
import json
import re
import struct
from pathlib import Path

import numpy as np
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

import ric
from ric.api import decrypt_files
from ric.container import Ciphertext, plain_mac, read_ciphertext_bytes, recovered_mac
from ric.imageio import read_image
from ric.keys import SecretKey, keystream, random_noise_image, scramble_permutation
from ric.schemes import exact, lossless

VECTORS = Path(__file__).resolve().parent / "vectors"
KEYS = json.loads((VECTORS / "keys.json").read_text())
CONTAINER = json.loads((VECTORS / "container.json").read_text())
EXACT = json.loads((VECTORS / "exact.json").read_text())
FIXTURES = json.loads((VECTORS / "fixtures" / "fixtures.json").read_text())
KEY = SecretKey(bytes.fromhex(KEYS["key"]))
NONCE = bytes.fromhex(KEYS["nonce"])
SUBKEY = {s["label"]: bytes.fromhex(s["subkey"]) for s in KEYS["subkeys"]}


def pixels(d: dict) -> np.ndarray:
    return np.frombuffer(bytes.fromhex(d["hex"]), dtype=np.uint8).reshape(d["shape"])


def sha(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a, dtype=np.uint8).tobytes()).hexdigest()


# ------------------------------------------------------------------------------------------ keys
def test_every_hkdf_label_in_the_package_has_a_vector():
    found = set()
    for p in Path(ric.__file__).resolve().parent.rglob("*.py"):
        found |= set(re.findall(r'b"(ric/[a-z0-9/_-]+)"', p.read_text()))
    assert found == set(SUBKEY)


@pytest.mark.parametrize("s", KEYS["subkeys"], ids=lambda s: s["label"])
def test_subkeys_are_hkdf_sha256_of_their_label(s):
    info = s["label"].encode() + (NONCE if s["nonce"] else b"")
    expect = HKDF(algorithm=hashes.SHA256(), length=s["length"], salt=b"ric-v1", info=info).derive(KEY.raw)
    assert KEY.subkey(info, s["length"]) == expect == bytes.fromhex(s["subkey"])


def test_key_text_id_and_mac_key(tmp_path):
    assert KEY.to_text() == KEYS["key_text"] and KEY.key_id == KEYS["key_id"] == SUBKEY["ric/key-id"].hex()
    assert KEY.mac_key == SUBKEY["ric/mac"]
    path = tmp_path / "k.key"
    path.write_text(KEYS["key_text"])
    path.chmod(0o600)
    assert SecretKey.load(path) == KEY


@pytest.mark.parametrize("s", KEYS["keystreams"], ids=lambda s: s["label"])
def test_keystreams_are_chacha20_under_the_nonce_subkey(s):
    got = keystream(KEY, NONCE, s["bytes"], s["label"].encode())
    enc = Cipher(algorithms.ChaCha20(SUBKEY[s["label"]], bytes(16)), mode=None).encryptor()
    assert got == enc.update(bytes(s["bytes"])) == bytes.fromhex(s["keystream"])


def test_rni_permutation_and_exact_start():
    r = KEYS["rni"]
    z = random_noise_image(KEY, NONCE, tuple(r["shape"]))
    assert (z.flatten() * (1 << 24)).long().tolist() == r["times_2_24"]
    words = np.frombuffer(keystream(KEY, NONCE, 4 * len(r["times_2_24"])), dtype="<u4") >> 8  # top 24 bits
    assert words.tolist() == r["times_2_24"]
    p = KEYS["permutation"]
    assert scramble_permutation(KEY, NONCE, p["numel"]).tolist() == p["order"]
    e = KEYS["exact_start"]
    q0, offset = exact.keyed_digits(KEY, NONCE, tuple(e["shape"]), e["bits"])
    assert q0.flatten().tolist() == e["q0"]
    assert (offset.flatten().astype(np.float64) * 512).round().astype(int).tolist() == e["offset_times_512"]


# ------------------------------------------------------------------------------------------ container
def _ciphertext(case: dict) -> Ciphertext:
    f = dict(case["fields"])
    f["nonce"] = bytes.fromhex(f["nonce"])
    return Ciphertext(pixels=pixels(case["pixels"]), key_id=KEY.key_id, **f).sign(KEY)


@pytest.mark.parametrize("case", CONTAINER["cases"], ids=lambda c: c["name"])
def test_container_message_tag_and_chunks(case):
    ct = _ciphertext(case)
    assert ct.message().hex() == case["message"]
    assert ct.tag.hex() == case["tag"]
    assert hmac.new(SUBKEY["ric/mac"], bytes.fromhex(case["message"]), hashlib.sha256).hexdigest() == case["tag"]
    head, _, raw = bytes.fromhex(case["message"]).partition(b"\x00")
    assert json.loads(head)["format"] == CONTAINER["format"] and raw == pixels(case["pixels"]).tobytes()
    assert ct.text_chunks() == case["text_chunks"]
    back = read_ciphertext_bytes(ct.to_png())
    back.verify(KEY)
    assert back.text_chunks() == case["text_chunks"] and np.array_equal(back.pixels, pixels(case["pixels"]))


@pytest.mark.parametrize("m", CONTAINER["macs"], ids=lambda m: f"{m['kind']}-{m['pixels']['shape']}")
def test_plain_and_recovered_macs(m):
    a = pixels(m["pixels"])
    shape = struct.pack(">III", *a.shape)
    if m["kind"] == "plain_mac":
        first = bytes.fromhex(m["nonce"])
        got, sub = plain_mac(KEY, first, a), SUBKEY["ric/plain-mac"]
    else:
        first = bytes.fromhex(m["ct_digest"])
        got, sub = recovered_mac(KEY, first, a), SUBKEY["ric/recovered-mac"]
    assert got == hmac.new(sub, first + shape + a.tobytes(), hashlib.sha256).hexdigest() == m["mac"]


# ------------------------------------------------------------------------------------------ exact scheme
def _digits(stream: bytes, bits: int, count: int) -> np.ndarray:
    """``count`` ``bits``-bit digits holding ``stream`` most significant bit first, zero-filled."""
    s = np.unpackbits(np.frombuffer(stream, dtype=np.uint8))
    s = np.concatenate([s, np.zeros(count * bits - len(s), np.uint8)]).reshape(count, bits)
    return (s * (1 << np.arange(bits - 1, -1, -1))).sum(1).astype(np.uint8)


@pytest.mark.parametrize("case", EXACT["cases"], ids=lambda c: c["name"])
def test_exact_payload_opens_from_its_definition(case):
    """Pixels built from the vector's byte stream by the format's definition (and arbitrary high digits) open to
    the plaintext; the header, AEAD key, associated data and body are what the definition says."""
    bits, shape, plain = case["bits"], tuple(case["shape"]), pixels(case["plaintext"])
    stream = bytes.fromhex(case["stream"])
    header = b"RX" + bytes([case["version"]]) + bytes.fromhex(KEY.key_id) + NONCE
    assert stream[:len(header)].hex() == case["header"] == header.hex()
    assert bytes.fromhex(case["aead_subkey"]) == SUBKEY["ric/exact/aead"]
    aad = header + struct.pack(">BIIB", bits, *shape)
    assert aad.hex() == case["aad"]
    body = ChaCha20Poly1305(SUBKEY["ric/exact/aead"]).decrypt(bytes(12), stream[len(header):], aad)
    payload = bytes.fromhex(case["payload"])
    prefix = struct.pack(">BBIII", case["codec_id"], plain.shape[2], plain.shape[0], plain.shape[1], len(payload))
    assert body.hex() == case["body"] and body == prefix + payload + bytes(len(body) - len(prefix) - len(payload))
    assert np.array_equal(lossless.decompress(case["codec_id"], payload, plain.shape), plain)
    n = shape[0] * shape[1] * shape[2]
    low = np.concatenate([[bits], _digits(stream, bits, n - 1)]).astype(np.uint8)
    high = np.random.default_rng(0).integers(0, 1 << (8 - bits), n, dtype=np.uint8)
    c = ((high << bits) | low).astype(np.uint8).reshape(shape)
    hd = exact.read_header(c)
    assert (hd.bits, hd.key_id, hd.nonce) == (bits, KEY.key_id, NONCE)
    assert np.array_equal(exact.open_sealed(KEY, c), plain)


@pytest.mark.parametrize("case", [c for c in EXACT["cases"] if c["version"] == exact.VERSION],
                         ids=lambda c: c["name"])
def test_exact_seal_writes_the_vector(case):
    """This version's sealing, given the vector's compressed payload, writes exactly the vector's byte stream
    (only the fewer than 8 bits after it are random)."""
    bits, shape, plain = case["bits"], tuple(case["shape"]), pixels(case["plaintext"])
    m = exact.seal(KEY, NONCE, bits, shape, plain, packed=(case["codec_id"], bytes.fromhex(case["payload"])))
    assert m.shape == shape and int(m.max()) < (1 << bits) and int(m.reshape(-1)[0]) == case["first_digit"] == bits
    assert exact.capacity_bytes(shape, bits) == case["capacity_bytes"] == len(bytes.fromhex(case["stream"]))
    d = m.reshape(-1)[1:]
    got = np.unpackbits(d[:, None] << np.uint8(8 - bits), axis=1)[:, :bits].reshape(-1)
    assert np.packbits(got[:8 * case["capacity_bytes"]]).tobytes().hex() == case["stream"]


def test_a_fixture_for_every_exact_format_version():
    assert {fx.get("format_version", exact.VERSION) for fx in FIXTURES["fixtures"] if fx["scheme"] == "exact"} == set(
        exact.VERSIONS)


def test_vectors_cover_the_current_exact_version_and_every_codec():
    assert any(c["version"] == exact.VERSION for c in EXACT["cases"])
    assert {c["codec_id"] for c in EXACT["cases"]} == set(lossless.CODECS)


# ------------------------------------------------------------------------------------------ fixtures
@pytest.mark.parametrize("fx", FIXTURES["fixtures"], ids=lambda f: f["file"])
def test_fixture_ciphertexts_keep_decrypting(fx, tmp_path):
    path = VECTORS / "fixtures" / fx["file"]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == fx["file_sha256"], "a fixture was rewritten"
    rows = decrypt_files([path], tmp_path, SecretKey(bytes.fromhex(FIXTURES["key"])))
    assert [r["status"] for r in rows] == ["decrypted"]
    if "photo_sha256" in fx:  # format 2: the photo's own file, byte for byte, under its own name
        out = Path(rows[0]["output"])
        assert out.name == fx["photo_name"] and out.read_bytes() == bytes.fromhex(fx["photo_hex"])
        assert hashlib.sha256(out.read_bytes()).hexdigest() == fx["photo_sha256"]
        return
    rec = read_image(rows[0]["output"], channels=fx["plaintext_shape"][2])
    assert list(rec.shape) == fx["plaintext_shape"] and sha(rec) == fx["plaintext_sha256"]
    if fx["scheme"] == "exact":
        assert fx["plaintext_sha256"] == fx["source_sha256"]
