"""Photos of any size: the classifier's declared preprocessing inside the exact scheme, end to end."""

import json

import numpy as np
import pytest
from PIL import Image

from ric.cli import main
from ric.container import read_ciphertext
from ric.schemes.carrier import is_size_class
from ric.schemes.exact import FILE_VERSION, read_header

SIZES = {"a_square": (250, 250, "RGB"), "b_tall": (451, 300, "RGB"), "c_grey": (240, 320, "L")}


@pytest.fixture(scope="module")
def photos(tmp_path_factory, data_root):
    """Real CIFAR-10 test images upscaled to photo sizes (one grey), and a key."""
    d = tmp_path_factory.mktemp("photos")
    imgs = np.load(data_root / "cifar10/cifar10_test.npz")["images"]
    (d / "in").mkdir()
    for i, (name, (h, w, mode)) in enumerate(SIZES.items()):
        Image.fromarray(imgs[i]).resize((w, h), Image.BICUBIC).convert(mode).save(d / "in" / f"{name}.png")
    assert main(["keygen", "-o", str(d / "k")]) == 0
    return d


def _labels(capsys, args):
    capsys.readouterr()
    assert main(["classify", *args, "--json"]) == 0
    return {r["input"].rsplit("/", 1)[1]: r["label"] for r in json.loads(capsys.readouterr().out)["items"]}


def test_photos_travel_as_their_files_in_compact_carriers(photos, tmp_path, capsys):
    d = photos
    rc = main(["encrypt", str(d / "in"), "-o", str(tmp_path / "ct"), "-k", str(d / "k"), "-c", "cifar10-resnet18",
               "--convert", "auto", "-q", "--keep-names", "--robust-set", "none"])  # the carrier's mechanics
    assert rc == 0
    for name in SIZES:
        ct = read_ciphertext(tmp_path / "ct" / f"{name}.png")
        assert ct.scheme == "exact" and ct.pixels.shape[2] == 3 and is_size_class(ct.pixels.shape)
        assert read_header(ct.pixels).version == FILE_VERSION
        assert ct.pixels.size < 2 * (d / "in" / f"{name}.png").stat().st_size  # sized by the file, not the photo
    cloud = _labels(capsys, [str(tmp_path / "ct")])
    plain = _labels(capsys, [str(d / "in"), "-c", "cifar10-resnet18", "--convert", "auto"])
    assert cloud == plain  # the label the classifier gives the original photo
    assert main(["decrypt", str(tmp_path / "ct"), "-o", str(tmp_path / "rec"), "-k", str(d / "k"), "-q"]) == 0
    for name in SIZES:  # the user's files, byte for byte (the grey photo stays grey)
        assert (tmp_path / "rec" / f"{name}.png").read_bytes() == (d / "in" / f"{name}.png").read_bytes()


def test_paper_scheme_needs_resize(photos, tmp_path, capsys):
    d = photos
    args = ["encrypt", str(d / "in" / "a_square.png"), "-o", str(tmp_path / "ct"), "-k", str(d / "k"),
            "--scheme", "paper"]
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "--resize" in err and "250x250" in err and not (tmp_path / "ct").exists()
    assert main([*args, "--resize", "-q"]) == 0
    assert read_ciphertext(tmp_path / "ct" / "a_square.png").pixels.shape == (32, 32, 3)
    assert main(["decrypt", str(tmp_path / "ct"), "-o", str(tmp_path / "rec"), "-k", str(d / "k"), "-q"]) == 0
    assert Image.open(tmp_path / "rec" / "a_square.png").size == (32, 32)  # the resized copy, as documented


def test_scheme_flags_that_do_not_mix(photos, tmp_path, capsys):
    d = photos
    base = ["encrypt", str(d / "in"), "-o", str(tmp_path / "ct"), "-k", str(d / "k")]
    for extra, msg in ((["--scheme", "exact", "-m", "svhn-ric-v2"], "exact scheme takes"),
                       (["--scheme", "paper", "--bits", "5"], "--bits belongs"),
                       (["--resize"], "--resize belongs")):
        capsys.readouterr()
        assert main([*base, *extra]) == 2
        assert msg in capsys.readouterr().err
    assert not (tmp_path / "ct").exists()


def _jpeg(path, i, w, h, data_root, gps=True):
    img = np.load(data_root / "cifar10/cifar10_test.npz")["images"][i]
    ex = Image.Exif()
    ex[0x010F] = "PhoneMaker"
    if gps:
        ex[0x8825] = {1: "N", 2: (48.0, 51.0, 24.0)}
    Image.fromarray(img).resize((w, h), Image.BICUBIC).save(path, quality=92, exif=ex.tobytes())
    return path


