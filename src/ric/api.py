"""File-level Python API: the counterpart of every CLI verb.

Batch jobs are restartable: outputs are written atomically, and a rerun skips an existing output only if
it checks out: for encryption, a ciphertext that verifies under the key, fits the model and carries the keyed
hash of *this* input (``ric:plain-mac``); for decryption, a recovered image whose keyed hash
(``ric:recovered-mac``) binds it to this ciphertext and key, or a photo's file with the sealed bytes. An existing
output that a job under this key made (a ciphertext that verifies under the key; a recovered image whose
``ric:recovered-mac`` verifies for the ciphertext its ``ric:recovered-from`` names) is redone; any other existing
file is refused, naming it, before anything is written, unless ``force``. All inputs are read and checked before
the first output is written, so bad input loses nothing, and no output may resolve to an input file (``force`` or
not). Names read from files (a ciphertext's model and classifier) may only select shipped bundles
(:func:`ric.zoo.bundles.resolve_shipped`); paths and code specs come from the caller only.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ric.classifiers import load_classifier, load_trusted_name
from ric.container import (
    RECOVERED_FROM_FIELD,
    RECOVERED_MAC_FIELD,
    Ciphertext,
    check_field,
    file_mac,
    keyed_name_id,
    message_digest,
    plain_mac,
    read_any,
    read_ciphertext,
    recovered_mac,
)
from ric.errors import (
    AuthenticationError,
    CiphertextError,
    InputError,
    KeyFileError,
    NotACiphertextError,
    RICError,
    UnknownNameError,
    quote,
)
from ric.files import atomic_write_bytes, sha256_file
from ric.imageio import (
    PHOTO_FORMATS,
    list_images,
    open_image,
    probe_image,
    read_image,
    read_native,
    to_tensor,
    write_png,
)
from ric.keys import SecretKey
from ric.photos import read_photo, read_photo_bytes
from ric.schemes.base import Scheme
from ric.schemes.exact import sealed_file_of
from ric.stacks import DEFAULT_ROBUST_SET, check_robust_set
from ric.zoo import bundles

SAMPLES_DIR = Path(__file__).resolve().parent / "samples"
DEFAULT_MODEL = bundles.DEFAULT_MODEL  # the paper scheme's default model
DEFAULT_CLASSIFIER = bundles.DEFAULT_CLASSIFIER  # the exact scheme's default classifier
ROBUST_DEFAULT = DEFAULT_ROBUST_SET  # the exact scheme's default robustness set (ric.stacks.robust)
RESIZE_HINT = ("; the paper scheme recovers only what it encrypts: pass --resize to encrypt a resized copy, or use "
               "--scheme exact (any size, bit-exact, when the classifier declares its preprocessing)")
HELD_BYTES = 512 << 20  # classify: pixels kept in memory between the check pass and the forward passes


def keygen(path: str | Path, force: bool = False) -> SecretKey:
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


def _outputs(paths: list[Path], out_dir: Path, outs: list[Path] | None = None) -> list[Path]:
    """``out_dir/<stem>.png`` per input (or the given ``outs``); refuses two inputs with one output."""
    outs = [out_dir / (p.stem + ".png") for p in paths] if outs is None else outs
    seen: dict[Path, Path] = {}
    for p, o in zip(paths, outs, strict=True):
        if o in seen:
            raise InputError(f"{p} and {seen[o]} would both be written to {o}; rename one")
        seen[o] = p
    return outs


def _refuse_overwriting_inputs(paths: list[Path], outs: list[Path]) -> None:
    """Raise :class:`InputError` if an output would be an input file (same resolved path, or the same file
    through a hard or symbolic link), before anything is written."""
    ins = {p.resolve() for p in paths}
    ids = set()
    for p in paths:
        try:
            st = os.stat(p)
            ids.add((st.st_dev, st.st_ino))
        except OSError:
            pass
    for o in outs:
        same = o.resolve() in ins
        if not same and os.path.lexists(o):
            try:
                st = os.stat(o)
                same = (st.st_dev, st.st_ino) in ids
            except OSError:
                pass
        if same:
            raise InputError(f"output {o} would overwrite an input file; choose another output folder (-o)")


def _refuse_unproven(o: Path, what: str) -> None:
    """Raise :class:`InputError` for an existing output ``o`` that this job cannot prove it made (``what``: the
    proof it lacks)."""
    raise InputError(f"{o} exists and is not {what}, so this job did not make it; refusing to overwrite it: choose "
                     "another output folder (-o), or pass --force to replace it")


def _tick(progress: Callable | None, n: int = 1):
    if progress:
        progress(n)


def load_scheme(scheme: str | None = None, model: str | None = None, classifier: str | None = None,
                classifier_config=None, bits: int | None = None, resize: bool = False, device: str = "cpu",
                max_retries: int = 3, batch_size: int = 64, refine: bool = True,
                robust_set: str | None = ROBUST_DEFAULT):
    """The scheme an encryption job runs: ``exact`` (the default) with ``classifier`` (default
    :data:`DEFAULT_CLASSIFIER`), ``bits`` and ``robust_set`` (:class:`~ric.schemes.exact.ExactScheme`), or
    ``paper`` with the RIC ``model`` (default :data:`DEFAULT_MODEL`); naming a ``model`` implies ``paper``.
    ``refine=False``: the paper scheme skips its encoder-side refinement (faster encryption, lower recovery quality;
    decryption is the same either way)."""
    from ric.schemes.base import DEFAULT_SCHEME, SCHEMES

    name = scheme or ("paper" if model else DEFAULT_SCHEME)
    if name not in SCHEMES:
        raise UnknownNameError(f"unknown scheme {quote(name)}; known: {', '.join(sorted(SCHEMES))}")
    if name == "exact" and model:
        raise InputError(f"-m/--model names a paper-scheme model ({model}); the exact scheme takes -c/--classifier")
    if name == "paper":
        if bits is not None:
            raise InputError("--bits belongs to the exact scheme; the paper scheme has no digit split")
        if robust_set not in (None, ROBUST_DEFAULT):
            raise InputError("--robust-set belongs to the exact scheme; the paper scheme has no robustness set")
        from ric.schemes.paper import PaperScheme

        return PaperScheme.load(model or DEFAULT_MODEL, resize=resize, device=device, max_retries=max_retries,
                                batch_size=batch_size, classifier=classifier, classifier_config=classifier_config,
                                refine=refine)
    if resize:
        raise InputError("--resize belongs to the paper scheme; the exact scheme encrypts images at their own size "
                         "when the classifier declares its preprocessing")
    from ric.schemes.exact import ExactScheme

    if robust_set is not None:
        check_robust_set(robust_set)  # an unknown name stops the job before the classifier is loaded
    clf = load_classifier(classifier or DEFAULT_CLASSIFIER, device, classifier_config)
    return ExactScheme(clf, bits=bits, max_retries=max_retries, batch_size=batch_size, device=device,
                       robust_set=robust_set)


def _read_plain(p: Path, sch, convert: str) -> np.ndarray:
    """A plaintext as the scheme encrypts it (exact: the image's own channels; paper: the model's)."""
    if sch.name == "exact":
        return read_native(p, sch.channels, convert, size=sch.classifier.size_check())
    size = None if sch.resize else sch.ric.input_shape[1:]
    return read_image(p, sch.channels, convert, size=size, hint=RESIZE_HINT)


def plan_outputs(inputs: list, out_dir: str | Path, clashes: bool = True) -> tuple[list[Path], list[Path]]:
    """The input files of a batch job and their outputs ``out_dir/<stem>.png``; refuses name clashes (unless
    ``clashes=False``: decryption names a photo's output after its sealed name, and checks then) and an output that
    would overwrite an input (before anything is read or written)."""
    paths = list_images(inputs)
    outs = _outputs(paths, Path(out_dir)) if clashes else [Path(out_dir) / (p.stem + ".png") for p in paths]
    _refuse_overwriting_inputs(paths, outs)
    return paths, outs


def check_encryption_scheme(sch) -> None:
    """Refuse a scheme whose model or classifier name no ciphertext could carry (before anything is written)."""
    if sch.name == "paper":
        check_field("model", sch.ric.model_id, InputError)
    check_field("classifier", sch.classifier.ident, InputError)


def encrypt_files(inputs: list, out_dir: str | Path, key: SecretKey, model: str | None = None,
                  convert: str = "strict", device: str = "cpu", max_retries: int = 3, batch_size: int = 64,
                  progress: Callable | None = None, ric=None, classifier: str | None = None,
                  classifier_config=None, scheme: str | None = None, bits: int | None = None,
                  resize: bool = False, refine: bool = True, strip_metadata: bool = False,
                  keep_names: bool = False, force: bool = False, robust_set: str | None = ROBUST_DEFAULT) -> list[dict]:
    """Encrypt image files into ciphertext PNGs in ``out_dir`` (one ``<stem>.png`` per input). An existing output
    is skipped if it is this input's finished ciphertext, redone if it is another ciphertext under ``key``, and
    refused (:class:`InputError`, nothing written) if it is anything else, unless ``force``.

    Photos (exact scheme, a classifier that declares its preprocessing, an image not at the network's input size)
    are sealed as their files, name included, in a compact carrier of a size class: decryption gives back the file
    byte for byte (``strip_metadata``: EXIF/GPS, XMP and comments are dropped first). A photo's ciphertext is named
    by an opaque keyed id (:func:`ric.container.keyed_name_id`), since its name travels sealed; ``keep_names`` names it
    ``<stem>.png`` instead. Dataset-size images keep their own grid, a lossless pixel payload and ``<stem>.png``.

    Scheme: ``exact`` by default (classifier ``classifier``, default :data:`DEFAULT_CLASSIFIER`); ``paper`` when
    ``scheme="paper"`` or a RIC ``model`` is named (``classifier`` then replaces the model's own). ``ric`` (a
    loaded :class:`~ric.schemes.paper.RIC`) runs the paper scheme with that model. Images that fail (label not reached,
    too large for the exact scheme's capacity) are reported per row and nothing is written for them.

    ``robust_set`` (exact scheme; default :data:`ric.stacks.DEFAULT_ROBUST_SET`, ``None`` for none): the serving
    variations every ciphertext must keep its label under; each is checked on the installed real stacks
    (a row lists those it could not check in ``unchecked_stacks``), and one that never holds fails its row.
    :func:`ric.distributed.ray_jobs.encrypt_files_ray` runs the same per-file steps on a Ray cluster."""
    from ric.schemes.paper import PaperScheme

    paths, outs = plan_outputs(inputs, out_dir)
    sch = (PaperScheme(ric, resize=resize) if ric is not None else
           load_scheme(scheme, model, classifier, classifier_config, bits, resize, device, max_retries, batch_size,
                       refine, robust_set))
    check_encryption_scheme(sch)
    rows, todo = scan_encrypt(paths, outs, key, sch, convert, strip_metadata, keep_names, force)
    _tick(progress, len(paths) - len(todo))
    encrypt_pending(rows, todo, key, sch, batch_size, progress, convert, strip_metadata)
    return rows


def scan_encrypt(paths: list[Path], outs: list[Path], key: SecretKey, sch, convert: str = "strict",
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
                _outputs(paths[:i + 1], outs[i].parent, outs[:i + 1])
                _refuse_overwriting_inputs(paths, outs[i:i + 1])
            row = _scan_photo(p, outs[i], key, sch, strip, force)
        else:
            o = outs[i]
            a = _read_plain(p, sch, convert)
            sch.check_shape(a.shape)
            ct = _own_ciphertext(o, key, force)
            row = ({"input": str(p), "output": str(o), "status": "skipped", "target": ct.target}
                   if ct is not None and _finished_ciphertext(ct, key, sch, a)
                   else {"input": str(p), "output": str(o), "status": "pending", "scheme": sch.name})
        rows.append(row)
        if row["status"] == "pending":
            todo.append(len(rows) - 1)
    return rows, todo


def _takes_file(p: Path, sch) -> bool:
    """True if the scheme seals the file at ``p`` as a photo (its header is read and checked, nothing decoded)."""
    if type(sch).takes_file is Scheme.takes_file:
        return False
    h, w, _ = probe_image(p, formats=PHOTO_FORMATS)
    sch.check_shape((h, w, sch.channels))
    return sch.takes_file(h, w)


def _scan_photo(p: Path, o: Path, key: SecretKey, sch, strip: bool, force: bool = False) -> dict:
    row = {"input": str(p), "output": str(o), "status": "pending", "scheme": sch.name, "carrier": "file"}
    if strip:  # a format --strip-metadata cannot handle stops the job here, before anything is written
        read_photo_bytes(p, strip)
    ct = _own_ciphertext(o, key, force)
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


def _read_pending(rows: list[dict], idx: list[int], sch, convert: str) -> list[tuple[int, np.ndarray]]:
    """The pixels of the pending rows ``idx``, read again; a file that became unreadable since the scan fails its
    row (status ``failed``) instead of stopping the job."""
    out = []
    for ri in idx:
        try:
            a = _read_plain(Path(rows[ri]["input"]), sch, convert)
            sch.check_shape(a.shape)
        except RICError as e:
            rows[ri].update(status="failed", error=str(e), code=e.exit_code)
            continue
        out.append((ri, a))
    return out


def encrypt_pending(rows: list[dict], todo: list[int], key: SecretKey, sch, batch_size: int = 64,
                    progress: Callable | None = None, convert: str = "strict", strip: bool = False) -> None:
    """Encrypt the pending rows ``todo`` (from :func:`scan_encrypt`), reading ``batch_size`` images at a time (photos
    one at a time); each ciphertext is written atomically as it is made (status ``encrypted``), a failure is
    recorded in its row (status ``failed``, ``error``, ``code``: the CLI's exit code for it)."""
    photos = [ri for ri in todo if rows[ri].get("carrier") == "file"]
    for ri in photos:
        _encrypt_photo_row(rows[ri], key, sch, convert, strip)
        _tick(progress)
    grid = [ri for ri in todo if rows[ri].get("carrier") != "file"]
    for s in range(0, len(grid), batch_size):
        idx = grid[s:s + batch_size]
        chunk = _read_pending(rows, idx, sch, convert)
        for (ri, a), res in zip(chunk, sch.encrypt([a for _, a in chunk], key) if chunk else [], strict=True):
            if _record(rows[ri], res):
                res.ciphertext.plain_mac = plain_mac(key, res.ciphertext.nonce, a)
                _save_named(res.ciphertext, key, rows[ri]["output"])
                rows[ri]["status"] = "encrypted"
        _tick(progress, len(idx))


def _record(row: dict, res) -> bool:
    """Copy an encryption result into its row; False (row ``failed``) when there is no ciphertext."""
    row.update(target=res.target, attempts=res.attempts)
    if getattr(res, "unchecked", ()):
        row["unchecked_stacks"] = list(res.unchecked)
    if res.ciphertext is None:
        row.update(status="failed", error=res.error, code=1)
        return False
    return True


def _save_named(ct: Ciphertext, key: SecretKey, path: str | Path) -> None:
    """Sign and write ``ct`` with ``ric:name-id`` bound to the file name it is written under."""
    ct.name_id = keyed_name_id(key, Path(path).name)
    ct.sign(key).save(path)


def _encrypt_photo_row(row: dict, key: SecretKey, sch, convert: str, strip: bool) -> None:
    """Decode one photo (once), encrypt it and write its ciphertext; a photo that turned out to be truncated or
    corrupt fails its own row (code 2) and the job goes on."""
    try:
        photo = read_photo(row["input"], sch.channels, convert, strip)
        res = sch.encrypt_photo(photo, key)
    except RICError as e:
        msg = str(e)
        row.update(status="failed", error=msg.removeprefix(f"{row['input']}: "), code=e.exit_code)
        return
    if _record(row, res):
        res.ciphertext.plain_mac = file_mac(key, res.ciphertext.nonce, photo.data)
        _save_named(res.ciphertext, key, row["output"])
        row.update(status="encrypted", carrier_shape=list(res.ciphertext.pixels.shape))


def _own_ciphertext(o: Path, key: SecretKey, force: bool = False) -> Ciphertext | None:
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
        _refuse_unproven(o, "a RIC ciphertext that verifies under this key")
    return ct


def _finished_ciphertext(ct: Ciphertext, key: SecretKey, sch, pixels: np.ndarray) -> bool:
    """True if ``ct`` (verified under ``key``) is a finished encryption of ``pixels`` by ``sch``."""
    try:
        sch.check_ciphertext(ct)
    except RICError:
        return False  # another scheme or model: redo it (written atomically)
    mac = ct.plain_mac
    # made from another image (or by a version without the field): redo it
    return bool(mac) and mac.isascii() and hmac.compare_digest(plain_mac(key, ct.nonce, pixels), mac)


def classifier_idents(paths: list[Path]) -> set[str]:
    """The classifier identities that the ciphertexts at ``paths`` name in their metadata (pixels not read)."""
    idents = set()
    for p in paths:
        try:
            idents.add(read_ciphertext(p, pixels=False).classifier)
        except NotACiphertextError:
            raise InputError(f"{p} carries no RIC metadata naming its classifier; pass --classifier") from None
    return idents


def trusted_classifier(idents: set[str]):
    """The one shipped classifier that ciphertexts name (``idents`` from :func:`classifier_idents`): metadata
    selects shipped classifiers only, never code or paths, and the loaded one must have the named fingerprint."""
    if len(idents) != 1:
        raise InputError(f"inputs were made for several classifiers ({', '.join(map(quote, sorted(idents)))}); "
                         "pass --classifier")
    ident = next(iter(idents))
    name = ident.rsplit("@", 1)[0]
    try:
        clf = load_trusted_name(name)  # metadata selects shipped classifiers only, never code or paths
    except InputError:
        raise InputError(f"the ciphertexts name classifier {quote(ident)}, which is not a shipped classifier; "
                         "metadata may only name shipped ones: pass -c/--classifier to use another") from None
    if clf.ident != ident:
        raise InputError(f"the ciphertexts name classifier {quote(ident)}, but the shipped {name} is {clf.ident}")
    return clf


def _classifier_for(ct_paths: list[Path], classifier: str | None, classifier_config=None):
    if classifier:
        return load_classifier(classifier, config=classifier_config)
    return trusted_classifier(classifier_idents(ct_paths))


def classify_files(inputs: list, classifier: str | None = None, convert: str = "strict", batch_size: int = 256,
                   progress: Callable | None = None, classifier_config=None, stack: str | None = None) -> list[dict]:
    """Label images (ciphertexts or plaintexts) with a plaintext classifier; needs no key.

    Without ``classifier`` the classifier named in the ciphertexts' metadata is used. ``stack``: classify the
    way that serving stack does (:data:`ric.stacks.STACKS`: ONNX Runtime, fp16, OpenCV or Pillow resize, ...)."""
    if stack is not None:
        from ric.stacks import get_stack

        stack = get_stack(stack)
        stack.check()
    paths = list_images(inputs)
    clf = _classifier_for(paths, classifier, classifier_config)
    return classify_paths(paths, clf, convert, batch_size, progress, stack)


def classify_paths(paths: list[Path], clf, convert: str = "strict", batch_size: int = 256,
                   progress: Callable | None = None, stack=None) -> list[dict]:
    """Label the image files ``paths`` with the loaded classifier ``clf`` (all read and checked first; the first
    :data:`HELD_BYTES` of pixels stay in memory, later images are read again when their batch comes); ``stack``:
    a :class:`ric.stacks.Stack` to classify with instead of ``clf``'s own preprocessing and runtime."""

    def read(p, shape=None):
        a = read_image(p, clf.input_shape[0], convert, size=clf.size_check())
        if shape is not None and a.shape != shape:
            raise InputError(f"{p}: file changed while classifying; rerun")
        return a

    arrays: list[np.ndarray | None] = []
    groups: dict[tuple, list[int]] = {}  # images of one size share forward passes (a classifier that resizes takes any)
    held = 0
    for i, p in enumerate(paths):
        a = read(p)
        clf.check_input((a.shape[2], a.shape[0], a.shape[1]))
        groups.setdefault(a.shape, []).append(i)
        held += a.nbytes
        arrays.append(a if held <= HELD_BYTES else None)
    labels: list[int] = [0] * len(paths)
    for shape, idx in groups.items():
        for s in range(0, len(idx), batch_size):
            part = idx[s:s + batch_size]
            x = to_tensor(np.stack([arrays[i] if arrays[i] is not None else read(paths[i], shape) for i in part]))
            for i, lab in zip(part, (clf.predict(x) if stack is None else stack.predict(clf, x)).tolist(), strict=True):
                labels[i] = lab
            _tick(progress, len(part))
    return [{"input": str(p), "label": lab, "class": clf.class_names[lab], "classifier": clf.name}
            for p, lab in zip(paths, labels, strict=True)]


def decrypt_files(inputs: list, out_dir: str | Path, key: SecretKey, model: str | None = None, verify: bool = True,
                  device: str = "cpu", batch_size: int = 64, progress: Callable | None = None,
                  classifier: str | None = None, classifier_config=None, ric=None, force: bool = False,
                  any_name: bool = False) -> list[dict]:
    """Recover plaintext PNGs from ciphertexts of either scheme. With ``verify`` every file's tag is checked
    before anything is written; ``verify=False`` is for experiments only (e.g. brute-force studies on the paper
    scheme; an exact-scheme payload is always authenticated when it is opened). An existing output is skipped if
    it is this ciphertext's recovered image (or photo file), redone if it is another recovered image under
    ``key``, and refused (:class:`InputError`, nothing written) if it is anything else (e.g. the original photos),
    unless ``force``.

    Exact-scheme files need no model or classifier, and still decrypt after their text chunks were stripped or
    they were re-encoded losslessly (WebP lossless, TIFF): the pixels carry a header. Streaming: a first pass
    reads the files one at a time, verifies each as it is read and keeps only the metadata; then paper models
    are resolved and checked (a file's ``ric:model`` may only name a shipped model unless ``model``/``ric`` is
    given); the second pass reads, re-verifies and decrypts ``batch_size`` files at a time.

    A ciphertext whose output is named after it (not a photo) must carry the file name it was written under
    (``ric:name-id``, keyed): a file renamed or swapped by whoever stored it is refused unless ``any_name``."""
    paths, outs = plan_outputs(inputs, out_dir, clashes=False)
    load = paper_loader(ric, device, batch_size, classifier, classifier_config)
    scan = scan_decrypt(paths, outs, key, verify, model, ric, load, force, any_name)
    _tick(progress, sum(r["status"] == "skipped" for r in scan.rows))
    decrypt_pending(paths, scan, key, verify, batch_size, progress)
    return scan.rows


@dataclass
class DecryptScan:
    """A decryption job after its first pass: one row per file (``skipped`` or ``pending``), each file's message
    digest (pass 2 checks that the file did not change), and the pending files grouped by the scheme object that
    decrypts them."""

    rows: list[dict]
    digests: list[bytes]
    groups: dict[tuple, list[int]]
    schemes: dict[tuple, object]


def paper_loader(ric=None, device: str = "cpu", batch_size: int = 64, classifier: str | None = None,
                 classifier_config=None) -> Callable:
    """``load(name)``: the paper scheme for a (resolved) model name, loaded once and cached; ``ric`` if given."""
    from ric.schemes.paper import PaperScheme

    loaded: dict = {}

    def load(name: str):
        if name not in loaded:
            loaded[name] = PaperScheme(ric) if ric is not None else PaperScheme.load(
                name, device=device, batch_size=batch_size, classifier=classifier, classifier_config=classifier_config)
        return loaded[name]

    return load


def scan_decrypt(paths: list[Path], outs: list[Path], key: SecretKey, verify: bool = True, model: str | None = None,
                 ric=None, load: Callable | None = None, force: bool = False, any_name: bool = False
                 ) -> DecryptScan:
    """Pass 1 of :func:`decrypt_files`: verify every file (raises before anything is written), find the finished
    outputs (an existing output that no decryption under ``key`` made is refused unless ``force``), and load and
    check the paper models that the pending files need (``load`` from :func:`paper_loader`)."""
    metas: list[Ciphertext] = []  # pixels dropped: a zero view of the right shape
    digests: list[bytes] = []
    files: dict[int, tuple[str, str]] = {}  # file-payload ciphertexts: (sealed name, sha256 of the file)
    for i, p in enumerate(paths):  # structure, then the tag, one file in memory at a time
        ct = _read_verified(p, key, verify)
        sealed = sealed_file_of(ct, key)
        if sealed is not None:
            files[i] = (sealed.name, hashlib.sha256(sealed.data).hexdigest())
        elif verify and ct.name_id and not any_name:
            _check_name_binding(p, ct, key)
        digests.append(message_digest(ct))
        metas.append(replace(ct, pixels=np.broadcast_to(np.zeros((), np.uint8), ct.pixels.shape)))
    outs = _file_outputs(paths, outs, files, force)
    rows = []
    for i, (p, o, ct, dg) in enumerate(zip(paths, outs, metas, digests, strict=True)):  # after every tag
        done = os.path.lexists(o) and (_same_file(o, files[i][1]) if i in files else _own_recovery(o, key, dg, force))
        rows.append({"input": str(p), "output": str(o), "status": "skipped" if done else "pending",
                     "target": ct.target if ct.target >= 0 else None, "scheme": ct.scheme_name})
    groups: dict[tuple, list[int]] = {}
    for i, (ct, r) in enumerate(zip(metas, rows, strict=True)):
        if r["status"] == "pending":
            groups.setdefault(_decrypt_group(ct, model, ric), []).append(i)
    schemes = _decrypt_schemes(groups, metas, paths, load or paper_loader(ric))
    return DecryptScan(rows, digests, groups, schemes)


def _check_name_binding(p: Path, ct: Ciphertext, key: SecretKey) -> None:
    """Refuse a ciphertext whose authenticated ``ric:name-id`` is not that of the name it is read under."""
    if not hmac.compare_digest(keyed_name_id(key, p.name), ct.name_id):
        raise AuthenticationError(f"{p}: this ciphertext was written under another file name (renamed, or swapped "
                                  "by whoever stored it); rename it back, or pass --any-name to decrypt it as it is")


def _file_outputs(paths: list[Path], outs: list[Path], files: dict[int, tuple[str, str]], force: bool = False
                  ) -> list[Path]:
    """The outputs of a decryption job: ``<stem>.png`` for pixel payloads, the sealed file name for photos (the
    name travels inside the authenticated payload). Two photos with the same name get ``name (2).ext``, ... in
    input order; an existing file that is not this photo is refused (it would be replaced), before any write,
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
        if os.path.lexists(o) and not _same_file(o, digest) and not force:
            raise InputError(f"{o} exists and is not the photo that {paths[i]} holds; decryption replaces no file "
                             "it did not make: move it away, choose another output folder (-o), or pass --force")
        outs[i] = o
    _outputs(paths, outs[0].parent if outs else Path("."), outs)  # two ciphertexts of one name, not photos
    _refuse_overwriting_inputs(paths, outs)
    return outs


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
    """Pass 2 of :func:`decrypt_files`: read, re-check and decrypt the pending files ``batch_size`` at a time;
    each recovered image is written atomically with its ``ric:recovered-mac`` (status ``decrypted``)."""
    rows, digests = scan.rows, scan.digests
    for gk, idx in scan.groups.items():  # batch_size files in memory at a time
        for s in range(0, len(idx), batch_size):
            part = idx[s:s + batch_size]
            cts = []
            for i in part:
                ct = read_any(paths[i])
                if message_digest(ct) != digests[i]:
                    raise CiphertextError(f"{paths[i]}: file changed while decrypting; rerun")
                cts.append(ct)
            for i, px in zip(part, scan.schemes[gk].decrypt(cts, key, verify=verify), strict=True):
                if isinstance(px, np.ndarray):
                    write_png(rows[i]["output"], px, {RECOVERED_MAC_FIELD: recovered_mac(key, digests[i], px),
                                                      RECOVERED_FROM_FIELD: digests[i].hex()})
                else:  # a photo: its own file, byte for byte
                    atomic_write_bytes(rows[i]["output"], px.data)
                rows[i]["status"] = "decrypted"
            _tick(progress, len(part))


def _read_verified(p: Path, key: SecretKey, verify: bool) -> Ciphertext:
    """Read a ciphertext of either scheme and (``verify``) authenticate it: the container's tag, or for an
    exact-scheme file without metadata the sealed payload in its pixels."""
    ct = read_any(p)
    if not verify:
        return ct
    if ct.tag:
        ct.verify(key, source=str(p))
    else:
        from ric.schemes.exact import open_sealed

        try:
            open_sealed(key, ct.pixels)
        except RICError as e:
            raise type(e)(f"{p}: {e}") from None
    return ct


def _decrypt_group(ct: Ciphertext, model: str | None, ric) -> tuple:
    """Files that one scheme object decrypts together: every exact file; paper files per model and shape."""
    if ct.scheme_name == "exact":
        return ("exact",)
    if ric is not None:
        name = "<given>"
    elif model:
        name = str(model)
    else:
        name = str(bundles.resolve_shipped(ct.model, "ric"))
    return ("paper", name, ct.pixels.shape)


def _decrypt_schemes(groups: dict, metas, paths, load: Callable) -> dict:
    """Load and check every paper model before the first write (the exact scheme needs nothing)."""
    from ric.schemes.base import SCHEMES

    out = {}
    for gk, idx in groups.items():
        if gk[0] == "exact":
            out[gk] = SCHEMES["exact"]()  # no classifier: the key is all an exact-scheme file needs
            continue
        out[gk] = sch = load(gk[1])
        for i in idx:
            try:
                sch.check_ciphertext(metas[i])
            except CiphertextError as e:
                raise CiphertextError(f"{paths[i]}: {e}") from None
            if metas[i].target >= sch.classifier.num_classes:
                raise CiphertextError(f"{paths[i]}: ciphertext target label {metas[i].target} is out of range "
                                      f"for classifier {sch.classifier.name}")
    return out


def _own_recovery(o: Path, key: SecretKey, ct_digest: bytes, force: bool = False) -> bool:
    """True if ``o`` is the finished recovered image of the ciphertext with message digest ``ct_digest`` (skip it);
    False if it is another image recovered under ``key`` (redo it), or with ``force`` for anything else; any other
    existing file is refused."""
    src = _recovered_from(o, key, ct_digest)
    if src is None and not force:
        _refuse_unproven(o, "an image recovered under this key (its ric:recovered-mac does not verify)")
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


def demo(workdir: str | Path | None = None, model: str = DEFAULT_MODEL, progress: Callable | None = None,
         schemes: tuple[str, ...] = ("exact", "paper")) -> dict:
    """keygen → encrypt → classify → decrypt on the shipped samples, offline, with each scheme: ``exact`` with
    :data:`DEFAULT_CLASSIFIER`, ``paper`` with ``model``. Files go to ``<workdir>/<scheme>/``; returns a summary
    per scheme."""
    tmp = None
    if workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="ric-demo-")
        workdir = tmp.name
    w = Path(workdir)
    try:
        files, meta = sample_images()
        key = _demo_key(w / "secret.key")
        out = {"images": len(files), "key_id": key.key_id, "schemes": {}}
        for name in schemes:
            out["schemes"][name] = _demo_scheme(name, files, meta, w / name, key, model, progress)
        out["failed"] = sum(r["failed"] for r in out["schemes"].values())
        out["workdir"] = str(w) if tmp is None else None
        return out
    finally:
        if tmp is not None:
            tmp.cleanup()


def _demo_scheme(name: str, files: list[Path], meta: dict, w: Path, key: SecretKey, model: str, progress) -> dict:
    from ric.eval.metrics import psnr, ssim

    sch = load_scheme(name, model if name == "paper" else None)
    kw = {"ric": sch.ric} if name == "paper" else {"scheme": "exact"}
    enc = encrypt_files(files, w / "ciphertexts", key, progress=progress, **kw)
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
    wrong = SecretKey.generate()
    cts = [read_ciphertext(r["output"]) for r in ok]
    if name == "paper":  # the paper scheme's noise under a wrong key (tag check off): what an attacker would see
        row["wrong_key_psnr_db"] = float(psnr(sch.ric.decrypt(cts, wrong, verify=False), x).mean())
    else:  # the sealed payload refuses a wrong key; there is nothing to look at
        row["wrong_key_refused"] = float(np.mean([_refuses(ct, wrong) for ct in cts]))
    return row


def _refuses(ct: Ciphertext, key: SecretKey) -> bool:
    from ric.schemes.exact import open_sealed

    try:
        open_sealed(key, ct.pixels)
    except AuthenticationError:
        return True
    return False


__all__ = ["keygen", "load_key", "list_models", "encrypt_files", "classify_files", "decrypt_files", "demo",
           "sample_images", "AuthenticationError"]
