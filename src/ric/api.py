"""File-level Python API: the counterpart of every CLI verb.

Batch jobs are restartable: outputs are written atomically, and a rerun skips an existing output only if
it checks out: for encryption, a ciphertext that verifies under the key, fits the model and carries the keyed
hash of *this* input (``ric:plain-mac``); for decryption, a recovered image whose keyed hash
(``ric:recovered-mac``) binds it to this ciphertext and key. Anything else is redone.
All inputs are read and checked before the first output is written, so bad input loses nothing, and no
output may resolve to an input file. Names read from files (a ciphertext's model and classifier) may only
select shipped bundles (:func:`ric.bundles.resolve_shipped`); paths and code specs come from the caller only.
"""

from __future__ import annotations

import hmac
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from . import bundles
from .classifiers import load_classifier, load_trusted_name
from .container import (
    RECOVERED_MAC_FIELD,
    Ciphertext,
    check_field,
    message_digest,
    plain_mac,
    read_ciphertext,
    recovered_mac,
)
from .errors import AuthenticationError, CiphertextError, InputError, KeyFileError, NotACiphertextError, RICError, quote
from .imageio import list_images, open_image, read_image, write_png
from .keys import SecretKey

SAMPLES_DIR = Path(__file__).resolve().parent / "samples"
DEFAULT_MODEL = "svhn-ric-v2"


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
                       test_accuracy=c.get("test_accuracy"), test_data=c.get("test_data"))
        else:
            row.update(classifier=c["classifier"], alpha=c["alpha"], codec=c["codec"]["name"],
                       codec_trained_on=c.get("codec_trained_on", c.get("training", {}).get("dataset")),
                       image_shape=c.get("image_shape"), metrics=c.get("metrics", {}),
                       scramble=bool(c.get("scramble", False)))
        rows.append(row)
    return rows


def _outputs(paths: list[Path], out_dir: Path) -> list[Path]:
    outs = [out_dir / (p.stem + ".png") for p in paths]
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


def _tick(progress: Callable | None, n: int = 1):
    if progress:
        progress(n)


def encrypt_files(inputs: list, out_dir: str | Path, key: SecretKey, model: str = DEFAULT_MODEL,
                  convert: str = "strict", device: str = "cpu", max_retries: int = 3, batch_size: int = 64,
                  progress: Callable | None = None, ric=None, classifier: str | None = None,
                  classifier_config=None) -> list[dict]:
    """Encrypt image files into ciphertext PNGs in ``out_dir`` (one ``<stem>.png`` per input).

    ``classifier`` replaces the model's own classifier (any spec of :func:`ric.classifiers.load_classifier`);
    decryption then needs the same classifier."""
    from .pipeline import RIC

    paths = list_images(inputs)
    out_dir = Path(out_dir)
    outs = _outputs(paths, out_dir)
    _refuse_overwriting_inputs(paths, outs)
    ric = ric or RIC.load(model, device=device, max_retries=max_retries, batch_size=batch_size,
                          classifier=classifier, classifier_config=classifier_config)
    c = ric.plaintext_channels
    check_field("model", ric.model_id, InputError)  # a name no ciphertext could carry: refuse before working
    check_field("classifier", ric.classifier.ident, InputError)
    rows: list[dict] = []
    todo: list[tuple[int, np.ndarray]] = []
    for p, o in zip(paths, outs, strict=True):
        a = read_image(p, c, convert, size=ric.input_shape[1:])
        if a.shape[2] != ric.input_shape[0]:  # grey model: replicate to RGB (documented grey policy)
            a = np.repeat(a, ric.input_shape[0], axis=2)
        ric.check_shape((a.shape[2], a.shape[0], a.shape[1]))
        if os.path.lexists(o):
            ct = _finished_ciphertext(o, key, ric, a)
            if ct is not None:
                rows.append({"input": str(p), "output": str(o), "status": "skipped", "target": ct.target})
                continue
        rows.append({"input": str(p), "output": str(o), "status": "pending"})
        todo.append((len(rows) - 1, a))
    _tick(progress, len(paths) - len(todo))
    a_of = dict(todo)
    for s in range(0, len(todo), batch_size):
        chunk = todo[s:s + batch_size]
        x = torch.stack([torch.from_numpy(a).permute(2, 0, 1) for _, a in chunk]).float() / 255
        for (ri, _), res in zip(chunk, ric.encrypt(x, key), strict=True):
            row = rows[ri]
            row.update(target=res.target, attempts=res.attempts)
            if res.ciphertext is None:
                row.update(status="failed", error=res.error)
            else:
                ct = res.ciphertext
                ct.plain_mac = plain_mac(key, ct.nonce, a_of[ri])
                ct.sign(key).save(row["output"])
                row["status"] = "encrypted"
        _tick(progress, len(chunk))
    return rows


