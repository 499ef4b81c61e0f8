"""The classification job: label image files (ciphertexts or plaintexts) with a plaintext classifier; no key.

Names read from files (a ciphertext's classifier) may only select shipped classifiers, never code or paths."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from ric.classifiers import load_classifier, load_trusted_name
from ric.container import read_ciphertext
from ric.errors import InputError, NotACiphertextError, quote
from ric.imageio import read_image, to_tensor
from ric.jobs.plan import tick

HELD_BYTES = 512 << 20  # pixels kept in memory between the check pass and the forward passes
BATCH_SUBPIXELS = 1 << 24  # sub-pixels per forward pass (float32: 64 MiB before preprocessing), one image if larger


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


def classifier_for(ct_paths: list[Path], classifier: str | None, classifier_config=None):
    """The operator's ``classifier``, else the shipped one that the ciphertexts name."""
    if classifier:
        return load_classifier(classifier, config=classifier_config)
    return trusted_classifier(classifier_idents(ct_paths))


def classify_paths(paths: list[Path], clf, convert: str = "strict", batch_size: int = 256,
                   progress: Callable | None = None, stack=None) -> list[dict]:
    """Label the image files ``paths`` with the loaded classifier ``clf`` (all read and checked first; the first
    :data:`HELD_BYTES` of pixels stay in memory, later images are read again when their batch comes; a batch holds
    at most ``batch_size`` images and :data:`BATCH_SUBPIXELS` sub-pixels, or one image); ``stack``:
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
        step = max(1, min(batch_size, BATCH_SUBPIXELS // int(np.prod(shape))))  # photos: a few per pass
        for s in range(0, len(idx), step):
            part = idx[s:s + step]
            x = to_tensor(np.stack([arrays[i] if arrays[i] is not None else read(paths[i], shape) for i in part]))
            for i, lab in zip(part, (clf.predict(x) if stack is None else stack.predict(clf, x)).tolist(), strict=True):
                labels[i] = lab
            tick(progress, len(part))
    return [{"input": str(p), "label": lab, "class": clf.class_names[lab], "classifier": clf.name}
            for p, lab in zip(paths, labels, strict=True)]
