"""Write the known-answer vectors and fixture ciphertexts of tests/vectors/ (checked by tests/test_vectors.py).

    python scripts/make_vectors.py                 # writes what is missing; refuses to change an existing file
    python scripts/make_vectors.py --force         # rewrite the JSON vectors (never the fixture ciphertexts)

Run it only for a deliberate new format version (a new container FORMAT, exact-scheme VERSION, sub-key label or
payload codec): the vectors are the formats' definition, so a change that breaks them must be a decision, not an
accident. Fixture ciphertexts are never rewritten: a new format version adds fixtures under new names, and every
fixture keeps decrypting in every later version (tests/vectors/README.md).

Everything is computed through ric's public calls from a fixed key and nonce. The exact scheme's sealing fills the
bits after its payload (fewer than 8) with random bits, so the vectors pin the byte stream the digits carry, not the
digits themselves; the fixtures pin whole ciphertexts (made once, with the noise they drew then).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import struct
import sys
import tempfile
from pathlib import Path

import numpy as np

import ric
from ric.api import decrypt_files, encrypt_files, sample_images
from ric.container import FORMAT, Ciphertext, plain_mac, read_ciphertext, recovered_mac
from ric.imageio import read_image, write_png
from ric.keys import SecretKey, keystream, random_noise_image, scramble_permutation
from ric.schemes import exact, lossless

ROOT = Path(__file__).resolve().parents[1]
KEY = SecretKey(bytes(range(32)))
NONCE = bytes(range(0xA0, 0xB0))
HEADER_BYTES = 27  # the exact scheme's public header: magic "RX", version, key id (8), nonce (16)
# Every HKDF label in src/ric, and whether the nonce follows it in the info (tests/test_vectors.py checks this list
# against the labels it finds in the sources).
LABELS = {"ric/key-id": False, "ric/mac": False, "ric/plain-mac": False, "ric/recovered-mac": False,
          "ric/rni": True, "ric/perm": True, "ric/exact/q": True, "ric/exact/aead": True,
          "ric/file-mac": False, "ric/name-id": False}


def pixels_json(a: np.ndarray) -> dict:
    a = np.ascontiguousarray(a, dtype=np.uint8)
    return {"shape": list(a.shape), "hex": a.tobytes().hex()}


def pattern(shape: tuple[int, int, int], seed: int) -> np.ndarray:
    """A small deterministic test image (stored in the vectors as bytes, so numpy's generator may change)."""
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def key_vectors() -> dict:
    subkeys = []
    for label, with_nonce in LABELS.items():
        info = label.encode() + (NONCE if with_nonce else b"")
        n = 8 if label == "ric/key-id" else 32
        subkeys.append({"label": label, "nonce": with_nonce, "length": n, "subkey": KEY.subkey(info, n).hex()})
    streams = [{"label": lb, "bytes": 64, "keystream": keystream(KEY, NONCE, 64, lb.encode()).hex()}
               for lb, with_nonce in LABELS.items() if with_nonce and lb != "ric/exact/aead"]
    rni = random_noise_image(KEY, NONCE, (1, 2, 4))
    q0, offset = exact.keyed_digits(KEY, NONCE, (2, 2, 3), 6)
    return {"description": "HKDF-SHA256 sub-keys (salt 'ric-v1', info = label, or label || nonce) of ric.keys, "
                           "the ChaCha20 keystreams under the nonce-bound ones, and what is built from them",
            "key": KEY.raw.hex(), "key_text": KEY.to_text(), "key_id": KEY.key_id, "nonce": NONCE.hex(),
            "subkeys": subkeys, "keystreams": streams,
            "rni": {"shape": [1, 2, 4], "times_2_24": [int(v) for v in (rni.flatten() * (1 << 24)).tolist()]},
            "permutation": {"numel": 16, "order": scramble_permutation(KEY, NONCE, 16).tolist()},
            "exact_start": {"shape": [2, 2, 3], "bits": 6, "q0": q0.flatten().tolist(),
                            "offset_times_512": [int(round(v * 512)) for v in offset.flatten().tolist()]}}


def _container_case(name: str, pixels: np.ndarray, **fields) -> dict:
    ct = Ciphertext(pixels=pixels, **fields).sign(KEY)
    kept = {k: (v.hex() if isinstance(v, bytes) else v) for k, v in fields.items() if k != "key_id"}
    return {"name": name, "pixels": pixels_json(pixels), "fields": kept, "text_chunks": ct.text_chunks(),
            "message": ct.message().hex(), "tag": ct.tag.hex()}


def container_vectors() -> dict:
    rgb, grey = pattern((2, 3, 3), 1), pattern((3, 2, 1), 2)
    pm = plain_mac(KEY, NONCE, rgb)
    cases = [
        _container_case("paper, every field", rgb, model="svhn-ric-v3", nonce=NONCE, target=7, key_id=KEY.key_id,
                        classifier="svhn-cnn7@0123456789abcdef", model_fp="fedcba9876543210", plain_mac=pm),
        _container_case("paper, required fields only", rgb, model="svhn-ric", nonce=NONCE, target=0,
                        key_id=KEY.key_id, classifier="svhn-cnn7@0123456789abcdef"),
        _container_case("exact, grey", grey, model="", nonce=NONCE, target=3, key_id=KEY.key_id,
                        classifier="mnist-cnn5@00000000ffffffff", scheme="exact", bits=4,
                        plain_mac=plain_mac(KEY, NONCE, grey)),
    ]
    digest = hashlib.sha256(b"a ciphertext message").digest()
    macs = [{"kind": "plain_mac", "nonce": NONCE.hex(), "pixels": pixels_json(a), "mac": plain_mac(KEY, NONCE, a)}
            for a in (rgb, grey)]
    macs += [{"kind": "recovered_mac", "ct_digest": digest.hex(), "pixels": pixels_json(a),
              "mac": recovered_mac(KEY, digest, a)} for a in (rgb, grey)]
    return {"description": f"The {FORMAT} container: the HMAC-SHA256 message (canonical JSON of format, fields and "
                           "shape, a NUL, the raw pixels), its tag under the key's ric/mac sub-key, the PNG text "
                           "chunks; plain_mac and recovered_mac",
            "format": FORMAT, "key": KEY.raw.hex(), "cases": cases, "macs": macs}


def stream_of(digits: np.ndarray, bits: int, nbytes: int) -> bytes:
    """The bytes that the low digits after sub-pixel 0 carry (``bits`` per digit, most significant bit first)."""
    d = np.ascontiguousarray(digits, dtype=np.uint8).reshape(-1)[1:] & ((1 << bits) - 1)
    stream = ((d[:, None] >> np.arange(bits - 1, -1, -1, dtype=np.uint8)) & 1).astype(np.uint8).reshape(-1)
    return np.packbits(stream[:8 * nbytes]).tobytes()


def _exact_case(codec: str, shape: tuple[int, int, int], bits: int, plain: np.ndarray) -> dict:
    c = lossless.BY_NAME[codec]
    data = c.encode(plain)
    assert np.array_equal(lossless.decompress(c.id, data, plain.shape), plain)
    digits = exact.seal(KEY, NONCE, bits, shape, plain, packed=(c.id, data))
    cap = exact.capacity_bytes(shape, bits)
    stream = stream_of(digits, bits, cap)
    header = stream[:HEADER_BYTES]
    aad = header + struct.pack(">BIIB", bits, *shape)
    prefix = struct.pack(">BBIII", c.id, plain.shape[2], plain.shape[0], plain.shape[1], len(data))
    body = prefix + data + bytes(cap - HEADER_BYTES - 16 - len(prefix) - len(data))
    assert np.array_equal(exact.open_sealed(KEY, digits), plain)
    return {"name": f"{codec}, {shape[0]}x{shape[1]}x{shape[2]} carrier, b = {bits}", "version": exact.VERSION,
            "bits": bits, "shape": list(shape), "plaintext": pixels_json(plain), "codec_id": c.id,
            "codec": codec, "payload": data.hex(), "capacity_bytes": cap, "header": header.hex(),
            "aead_subkey": KEY.subkey(b"ric/exact/aead" + NONCE).hex(), "aad": aad.hex(), "body": body.hex(),
            "stream": stream.hex(), "first_digit": int(digits.reshape(-1)[0])}


def exact_vectors() -> dict:
    cases = [_exact_case("png", (16, 16, 3), 6, pattern((8, 8, 3), 3)),
             _exact_case("webp", (24, 24, 1), 4, pattern((6, 5, 1), 4)),
             _exact_case("jpegxl", (12, 12, 3), 7, pattern((4, 4, 3), 5))]
    return {"description": "The exact scheme's low digits: digit 0 holds b; the next digits carry, b bits each and "
                           "most significant bit first, the public header (magic RX, version, key id, nonce) and "
                           "the ChaCha20-Poly1305 sealed body (zero nonce, key HKDF(key, ric/exact/aead || nonce), "
                           "associated data header || b, H, W, C), whose plaintext is codec id, channels, height, "
                           "width, payload length, the losslessly compressed payload and zero padding",
            "key": KEY.raw.hex(), "nonce": NONCE.hex(), "cases": cases}


def _sha(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a, dtype=np.uint8).tobytes()).hexdigest()