def _finished_ciphertext(o: Path, key: SecretKey, ric, pixels: np.ndarray) -> Ciphertext | None:
    """The ciphertext at ``o`` if it is a finished encryption of ``pixels`` under ``key`` by ``ric``, else None."""
    try:
        ct = read_ciphertext(o)
        ct.verify(key)
        ric.check_ciphertext(ct)
    except RICError:
        return None  # not a finished ciphertext of this key/model: redo it (written atomically)
    if not ct.plain_mac or not hmac.compare_digest(plain_mac(key, ct.nonce, pixels), ct.plain_mac):
        return None  # made from another image (or by a version without the field): redo it
    return ct


def _classifier_for(ct_paths: list[Path], classifier: str | None, classifier_config=None):
    if classifier:
        return load_classifier(classifier, config=classifier_config)
    idents = set()
    for p in ct_paths:
        try:
            idents.add(read_ciphertext(p, pixels=False).classifier)
        except NotACiphertextError:
            raise InputError(f"{p} carries no RIC metadata naming its classifier; pass --classifier") from None
    if len(idents) != 1:
        raise InputError(f"inputs were made for several classifiers ({', '.join(map(quote, sorted(idents)))}); "
                         "pass --classifier")
    ident = idents.pop()
    name = ident.rsplit("@", 1)[0]
    try:
        clf = load_trusted_name(name)  # metadata selects shipped classifiers only, never code or paths
    except InputError:
        raise InputError(f"the ciphertexts name classifier {quote(ident)}, which is not a shipped classifier; "
                         "metadata may only name shipped ones: pass -c/--classifier to use another") from None
    if clf.ident != ident:
        raise InputError(f"the ciphertexts name classifier {quote(ident)}, but the shipped {name} is {clf.ident}")
    return clf


def classify_files(inputs: list, classifier: str | None = None, convert: str = "strict", batch_size: int = 256,
                   progress: Callable | None = None, classifier_config=None) -> list[dict]:
    """Label images (ciphertexts or plaintexts) with a plaintext classifier; needs no key.

    Without ``classifier`` the classifier named in the ciphertexts' metadata is used."""
    paths = list_images(inputs)
    clf = _classifier_for(paths, classifier, classifier_config)
    arrays = []
    for p in paths:
        a = read_image(p, clf.input_shape[0], convert, size=clf.input_shape[1:])
        clf.check_input((a.shape[2], a.shape[0], a.shape[1]))
        arrays.append(a)
    rows = []
    for s in range(0, len(paths), batch_size):
        x = torch.stack([torch.from_numpy(a).permute(2, 0, 1) for a in arrays[s:s + batch_size]]).float() / 255
        for p, lab in zip(paths[s:s + batch_size], clf.predict(x).tolist(), strict=True):
            rows.append({"input": str(p), "label": lab, "class": clf.class_names[lab], "classifier": clf.name})
        _tick(progress, len(x))
    return rows


def decrypt_files(inputs: list, out_dir: str | Path, key: SecretKey, model: str | None = None, verify: bool = True,
                  device: str = "cpu", batch_size: int = 64, progress: Callable | None = None,
                  classifier: str | None = None, classifier_config=None, ric=None) -> list[dict]:
    """Recover plaintext PNGs from ciphertexts. With ``verify`` every file's tag is checked before
    anything is written; ``verify=False`` is for experiments only (e.g. brute-force studies).

    Streaming: a first pass reads the files one at a time, verifies each tag as it is read and keeps only the
    metadata; then the models are resolved and checked (a file's ``ric:model`` may only name a shipped model
    unless ``model``/``ric`` is given); the second pass reads, re-verifies and decrypts ``batch_size`` files at a
    time. ``ric`` (a loaded :class:`~ric.pipeline.RIC`) replaces ``model`` for every file."""
    from .pipeline import RIC

    paths = list_images(inputs)
    out_dir = Path(out_dir)
    outs = _outputs(paths, out_dir)
    _refuse_overwriting_inputs(paths, outs)
    metas: list[Ciphertext] = []  # pixels dropped: a zero view of the right shape
    digests: list[bytes] = []
    for p in paths:  # pass 1: structure, then the tag, one file in memory at a time
        ct = read_ciphertext(p)
        if verify:
            ct.verify(key, source=str(p))
        digests.append(message_digest(ct))
        metas.append(replace(ct, pixels=np.broadcast_to(np.zeros((), np.uint8), ct.pixels.shape)))
    # semantic checks, after every tag: which model (metadata may name shipped models only), resumable outputs
    rows = []
    for p, o, ct, dg in zip(paths, outs, metas, digests, strict=True):
        done = os.path.lexists(o) and _finished_recovery(o, key, dg)
        rows.append({"input": str(p), "output": str(o), "status": "skipped" if done else "pending",
                     "target": ct.target})
    _tick(progress, sum(r["status"] == "skipped" for r in rows))
    groups: dict[tuple, list[int]] = {}
    for i, (ct, r) in enumerate(zip(metas, rows, strict=True)):
        if r["status"] == "pending":
            if ric is not None:
                name = "<given>"
            elif model:
                name = str(model)
            else:
                name = str(bundles.resolve_shipped(ct.model, "ric"))
            groups.setdefault((name, ct.pixels.shape), []).append(i)
    models: dict[str, RIC] = {}
    for (name, _), idx in groups.items():  # load and check everything before the first write
        if name not in models:
            models[name] = ric if ric is not None else RIC.load(name, device=device, batch_size=batch_size,
                                                                classifier=classifier,
                                                                classifier_config=classifier_config)
        for i in idx:
            try:
                models[name].check_ciphertext(metas[i])
            except CiphertextError as e:
                raise CiphertextError(f"{paths[i]}: {e}") from None
            if metas[i].target >= models[name].classifier.num_classes:
                raise CiphertextError(f"{paths[i]}: ciphertext target label {metas[i].target} is out of range "
                                      f"for classifier {models[name].classifier.name}")
    for (name, _), idx in groups.items():  # pass 2: batch_size files in memory at a time
        m = models[name]
        for s in range(0, len(idx), batch_size):
            part = idx[s:s + batch_size]
            cts = []
            for i in part:
                ct = read_ciphertext(paths[i])
                if message_digest(ct) != digests[i]:
                    raise CiphertextError(f"{paths[i]}: file changed while decrypting; rerun")
                cts.append(ct)
            xh = m.decrypt(cts, key, verify=verify)
            if m.plaintext_channels == 1 and xh.shape[1] == 3:  # grey model: back to one channel
                xh = xh.mean(1, keepdim=True)
            for i, x in zip(part, xh, strict=True):
                px = torch.round(x * 255).to(torch.uint8).permute(1, 2, 0).numpy()
                write_png(rows[i]["output"], px, {RECOVERED_MAC_FIELD: recovered_mac(key, digests[i], px)})
                rows[i]["status"] = "decrypted"
            _tick(progress, len(part))
    return rows