@pytest.fixture()
def phone(tmp_path, data_root):
    d = tmp_path / "phone"
    d.mkdir()
    _jpeg(d / "IMG_0001.jpg", 10, 640, 480, data_root)
    _jpeg(d / "IMG_0002.jpg", 11, 480, 640, data_root)
    img = np.load(data_root / "cifar10/cifar10_test.npz")["images"][12]
    big = Image.fromarray(img).resize((300, 200))
    big.save(d / "lossy.webp", quality=80)
    big.save(d / "scan.tif")
    big.convert("RGBA").save(d / "alpha.png")
    big.convert("L").save(d / "grey.png")
    assert main(["keygen", "-o", str(tmp_path / "k")]) == 0
    return d


def _encrypt(src, out, key, *extra):
    # the photo file's mechanics; the robustness set on photos is tested in tests/stacks/test_product.py
    return main(["encrypt", str(src), "-o", str(out), "-k", str(key), "-c", "cifar10-resnet18", "--convert", "auto",
                 "-q", "--robust-set", "none", *extra])


def _ct(folder, key, name):
    from ric.container import keyed_name_id
    from ric.keys import SecretKey

    return folder / (keyed_name_id(SecretKey.load(key), name) + ".png")


def test_a_phone_folder_round_trips_byte_for_byte(phone, tmp_path):
    assert _encrypt(phone, tmp_path / "ct", tmp_path / "k") == 0
    names = sorted(p.name for p in (tmp_path / "ct").iterdir())
    assert len(names) == 6 and all(len(n) == 36 and "IMG" not in n for n in names)  # opaque names in the cloud
    ct_path = _ct(tmp_path / "ct", tmp_path / "k", "IMG_0001.jpg")
    ct = read_ciphertext(ct_path)
    assert b"PhoneMaker" not in ct_path.read_bytes() and b"IMG_0001" not in ct_path.read_bytes()  # sealed
    assert is_size_class(ct.pixels.shape) and ct.pixels.shape[0] < ct.pixels.shape[1]  # landscape 4:3 class
    portrait = read_ciphertext(_ct(tmp_path / "ct", tmp_path / "k", "IMG_0002.jpg")).pixels.shape
    assert portrait[0] > portrait[1]
    assert main(["decrypt", str(tmp_path / "ct"), "-o", str(tmp_path / "rec"), "-k", str(tmp_path / "k"), "-q"]) == 0
    for f in phone.iterdir():  # every file back under its own name and extension, same sha256
        assert (tmp_path / "rec" / f.name).read_bytes() == f.read_bytes(), f.name
    assert sorted(p.name for p in (tmp_path / "rec").iterdir()) == sorted(p.name for p in phone.iterdir())
    # a rerun skips every finished output on both sides
    assert _encrypt(phone, tmp_path / "ct", tmp_path / "k", "--json") == 0
    assert main(["decrypt", str(tmp_path / "ct"), "-o", str(tmp_path / "rec"), "-k", str(tmp_path / "k"), "-q"]) == 0


def test_strip_metadata_drops_exif_before_encryption(phone, tmp_path):
    assert _encrypt(phone / "IMG_0001.jpg", tmp_path / "ct", tmp_path / "k", "--strip-metadata") == 0
    assert main(["decrypt", str(tmp_path / "ct"), "-o", str(tmp_path / "rec"), "-k", str(tmp_path / "k"), "-q"]) == 0
    back = (tmp_path / "rec" / "IMG_0001.jpg").read_bytes()
    assert b"PhoneMaker" not in back and b"PhoneMaker" in (phone / "IMG_0001.jpg").read_bytes()
    with Image.open(phone / "IMG_0001.jpg") as a, Image.open(tmp_path / "rec" / "IMG_0001.jpg") as b:
        assert np.array_equal(np.asarray(a), np.asarray(b))  # the coded image is untouched


def test_nearby_photo_sizes_share_a_carrier_size(tmp_path, data_root):
    from ric.classifiers import load_classifier
    from ric.schemes.exact import ExactScheme

    sch = ExactScheme(load_classifier("cifar10-resnet18"))
    a, b = sch.carrier_shape(3024, 4032, 1_800_000), sch.carrier_shape(3000, 4000, 1_850_000)
    assert a == b and is_size_class(a)
    assert a[0] * a[1] * a[2] * sch.bits / 8 < 1.1 * 1_850_000 + 64  # padding costs under 10 %


