"""File-level Python API: the counterpart of every CLI verb.

Batch jobs are restartable: an output that already exists is skipped (outputs are written
atomically, so an existing file is a complete one; for encryption it must also verify under the key).
All inputs are read and checked before the first output is written, so bad input loses nothing.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from . import bundles
from .classifiers import load_classifier
from .container import Ciphertext, read_ciphertext
from .errors import AuthenticationError, CiphertextError, InputError, RICError
from .imageio import list_images, read_image, write_png
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
    ric = ric or RIC.load(model, device=device, max_retries=max_retries, batch_size=batch_size,
                          classifier=classifier, classifier_config=classifier_config)
    c = ric.plaintext_channels
    rows: list[dict] = []
    todo: list[tuple[int, np.ndarray]] = []
    for p, o in zip(paths, outs, strict=True):
        if o.exists():
            try:
                ct = read_ciphertext(o)
                ct.verify(key)
                ric.check_ciphertext(ct)
                rows.append({"input": str(p), "output": str(o), "status": "skipped", "target": ct.target})
                continue
            except RICError:
                pass  # not a finished ciphertext of this key/model: redo it (written atomically)
        a = read_image(p, c, convert)
        if a.shape[2] != ric.input_shape[0]:  # grey model: replicate to RGB (documented grey policy)
            a = np.repeat(a, ric.input_shape[0], axis=2)
        ric.check_shape((a.shape[2], a.shape[0], a.shape[1]))
        rows.append({"input": str(p), "output": str(o), "status": "pending"})
        todo.append((len(rows) - 1, a))
    _tick(progress, len(paths) - len(todo))
    for s in range(0, len(todo), batch_size):
        chunk = todo[s:s + batch_size]
        x = torch.stack([torch.from_numpy(a).permute(2, 0, 1) for _, a in chunk]).float() / 255
        for (ri, _), res in zip(chunk, ric.encrypt(x, key), strict=True):
            row = rows[ri]
            row.update(target=res.target, attempts=res.attempts)
            if res.ciphertext is None:
                row.update(status="failed", error=res.error)
            else:
                res.ciphertext.save(row["output"])
                row["status"] = "encrypted"
        _tick(progress, len(chunk))
    return rows


def _classifier_for(ct_paths: list[Path], classifier: str | None, classifier_config=None):
    if classifier:
        return load_classifier(classifier, config=classifier_config)
    idents = set()
    for p in ct_paths:
        try:
            idents.add(read_ciphertext(p).classifier)
        except CiphertextError:
            raise InputError(f"{p} carries no RIC metadata naming its classifier; pass --classifier") from None
    if len(idents) != 1:
        raise InputError(f"inputs were made for several classifiers ({', '.join(sorted(idents))}); pass --classifier")
    ident = idents.pop()
    name = ident.rsplit("@", 1)[0]
    try:
        clf = load_classifier(name)
    except RICError:
        raise InputError(f"the ciphertexts name classifier {ident}, which is not shipped; pass --classifier") from None
    if clf.ident != ident:
        raise InputError(f"the ciphertexts name classifier {ident}, but the shipped {name} is {clf.ident}")
    return clf


def classify_files(inputs: list, classifier: str | None = None, convert: str = "strict", batch_size: int = 256,
                   progress: Callable | None = None, classifier_config=None) -> list[dict]:
    """Label images (ciphertexts or plaintexts) with a plaintext classifier; needs no key.

    Without ``classifier`` the classifier named in the ciphertexts' metadata is used."""
    paths = list_images(inputs)
    clf = _classifier_for(paths, classifier, classifier_config)
    arrays = []
    for p in paths:
        a = read_image(p, clf.input_shape[0], convert)
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
                  classifier: str | None = None, classifier_config=None) -> list[dict]:
    """Recover plaintext PNGs from ciphertexts. With ``verify`` every file's tag is checked before
    anything is written; ``verify=False`` is for experiments only (e.g. brute-force studies)."""
    from .pipeline import RIC

    paths = list_images(inputs)
    out_dir = Path(out_dir)
    outs = _outputs(paths, out_dir)
    cts: list[Ciphertext] = [read_ciphertext(p) for p in paths]
    if verify:
        for p, ct in zip(paths, cts, strict=True):
            ct.verify(key, source=str(p))
    rows = [{"input": str(p), "output": str(o), "status": "skipped" if o.exists() else "pending",
             "target": ct.target} for p, o, ct in zip(paths, outs, cts, strict=True)]
    _tick(progress, sum(r["status"] == "skipped" for r in rows))
    groups: dict[tuple, list[int]] = {}
    for i, (ct, r) in enumerate(zip(cts, rows, strict=True)):
        if r["status"] == "pending":
            groups.setdefault((model or ct.model, ct.pixels.shape), []).append(i)
    models: dict[str, RIC] = {}
    for (name, _), idx in groups.items():  # load and check everything before the first write
        if name not in models:
            models[name] = RIC.load(name, device=device, batch_size=batch_size, classifier=classifier,
                                    classifier_config=classifier_config)
        for i in idx:
            try:
                models[name].check_ciphertext(cts[i])
            except CiphertextError as e:
                raise CiphertextError(f"{paths[i]}: {e}") from None
    for (name, _), idx in groups.items():
        ric = models[name]
        for s in range(0, len(idx), batch_size):
            part = idx[s:s + batch_size]
            xh = ric.decrypt([cts[i] for i in part], key, verify=False)
            if ric.plaintext_channels == 1 and xh.shape[1] == 3:  # grey model: back to one channel
                xh = xh.mean(1, keepdim=True)
            for i, x in zip(part, xh, strict=True):
                write_png(rows[i]["output"], torch.round(x * 255).to(torch.uint8).permute(1, 2, 0).numpy())
                rows[i]["status"] = "decrypted"
            _tick(progress, len(part))
    return rows


def sample_images() -> tuple[list[Path], dict]:
    """The shipped sample images and their labels (``samples/labels.json``)."""
    meta = json.loads((SAMPLES_DIR / "labels.json").read_text())
    return [SAMPLES_DIR / f for f in meta["files"]], meta


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
        key = keygen(w / "secret.key", force=True)
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