def _finished_recovery(o: Path, key: SecretKey, ct_digest: bytes) -> bool:
    """True if ``o`` is the recovered image of the ciphertext with message digest ``ct_digest`` under ``key``:
    its ``ric:recovered-mac`` verifies (one HMAC, no decryption). Anything else (a file from another job, a
    partial copy, an older version without the field) is redone."""
    try:
        with open_image(o) as img:
            mac = (getattr(img, "text", None) or {}).get(RECOVERED_MAC_FIELD, "")
            a = np.array(img, dtype=np.uint8)
    except RICError:
        return False
    if not mac or a.ndim not in (2, 3):
        return False
    return hmac.compare_digest(recovered_mac(key, ct_digest, a if a.ndim == 3 else a[:, :, None]), mac)


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


def demo(workdir: str | Path | None = None, model: str = DEFAULT_MODEL, progress: Callable | None = None) -> dict:
    """keygen → encrypt → classify → decrypt on the shipped samples, offline; returns a summary."""
    from .metrics import psnr, ssim
    from .pipeline import RIC

    tmp = None
    if workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="ric-demo-")
        workdir = tmp.name
    w = Path(workdir)
    try:
        files, meta = sample_images()
        key = _demo_key(w / "secret.key")
        ric = RIC.load(model)
        enc = encrypt_files(files, w / "ciphertexts", key, model=model, progress=progress, ric=ric)
        ok = [r for r in enc if r["status"] in ("encrypted", "skipped")]
        plain = classify_files(files, classifier=ric.config["classifier"])
        cloud = classify_files([r["output"] for r in ok])
        dec = decrypt_files([r["output"] for r in ok], w / "recovered", key, progress=progress)
        byname = {Path(r["input"]).stem: r["label"] for r in plain}
        agree = [byname[Path(r["input"]).stem] == c["label"] for r, c in zip(ok, cloud, strict=True)]
        x = torch.stack([torch.from_numpy(read_image(Path(r["input"]))).permute(2, 0, 1) for r in ok]).float() / 255
        xh = torch.stack([torch.from_numpy(read_image(Path(d["output"]))).permute(2, 0, 1) for d in dec]).float() / 255
        truth = [meta["labels"][meta["files"].index(Path(r["input"]).name)] for r in ok]
        ps, ss = psnr(xh, x), ssim(xh, x)
        wrong = SecretKey.generate()
        xw = ric.decrypt([read_ciphertext(r["output"]) for r in ok], wrong, verify=False)
        return {"model": model, "images": len(files), "encrypted": len(ok),
                "failed": len(files) - len(ok), "label_agreement": float(np.mean(agree)),
                "plaintext_accuracy": float(np.mean([p["label"] == t for p, t in zip(plain, meta["labels"],
                                                                                        strict=True)])),
                "ciphertext_accuracy": float(np.mean([c["label"] == t for c, t in zip(cloud, truth, strict=True)])),
                "psnr_db": float(ps.mean()), "ssim": float(ss.mean()),
                "wrong_key_psnr_db": float(psnr(xw, x).mean()),
                "workdir": str(w) if tmp is None else None}
    finally:
        if tmp is not None:
            tmp.cleanup()


__all__ = ["keygen", "load_key", "list_models", "encrypt_files", "classify_files", "decrypt_files", "demo",
           "sample_images", "AuthenticationError"]
