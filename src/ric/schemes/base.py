"""The scheme interface: uint8 images in, authenticated ciphertexts out, and back.

A scheme turns plaintext images (uint8 H×W×C arrays, C = 1 or 3) into :class:`ric.container.Ciphertext`
objects that the scheme's classifier labels ``t = C(x)``, and ciphertexts back into images. Encryption checks
itself: every ciphertext is classified before it is returned, a miss is retried with a fresh nonce, and what
still fails is reported per image (never written).

:class:`Scheme` declares everything the jobs (:mod:`ric.jobs`), the service and Ray use, so that nothing outside
``ric.schemes`` needs to know which scheme it holds: the fields its ciphertexts carry, the options it owns, how it
reads a plaintext, checks shapes and ciphertexts, authenticates, groups ciphertexts for decryption, which file a
ciphertext seals (restarts and output names), and its demo lines. Schemes register by name in :data:`SCHEMES`
(``@register_scheme("name")``), which also registers their fields with the container; adding a scheme is one
module under ``ric/schemes/`` (``docs/layout.md`` has a worked example).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from ric.container import SchemeFields, check_field, register_fields
from ric.errors import InputError, UnknownNameError, quote
from ric.imageio import channel_view, luma, read_native  # noqa: F401  (the channel policy, re-exported)
from ric.registry import registrar
from ric.stacks.robust import DEFAULT_ROBUST_SET

SCHEMES: dict[str, type] = {}
_register_name = registrar(SCHEMES, "name")
DEFAULT_SCHEME = "exact"


def register_scheme(name: str):
    """Class decorator: register a :class:`Scheme` subclass under ``name`` and its ciphertext fields
    (``cls.fields``) with the container; a duplicate name is refused."""

    def wrap(cls):
        _register_name(name)(cls)  # a taken name raises here, before anything changes
        if getattr(cls, "fields", None) is None:
            del SCHEMES[name]
            raise TypeError(f"scheme {name!r} declares no ciphertext fields (cls.fields)")
        register_fields(name, cls.fields, implicit=getattr(cls, "implicit", False))
        return cls

    return wrap


@dataclass(frozen=True)
class SchemeOptions:
    """What a job asks of a scheme. Each scheme takes the options it owns (:attr:`Scheme.owns`) and the common ones
    (classifier, device, retries, batch size); an owned option of another scheme is refused
    (:func:`ric.schemes.load_scheme`)."""

    model: str | None = None  # the paper scheme's RIC model bundle
    classifier: str | None = None
    classifier_config: object = None
    bits: int | None = None  # the exact scheme's digit split
    transcode: tuple[str, ...] | None = None  # the exact scheme's file codecs for photos (None: its default)
    robust_set: str | None = DEFAULT_ROBUST_SET  # the exact scheme's robustness set (None: ric's own path only)
    resize: bool = False  # the paper scheme encrypts a resized copy
    refine: bool = True  # the paper scheme's encoder-side refinement
    device: str = "cpu"
    max_retries: int = 3
    batch_size: int = 64
    ric: object = None  # a loaded paper-scheme model (research use)

    def given(self) -> set[str]:
        """The options set to something other than their default."""
        return {f.name for f in fields(self) if not (getattr(self, f.name) is f.default
                                                       or getattr(self, f.name) == f.default)}


@dataclass(frozen=True)
class SealedFile:
    """A file that a ciphertext seals whole (the exact scheme's photos): its name and its original bytes."""

    name: str
    data: bytes
    stripped: bool = False  # metadata was dropped before encryption


@dataclass
class EncryptResult:
    ciphertext: object | None  # ric.container.Ciphertext, or None when the image failed
    target: int
    attempts: int
    error: str = ""
    steps: int = -1  # attack steps of the successful attempt (exact scheme), -1 if not recorded
    code: int = 1  # the CLI's exit code for a failure (1: the label was not reached; 2: bad input)
    unchecked: tuple = ()  # exact scheme: serving stacks the verifier could not run (library not installed)


class Scheme:
    """Base class (template methods). Subclasses set ``name`` (by ``@register_scheme``) and ``fields``, implement
    :meth:`from_options`, :meth:`encrypt`, :meth:`decrypt`, :meth:`check_shape` and :meth:`check_ciphertext`, and
    override the rest where they differ."""

    name = "base"
    fields: SchemeFields | None = None  # the ric:* fields of this scheme's ciphertexts
    implicit = False  # ciphertexts without ric:scheme are this scheme's (files older than the field)
    owns: dict[str, str] = {}  # option -> its CLI flag: options only this scheme takes
    declines: dict[str, str] = {}  # another scheme's option -> why this scheme does not take it
    implied_by: tuple[str, ...] = ()  # options that select this scheme when no scheme is named
    classifier = None
    channels = 3

    # ---- encryption
    @classmethod
    def from_options(cls, opts: SchemeOptions) -> Scheme:
        """The scheme an encryption job runs with ``opts`` (each scheme loads its own model or classifier)."""
        raise NotImplementedError

    def encrypt(self, images: list[np.ndarray], key, progress=None) -> list[EncryptResult]:
        raise NotImplementedError

    def read_plain(self, path: Path, convert: str = "strict") -> np.ndarray:
        """A plaintext file's pixels as this scheme encrypts them (default: the image's own size and channels)."""
        return read_native(path, self.channels, convert, size=self.classifier.size_check())

    def check_shape(self, shape: tuple[int, int, int]) -> None:
        """Raise :class:`~ric.errors.InputError` unless a plaintext of (H, W, C) ``shape`` can be encrypted."""
        raise NotImplementedError

    def check_encryptable(self) -> None:
        """Refuse (before anything is written) settings that no ciphertext could carry in its metadata."""
        check_field("classifier", self.classifier.ident, InputError)

    def takes_file(self, h: int, w: int) -> bool:
        """True if an h×w image file is sealed as its file (:meth:`encrypt_photos`); False: as its pixels."""
        return False

    def encrypt_photos(self, photos: list, key) -> list[EncryptResult]:
        """Seal photo files (``ric.schemes.exact.Photo``: name, bytes, format, decoded pixels), one result each."""
        raise NotImplementedError(f"the {self.name} scheme seals no files")

    def encrypt_photo(self, photo, key) -> EncryptResult:
        return self.encrypt_photos([photo], key)[0]

    # ---- decryption
    def check_ciphertext(self, ct) -> None:
        """Raise :class:`~ric.errors.CiphertextError` unless ``ct`` was made by this scheme with these settings."""
        raise NotImplementedError

    def check_decryptable(self, ct) -> None:
        """Before the first write of a decryption job: raise unless this object can decrypt ``ct``."""

    def decrypt(self, cts: list, key, verify: bool = True) -> list[np.ndarray | SealedFile]:
        """Ciphertexts back to their uint8 H×W×C plaintexts, or the files they seal (``verify``: tags first)."""
        raise NotImplementedError

    @classmethod
    def decrypter_key(cls, ct, opts: SchemeOptions) -> str:
        """Which scheme object decrypts ``ct`` (:meth:`for_decryption` is called once per key and job)."""
        return ""

    @classmethod
    def batch_key(cls, ct) -> tuple:
        """Ciphertexts of one decrypter with the same batch key are decrypted in one batch."""
        return ()

    @classmethod
    def for_decryption(cls, decrypter_key: str, opts: SchemeOptions) -> Scheme:
        """The object that decrypts the ciphertexts of ``decrypter_key`` (:meth:`decrypter_key`)."""
        return cls.from_options(opts)

    @classmethod
    def authenticate(cls, ct, key, source: str = "ciphertext") -> None:
        """Raise :class:`~ric.errors.AuthenticationError` unless ``ct`` verifies under ``key`` (the container's
        tag; a scheme whose bare pixels authenticate themselves overrides this for files without a tag)."""
        ct.verify(key, source=source)

    @classmethod
    def sealed_file(cls, ct, key) -> SealedFile | None:
        """The file an (authenticated) ciphertext seals, or None when it holds pixels. The job names the output
        after it and skips an existing output with the same bytes."""
        return None

    # ---- demo
    @classmethod
    def demo_options(cls, model: str | None = None) -> SchemeOptions:
        """The options ``ric demo`` runs this scheme with (``model``: the demo's paper model)."""
        return SchemeOptions()

    def demo_checks(self, cts: list, plain, wrong_key) -> dict:
        """Extra lines of the demo's summary: what a wrong key gives (``plain``: the plaintexts as a tensor)."""
        return {}

    def _public(self) -> dict:
        return {k: v for k, v in vars(self).items() if not k.startswith("_") and k not in ("classifier", "device")}

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self._public().items())
        return f"{type(self).__name__}({inner})"


def scheme_class(name: str) -> type:
    """The registered scheme class of ``name`` (a ciphertext's :attr:`~ric.container.Ciphertext.scheme_name`)."""
    if name not in SCHEMES:
        raise UnknownNameError(f"unknown scheme {quote(name)}; known: {', '.join(sorted(SCHEMES))}")
    return SCHEMES[name]


def retry_loop(items: list[int], attempt: Callable[[list[int]], list[int]], max_retries: int
               ) -> tuple[dict[int, int], list[int]]:
    """The one retry loop of every scheme: ``attempt(pending)`` tries the pending items (each scheme draws a fresh
    nonce for a retried item) and returns those whose ciphertext the classifier still mislabels; it runs at most
    ``1 + max_retries`` times. Returns the attempts per item and the items that failed every time."""
    attempts = dict.fromkeys(items, 0)
    pending = list(items)
    for _ in range(1 + max_retries):
        if not pending:
            break
        for i in pending:
            attempts[i] += 1
        pending = attempt(pending)
    return attempts, pending
