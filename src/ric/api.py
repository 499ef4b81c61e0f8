"""The user-facing calls, one per CLI verb: the recipes over the job engine (:mod:`ric.jobs`).

Batch jobs are restartable: outputs are written atomically, and a rerun skips an existing output only if
it checks out: for encryption, a ciphertext that verifies under the key, fits the scheme and carries the keyed
hash of *this* input (``ric:plain-mac``); for decryption, a recovered image whose keyed hash
(``ric:recovered-mac``) binds it to this ciphertext and key, or a photo's file with the sealed bytes. An existing
output that a job under this key made is redone; any other existing file is refused, naming it, before anything is
written, unless ``force``. All inputs are read and checked before the first output is written, so bad input loses
nothing, and no output may resolve to an input file (``force`` or not). Names read from files (a ciphertext's
model and classifier) may only select shipped bundles (:func:`ric.zoo.bundles.resolve_shipped`); paths and code
specs come from the caller only.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ric.container import read_ciphertext
from ric.errors import AuthenticationError, InputError, KeyFileError
from ric.imageio import list_images, read_image, to_tensor
from ric.jobs.classify import classifier_for, classify_paths
from ric.jobs.decrypt import Decrypters, decrypt_pending, scan_decrypt
from ric.jobs.encrypt import encrypt_pending, scan_encrypt
from ric.jobs.plan import plan_outputs, tick
from ric.keys import SecretKey
from ric.schemes import SCHEMES, Scheme, SchemeOptions, load_scheme
from ric.stacks import DEFAULT_ROBUST_SET
from ric.zoo import bundles

SAMPLES_DIR = Path(__file__).resolve().parent / "samples"
DEFAULT_MODEL = bundles.DEFAULT_MODEL  # the paper scheme's default model
DEFAULT_CLASSIFIER = bundles.DEFAULT_CLASSIFIER  # the exact scheme's default classifier


def keygen(path: str | Path, *, force: bool = False) -> SecretKey:
    """Generate a 256-bit key and save it (mode 0600); refuse to overwrite unless ``force``."""
    key = SecretKey.generate()
    key.save(path, force=force)
    return key


def load_key(path: str | Path) -> SecretKey:
    return SecretKey.load(path)


def list_models() -> list[dict]:
    rows = []
    for c in bundles.shipped():
        row = {"name": c["name"], "kind": c["kind"], "path": c["path"]}
        if c["kind"] == "classifier":
            row.update(input_shape=c["input_shape"], classes=len(c["class_names"]),
                       test_accuracy=c.get("test_accuracy"), test_data=c.get("test_data"),
                       preprocess=c.get("preprocess"), exact_bits=c.get("exact_bits", 0) or None)
        else:
            row.update(classifier=c["classifier"], alpha=c["alpha"], codec=c["codec"]["name"],
                       codec_trained_on=c.get("codec_trained_on", c.get("training", {}).get("dataset")),
                       image_shape=c.get("image_shape"), metrics=c.get("metrics", {}),
                       scramble=bool(c.get("scramble", False)))
        rows.append(row)
    return rows


def encrypt_files(inputs: list, out_dir: str | Path, key: SecretKey, *, scheme: str | Scheme | None = None,
                  model: str | None = None, classifier: str | None = None, classifier_config=None,
                  bits: int | None = None, transcode: tuple[str, ...] | None = None,
                  robust_set: str | None = DEFAULT_ROBUST_SET, resize: bool = False, refine: bool = True, ric=None,
                  convert: str = "strict", device: str = "cpu", max_retries: int = 3, batch_size: int = 64,
                  strip_metadata: bool = False, keep_names: bool = False, force: bool = False,
                  progress: Callable | None = None) -> list[dict]:
    """Encrypt image files into ciphertext PNGs in ``out_dir`` (one ``<stem>.png`` per input). An existing output
    is skipped if it is this input's finished ciphertext, redone if it is another ciphertext under ``key``, and
    refused (:class:`InputError`, nothing written) if it is anything else, unless ``force``.

    Photos (exact scheme, a classifier that declares its preprocessing, an image not at the network's input size)
    are sealed as their files, name included, in a compact carrier of a size class: decryption gives back the file
    byte for byte (``strip_metadata``: EXIF/GPS, XMP and comments are dropped first). A photo's ciphertext is named
    by an opaque keyed id (:func:`ric.container.keyed_name_id`), since its name travels sealed; ``keep_names`` names it
    ``<stem>.png`` instead. Dataset-size images keep their own grid, a lossless pixel payload and ``<stem>.png``.

    ``transcode`` (exact scheme, photos): the byte-reversible file codecs tried on each photo
    (:data:`ric.schemes.filecodec.DEFAULT_TRANSCODE` by default; ``("zlib", "jpegxl-jpeg")`` adds JPEG XL's JPEG
    recompression: smaller ciphertexts, slower encryption and decryption).

    ``robust_set`` (exact scheme; default :data:`ric.stacks.DEFAULT_ROBUST_SET`, ``None`` for none): the serving
    variations every ciphertext must keep its label under; each is checked on the installed real stacks
    (a row lists those it could not check in ``unchecked_stacks``), and one that never holds fails its row.

    ``scheme``: a scheme name or a loaded :class:`~ric.schemes.Scheme`. By name: ``exact`` by default (classifier
    ``classifier``, default :data:`DEFAULT_CLASSIFIER`); ``paper`` when named or a RIC ``model`` is named
    (``classifier`` then replaces the model's own); ``ric`` (a loaded :class:`~ric.schemes.paper.RIC`) runs the
    paper scheme with that model. Images that fail (label not reached, too large for the exact scheme's capacity)
    are reported per row and nothing is written for them. :func:`ric.distributed.ray_jobs.encrypt_files_ray` runs
    the same per-file steps on a Ray cluster."""
    paths, outs = plan_outputs(inputs, out_dir)
    sch = scheme if isinstance(scheme, Scheme) else load_scheme(
        scheme, model=model, classifier=classifier, classifier_config=classifier_config, bits=bits,
        transcode=transcode, robust_set=robust_set, resize=resize,
        refine=refine, device=device, max_retries=max_retries, batch_size=batch_size, ric=ric)
    sch.check_encryptable()
    rows, todo = scan_encrypt(paths, outs, key, sch, convert, strip_metadata, keep_names, force)
    tick(progress, len(paths) - len(todo))
    encrypt_pending(rows, todo, key, sch, batch_size, progress, convert, strip_metadata)
    return rows


def classify_files(inputs: list, *, classifier: str | None = None, classifier_config=None, stack: str | None = None,
                   convert: str = "strict", batch_size: int = 256, progress: Callable | None = None) -> list[dict]:
    """Label images (ciphertexts or plaintexts) with a plaintext classifier; needs no key.

    Without ``classifier`` the classifier named in the ciphertexts' metadata is used. ``stack``: classify the
    way that serving stack does (:data:`ric.stacks.STACKS`: ONNX Runtime, fp16, OpenCV or Pillow resize, ...)."""
    if stack is not None:
        from ric.stacks import get_stack

        stack = get_stack(stack)
        stack.check()
    paths = list_images(inputs)
    clf = classifier_for(paths, classifier, classifier_config)
    return classify_paths(paths, clf, convert, batch_size, progress, stack)


def decrypt_files(inputs: list, out_dir: str | Path, key: SecretKey, *, model: str | None = None, ric=None,
                  classifier: str | None = None, classifier_config=None, verify: bool = True, device: str = "cpu",
                  batch_size: int = 64, force: bool = False, any_name: bool = False,
                  progress: Callable | None = None) -> list[dict]:
    """Recover plaintext PNGs (or the photo files they seal) from ciphertexts of any scheme. With ``verify`` every
    file's tag is checked before anything is written; ``verify=False`` is for experiments only (e.g. brute-force
    studies on the paper scheme; an exact-scheme payload is always authenticated when it is opened). An existing
    output is skipped if it is this ciphertext's recovered image (or photo file), redone if it is another recovered
    image under ``key``, and refused (:class:`InputError`, nothing written) if it is anything else (e.g. the
    original photos), unless ``force``.

    Exact-scheme files need no model or classifier, and still decrypt after their text chunks were stripped or
    they were re-encoded losslessly (WebP lossless, TIFF): the pixels carry a header. A paper-scheme file's
    ``ric:model`` may only name a shipped model unless ``model``/``ric`` is given (:mod:`ric.jobs.decrypt`).

    A ciphertext whose output is named after it (not a photo) must carry the file name it was written under
    (``ric:name-id``, keyed): a file renamed or swapped by whoever stored it is refused unless ``any_name``."""
    paths, outs = plan_outputs(inputs, out_dir, clashes=False)
    decrypters = Decrypters(SchemeOptions(model=model, ric=ric, classifier=classifier,
                                          classifier_config=classifier_config, device=device, batch_size=batch_size))
    scan = scan_decrypt(paths, outs, key, decrypters, verify, force, any_name)
    tick(progress, sum(r["status"] == "skipped" for r in scan.rows))
    decrypt_pending(paths, scan, key, verify, batch_size, progress)
    return scan.rows


def sample_images() -> tuple[list[Path], dict]:
    """The shipped sample images and their labels (``samples/labels.json``)."""
    meta = json.loads((SAMPLES_DIR / "labels.json").read_text())
    return [SAMPLES_DIR / f for f in meta["files"]], meta


def _demo_key(path: Path) -> SecretKey:
    """A new key at ``path``, or the key already there (never overwritten; refused if it is not a key)."""
    try:
        return keygen(path)
    except InputError:  # something exists there
        try:
            return load_key(path)
        except KeyFileError as e:
            raise InputError(f"{path} exists and is not a usable RIC key ({e}); refusing to overwrite it: "
                             "move it away or choose another folder") from None


def demo(workdir: str | Path | None = None, *, model: str = DEFAULT_MODEL, progress: Callable | None = None,
         schemes: tuple[str, ...] | None = None) -> dict:
    """keygen → encrypt → classify → decrypt on the shipped samples, offline, with each scheme of ``schemes``
    (default: every registered one, in order): ``exact`` with :data:`DEFAULT_CLASSIFIER`, ``paper`` with
    ``model``. Files go to ``<workdir>/<scheme>/``; returns a summary per scheme."""
    tmp = None
    if workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="ric-demo-")
        workdir = tmp.name
    w = Path(workdir)
    try:
        files, meta = sample_images()
        key = _demo_key(w / "secret.key")
        out = {"images": len(files), "key_id": key.key_id, "schemes": {}}
        for name in schemes or tuple(SCHEMES):
            out["schemes"][name] = _demo_scheme(name, files, meta, w / name, key, model, progress)
        out["failed"] = sum(r["failed"] for r in out["schemes"].values())
        out["workdir"] = str(w) if tmp is None else None
        return out
    finally:
        if tmp is not None:
            tmp.cleanup()


def _demo_scheme(name: str, files: list[Path], meta: dict, w: Path, key: SecretKey, model: str, progress) -> dict:
    from ric.eval.metrics import psnr, ssim

    sch = SCHEMES[name].from_options(SCHEMES[name].demo_options(model))
    enc = encrypt_files(files, w / "ciphertexts", key, scheme=sch, progress=progress)
    ok = [r for r in enc if r["status"] in ("encrypted", "skipped")]
    plain = classify_files(files, classifier=sch.classifier.spec)
    cloud = classify_files([r["output"] for r in ok])
    dec = decrypt_files([r["output"] for r in ok], w / "recovered", key, progress=progress)
    byname = {Path(r["input"]).stem: r["label"] for r in plain}
    truth = [meta["labels"][meta["files"].index(Path(r["input"]).name)] for r in ok]
    a = [read_image(Path(r["input"])) for r in ok]
    b = [read_image(Path(d["output"])) for d in dec]
    x, xh = to_tensor(np.stack(a)), to_tensor(np.stack(b))
    same = [np.array_equal(u, v) for u, v in zip(a, b, strict=True)]
    row = {"classifier": sch.classifier.ident, "scheme": repr(sch), "encrypted": len(ok),
           "failed": len(files) - len(ok),
           "label_agreement": float(np.mean([byname[Path(r["input"]).stem] == c["label"]
                                             for r, c in zip(ok, cloud, strict=True)])),
           "plaintext_accuracy": float(np.mean([p["label"] == t for p, t in zip(plain, meta["labels"], strict=True)])),
           "ciphertext_accuracy": float(np.mean([c["label"] == t for c, t in zip(cloud, truth, strict=True)])),
           "psnr_db": float(psnr(xh, x).mean()), "ssim": float(ssim(xh, x).mean()), "bit_exact": float(np.mean(same))}
    row.update(sch.demo_checks([read_ciphertext(r["output"]) for r in ok], x, SecretKey.generate()))
    return row


__all__ = ["keygen", "load_key", "list_models", "encrypt_files", "classify_files", "decrypt_files", "demo",
           "sample_images", "AuthenticationError"]