def test_bad_photos_fail_alone_and_write_nothing(phone, tmp_path, capsys):
    good = (phone / "IMG_0001.jpg").read_bytes()
    (phone / "cut.jpg").write_bytes(good[: len(good) // 2])  # truncated: found when it is decoded
    capsys.readouterr()
    assert _encrypt(phone, tmp_path / "ct", tmp_path / "k") == 2
    out = capsys.readouterr().out
    assert "FAILED" in out and "cut.jpg" in out and "truncated" in out and "Traceback" not in out
    assert not _ct(tmp_path / "ct", tmp_path / "k", "cut.jpg").exists()
    assert _ct(tmp_path / "ct", tmp_path / "k", "IMG_0001.jpg").exists()


def test_a_file_type_ric_does_not_read_is_refused_by_name(tmp_path, capsys):
    (tmp_path / "notes.pdf").write_bytes(b"%PDF-1.4 not a photo")
    assert main(["keygen", "-o", str(tmp_path / "k")]) == 0
    capsys.readouterr()
    assert _encrypt(tmp_path / "notes.pdf", tmp_path / "ct", tmp_path / "k") == 2
    err = capsys.readouterr().err
    assert "notes.pdf" in err and "not an image file" in err and not (tmp_path / "ct").exists()


def test_decrypt_replaces_no_file_it_did_not_make_and_keeps_same_names_apart(phone, tmp_path, capsys):
    assert _encrypt(phone / "IMG_0001.jpg", tmp_path / "ct1", tmp_path / "k") == 0
    other = tmp_path / "other"
    other.mkdir()
    Image.new("RGB", (320, 240), (9, 9, 9)).save(other / "IMG_0001.jpg")
    assert _encrypt(other / "IMG_0001.jpg", tmp_path / "ct2", tmp_path / "k") == 0
    rec = tmp_path / "rec"
    rec.mkdir()
    (rec / "IMG_0001.jpg").write_bytes(b"the user's own file")
    capsys.readouterr()
    argv = ["decrypt", str(tmp_path / "ct1"), str(tmp_path / "ct2"), "-o", str(rec), "-k", str(tmp_path / "k"), "-q"]
    assert main(argv) == 2 and "exists and is not the photo" in capsys.readouterr().err
    assert (rec / "IMG_0001.jpg").read_bytes() == b"the user's own file"
    (rec / "IMG_0001.jpg").unlink()
    assert main(argv) == 0  # two photos of one name: the second is kept apart, nothing is overwritten
    assert (rec / "IMG_0001.jpg").read_bytes() == (phone / "IMG_0001.jpg").read_bytes()
    assert (rec / "IMG_0001 (2).jpg").read_bytes() == (other / "IMG_0001.jpg").read_bytes()


def test_a_carrier_off_the_size_classes_is_refused(phone, tmp_path):
    from ric.errors import CiphertextError
    from ric.keys import SecretKey
    from ric.schemes.exact import open_sealed

    assert _encrypt(phone / "IMG_0001.jpg", tmp_path / "ct", tmp_path / "k") == 0
    px = read_ciphertext(_ct(tmp_path / "ct", tmp_path / "k", "IMG_0001.jpg")).pixels
    with pytest.raises(CiphertextError, match="not one of the exact scheme's size classes"):
        open_sealed(SecretKey.load(tmp_path / "k"), np.ascontiguousarray(px[:, :-1]))


def test_a_server_that_swaps_names_is_caught(tmp_path, capsys):
    from ric.api import sample_images

    files = sample_images()[0][:2]
    assert main(["keygen", "-o", str(tmp_path / "k")]) == 0
    assert main(["encrypt", *map(str, files), "-o", str(tmp_path / "ct"), "-k", str(tmp_path / "k"), "-q"]) == 0
    a, b = (tmp_path / "ct" / (f.stem + ".png") for f in files)
    da, db = a.read_bytes(), b.read_bytes()
    a.write_bytes(db)
    b.write_bytes(da)  # what a compromised server could hand back
    capsys.readouterr()
    argv = ["decrypt", str(tmp_path / "ct"), "-o", str(tmp_path / "rec"), "-k", str(tmp_path / "k"), "-q"]
    assert main(argv) == 3
    assert "written under another file name" in capsys.readouterr().err and not (tmp_path / "rec").exists()
    assert main([*argv, "--any-name"]) == 0  # the owner may accept renamed files deliberately


def test_heic_photos_round_trip(tmp_path):
    pillow_heif = pytest.importorskip("pillow_heif")
    pillow_heif.register_heif_opener()
    (tmp_path / "in").mkdir()
    Image.new("RGB", (320, 240), (40, 120, 200)).save(tmp_path / "in" / "IMG_0042.HEIC", format="HEIF", quality=80)
    assert main(["keygen", "-o", str(tmp_path / "k")]) == 0
    assert _encrypt(tmp_path / "in", tmp_path / "ct", tmp_path / "k") == 0
    assert main(["decrypt", str(tmp_path / "ct"), "-o", str(tmp_path / "rec"), "-k", str(tmp_path / "k"), "-q"]) == 0
    assert (tmp_path / "rec" / "IMG_0042.HEIC").read_bytes() == (tmp_path / "in" / "IMG_0042.HEIC").read_bytes()


def test_photos_of_one_size_class_share_their_attack_and_keep_their_own_labels(photos, tmp_path):
    """Photos are encrypted in chunks: one label pass per pixel shape, one attack per carrier size class; each photo
    keeps its own label and its own file, and a chunk limit of one photo gives the same outcome."""
    from ric.api import classify_files, decrypt_files, encrypt_files
    from ric.jobs import encrypt as encrypt_job
    from ric.keys import SecretKey

    src = tmp_path / "in"
    src.mkdir()
    imgs = [np.asarray(Image.open(photos / "in" / "a_square.png")).copy() for _ in range(4)]
    for i, a in enumerate(imgs):
        a[i, :8] = 255 - a[i, :8]  # four different files of one size
        Image.fromarray(a).save(src / f"p{i}.png")
    key = SecretKey.generate()
    plain = {r["input"]: r["label"] for r in classify_files([src], classifier="cifar10-resnet18")}
    rows = encrypt_files([src], tmp_path / "ct", key, classifier="cifar10-resnet18", batch_size=3, robust_set=None)
    assert [r["status"] for r in rows] == ["encrypted"] * 4
    assert len({tuple(r["carrier_shape"]) for r in rows}) == 1  # one size class, attacked 3 + 1 at a time
    assert all(r["target"] == plain[r["input"]] for r in rows)
    dec = decrypt_files([tmp_path / "ct"], tmp_path / "rec", key)
    assert sorted(p.read_bytes() for p in (tmp_path / "rec").iterdir()) == sorted(
        p.read_bytes() for p in src.iterdir())
    assert all(r["status"] == "decrypted" for r in dec)
    encrypt_job.PHOTO_BATCH_PIXELS, old = 1, encrypt_job.PHOTO_BATCH_PIXELS
    try:
        one = encrypt_files([src], tmp_path / "ct1", key, classifier="cifar10-resnet18", robust_set=None)
    finally:
        encrypt_job.PHOTO_BATCH_PIXELS = old
    assert [r["target"] for r in one] == [r["target"] for r in rows]


def test_transcode_is_chosen_by_the_user_and_checked(photos, tmp_path, capsys):
    """JPEG XL's JPEG recompression is opt-in (``--transcode zlib,jpegxl-jpeg``): where libjxl is available it gives a
    smaller carrier, and the file still comes back byte for byte; an unknown codec is one line, exit 2."""
    from ric.schemes import filecodec

    src = tmp_path / "in"
    src.mkdir()
    Image.open(photos / "in" / "b_tall.png").save(src / "IMG.jpg", quality=92)
    k = ["-k", str(photos / "k"), "-c", "cifar10-resnet18", "-q", "--keep-names", "--robust-set", "none"]
    capsys.readouterr()
    assert main(["encrypt", str(src), "-o", str(tmp_path / "x"), *k, "--transcode", "bogus"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown codec bogus" in err and not (tmp_path / "x").exists()
    assert main(["encrypt", str(src), "-o", str(tmp_path / "raw"), *k]) == 0
    if not filecodec.BY_NAME["jpegxl-jpeg"].available():
        pytest.skip("libjxl is not available in this imagecodecs")
    assert main(["encrypt", str(src), "-o", str(tmp_path / "jxl"), *k, "--transcode", "zlib,jpegxl-jpeg"]) == 0
    raw, jxl = read_ciphertext(tmp_path / "raw" / "IMG.png"), read_ciphertext(tmp_path / "jxl" / "IMG.png")
    assert jxl.pixels.size < raw.pixels.size
    assert main(["decrypt", str(tmp_path / "jxl"), "-o", str(tmp_path / "rec"), "-k", str(photos / "k"), "-q"]) == 0
    assert (tmp_path / "rec" / "IMG.jpg").read_bytes() == (src / "IMG.jpg").read_bytes()