def _psnr(a: np.ndarray, b: np.ndarray) -> float | None:
    """PSNR in dB (None: identical)."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return None if mse == 0 else round(float(10 * np.log10(255 ** 2 / mse)), 2)


def write_fixtures(folder: Path) -> dict:
    """Encrypt one shipped sample with each scheme (and strip the exact file's metadata); the expected plaintext is
    what ``ric.decrypt_files`` recovers now (bit-exact for the exact scheme)."""
    folder.mkdir(parents=True, exist_ok=True)
    sample = sample_images()[0][0]
    made = {}
    jobs = {f"exact-v{exact.VERSION}-svhn.png": {"scheme": "exact"},
            f"paper-{FORMAT.lower()}-svhn-ric-v3.png": {"scheme": "paper", "model": "svhn-ric-v3"}}
    with tempfile.TemporaryDirectory() as td:
        for i, (name, kw) in enumerate(jobs.items()):
            if (folder / name).exists():
                continue
            rows = encrypt_files([sample], Path(td) / f"ct{i}", KEY, **kw)
            assert rows[0]["status"] == "encrypted", rows
            (folder / name).write_bytes(Path(rows[0]["output"]).read_bytes())
            made[name] = kw
        bare = f"exact-v{exact.VERSION}-svhn-stripped.png"
        if not (folder / bare).exists():
            write_png(folder / bare, read_ciphertext(folder / f"exact-v{exact.VERSION}-svhn.png").pixels)
            made[bare] = {"scheme": "exact", "stripped": True}
        made.update(_photo_fixture(folder, sample, Path(td)))
        rows = []
        for i, (name, kw) in enumerate(made.items()):
            if kw.get("photo"):
                rows.append(kw["row"])
                continue
            out = decrypt_files([folder / name], Path(td) / f"rec{i}", KEY)
            rec = read_image(out[0]["output"], channels=3)
            assert kw["scheme"] != "exact" or _sha(rec) == _sha(read_image(sample)), name
            src = read_image(sample)
            rows.append({"file": name, **kw, "file_sha256": hashlib.sha256((folder / name).read_bytes()).hexdigest(),
                         "plaintext_shape": list(rec.shape), "plaintext_sha256": _sha(rec),
                         "source": f"ric/samples/{sample.name}", "source_sha256": _sha(src),
                         "psnr_db_to_source": _psnr(rec, src), "written_by": f"ric {ric.__version__}"})
    return {"key": KEY.raw.hex(), "fixtures": rows}


def _photo_fixture(folder: Path, sample: Path, td: Path) -> dict:
    """Format 2: a small JPEG (the shipped sample upscaled, with EXIF) sealed as its file in a compact carrier for
    ``cifar10-resnet18``; the expected output is that JPEG, byte for byte, under its own name."""
    from PIL import Image

    name = f"exact-v{exact.FILE_VERSION}-photo.png"
    if (folder / name).exists():
        return {}
    photo = td / "IMG_0001.jpg"
    exif = Image.Exif()
    exif[0x010F] = "RIC fixture"
    Image.open(sample).resize((120, 90), Image.BICUBIC).save(photo, quality=90, exif=exif.tobytes())
    rows = encrypt_files([photo], td / "ct-photo", KEY, classifier="cifar10-resnet18")
    assert rows[0]["status"] == "encrypted", rows
    (folder / name).write_bytes(Path(rows[0]["output"]).read_bytes())
    out = decrypt_files([folder / name], td / "rec-photo", KEY)
    data = photo.read_bytes()
    assert Path(out[0]["output"]).read_bytes() == data
    row = {"file": name, "scheme": "exact", "format_version": exact.FILE_VERSION,
           "file_sha256": hashlib.sha256((folder / name).read_bytes()).hexdigest(), "photo_name": photo.name,
           "photo_sha256": hashlib.sha256(data).hexdigest(), "photo_hex": data.hex(),
           "written_by": f"ric {ric.__version__}"}
    return {name: {"photo": True, "row": row}}


def _write_json(path: Path, data: dict, force: bool) -> None:
    text = json.dumps(data, indent=1, ensure_ascii=False) + "\n"
    if path.exists() and path.read_text() != text and not force:
        sys.exit(f"{path} exists and differs: the format changed. Rerun with --force only for a deliberate new "
                 "format version (and keep the old fixtures).")
    path.write_text(text)
    print(f"wrote {path}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=ROOT / "tests/vectors")
    p.add_argument("--force", action="store_true", help="rewrite JSON vectors that differ (new format version)")
    a = p.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    _write_json(a.out / "keys.json", key_vectors(), a.force)
    _write_json(a.out / "container.json", container_vectors(), a.force)
    _write_json(a.out / "exact.json", exact_vectors(), a.force)
    fx = a.out / "fixtures"
    new = write_fixtures(fx)
    index = fx / "fixtures.json"
    old = json.loads(index.read_text()) if index.is_file() else {"key": new["key"], "fixtures": []}
    if new["fixtures"]:
        old["fixtures"] += new["fixtures"]
        index.write_text(json.dumps(old, indent=1) + "\n")
        print(f"wrote {len(new['fixtures'])} fixture(s) into {fx}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
