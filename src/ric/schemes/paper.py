"""The paper's scheme: noise-like adversarial example (NAE) + learned codec + symmetric residual blend + 8-bit rounding.

:class:`RIC` works on tensors (a trained model: codec + frozen classifier + NAE attack + α); :class:`PaperScheme`
puts it behind the :class:`~ric.schemes.base.Scheme` interface (uint8 images in and out, the grey policy, and
``resize``: encrypt a copy resized to the classifier's input, so recovery returns the resized image).

Targets: the NAE target of an image is the classifier's own prediction on the plaintext,
``t = C(x)``. It is stored, authenticated, in the ciphertext (``ric:target``); it reveals nothing the
cloud does not already learn, since ``C(c) = t`` by construction.

Determinism: the NAE is always computed in chunks of exactly ``nae_batch`` images (the last chunk is
padded), so an image's NAE does not depend on how many images were encrypted with it; with the
attack's per-image loss and fixed Adam arithmetic, CPU results are bit-identical across processes and
thread counts (see tests/schemes/test_paper_determinism.py).

Scrambling (models with ``"scramble": true``): the encoder's output is permuted, element by element, by a
secret per-image permutation derived from (key, nonce) before it is mixed with the NAE, and un-permuted after
un-mixing. Recovery is unchanged (the decoder sees exactly what it sees without scrambling, up to the same
rounding noise), but the image content carried by the ciphertext is no longer spatially aligned with the
image, which is what the known-plaintext U-Net of ``docs/security.md`` exploits.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ric.classifiers import Classifier, fingerprint, load_classifier, rgb_input
from ric.codec import encrypt_pixels, make_codec, recover
from ric.codec.refine import Refinement
from ric.container import Ciphertext, SchemeFields, check_field
from ric.errors import CiphertextError, InputError, quote
from ric.imageio import read_image, to_pixels, to_tensor
from ric.keys import SecretKey, new_nonce, random_noise_images, scramble_permutations
from ric.nae import make_attack
from ric.preprocess import Preprocess
from ric.schemes.base import EncryptResult, Scheme, SchemeOptions, channel_view, register_scheme, retry_loop
from ric.zoo import bundles


@dataclass
class Trace:
    """What :meth:`RIC.encrypt_traced` made: final ciphertext pixels ``c`` (N×C×H×W in [0,1]), NAEs ``z``,
    scrambling permutations ``perm`` (or None), ``nonces``, the classifier's labels of ``c``, the labels of the
    first attempt (``first_labels``) and whether they hit (``first``), attempts per image, failed images."""

    nonces: list
    c: torch.Tensor | None = None
    z: torch.Tensor | None = None
    perm: torch.Tensor | None = None
    labels: torch.Tensor | None = None
    first_labels: torch.Tensor | None = None
    first: torch.Tensor | None = None
    attempts: list = field(default_factory=list)
    failed: list = field(default_factory=list)

    def store(self, idx: torch.Tensor, c: torch.Tensor, z: torch.Tensor, perm, labels: torch.Tensor) -> None:
        if self.c is None:  # the first attempt covers every image
            self.c, self.z, self.perm, self.labels = c.clone(), z.clone(), perm, labels.clone()
            self.first_labels = labels.clone()
            return
        self.c[idx], self.z[idx], self.labels[idx] = c, z, labels
        if perm is not None:
            self.perm[idx] = perm


class RIC:
    """A trained RIC model: codec + frozen classifier + NAE attack + α."""

    def __init__(self, codec: torch.nn.Module, classifier: Classifier, alpha: float = 0.8, attack: dict | None = None,
                 nae_batch: int = 8, model_id: str = "custom", max_retries: int = 3, batch_size: int = 64,
                 device: str | torch.device = "cpu", scramble: bool = False, refine: dict | bool | None = None):
        if not 0 <= alpha < 1:
            raise InputError(f"alpha must be in [0, 1), got {alpha} (0 means no SRL)")
        self.device = torch.device(device)
        self.codec = codec.to(self.device).eval().requires_grad_(False)
        self.classifier = classifier.to(self.device).eval().requires_grad_(False)
        self.alpha = float(alpha)
        self.attack = make_attack(attack)
        self._fingerprint = ""
        self.nae_batch = int(nae_batch)
        self.model_id = model_id
        self.max_retries = int(max_retries)
        self.batch_size = int(batch_size)
        self.scramble = bool(scramble)
        # encoder-side refinement of the integer ciphertext (ric.codec.refine); decryption does not depend on it
        self.refinement = Refinement(**(refine if isinstance(refine, dict) else {})) if refine else None
        self.config: dict = {}

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(cls, name_or_path: str | Path = bundles.DEFAULT_MODEL, device: str | torch.device = "cpu",
             classifier: str | None = None, classifier_config=None, **overrides) -> RIC:
        """Load a RIC model bundle (shipped name or folder) with the classifier it names, or with another
        classifier (``classifier`` spec, see :func:`ric.classifiers.load_classifier`): the codec is fully
        convolutional and the NAE is computed for whichever classifier is used. Encryption refines its ciphertexts
        (:mod:`ric.codec.refine`, default settings) unless ``refine=False``; decryption does not depend on it."""
        folder = bundles.resolve(name_or_path, kind="ric")
        cfg = bundles.read_config(folder)
        own = classifier is None
        classifier = load_classifier(classifier or cfg["classifier"], device, classifier_config)
        want = cfg.get("classifier_sha256")
        if own and want and classifier.weights_sha256 and want != classifier.weights_sha256:
            raise InputError(f"model {cfg['name']} was trained with classifier weights {want[:12]}…, "
                             f"but {cfg['classifier']} has {classifier.weights_sha256[:12]}…")
        if classifier.input_shape[0] == 1 and cfg.get("image_channels", 3) == 3:
            classifier = rgb_input(classifier)  # grey policy: grey images are replicated to RGB
        codec = make_codec(cfg["codec"])
        codec.load_state_dict(bundles.load_codec_weights(folder, cfg))
        kw = {"alpha": cfg["alpha"], "attack": cfg["attack"], "nae_batch": cfg["nae_batch"], "model_id": cfg["name"],
              "scramble": bool(cfg.get("scramble", False)),
              "refine": cfg.get("refine", True)}  # encoder-side refinement: on unless the bundle says otherwise
        kw.update(overrides)
        ric = cls(codec, classifier, device=device, **kw)
        ric.config = cfg
        return ric

    def with_codec_of(self, other: str | Path) -> RIC:
        """This model with the codec (and α and scrambling, which belong to the codec) of bundle ``other``; same
        classifier and NAE settings. For studies (Table 3: codecs across data sets)."""
        folder = bundles.resolve(other, kind="ric")
        cfg = bundles.read_config(folder)
        codec = make_codec(cfg["codec"])
        codec.load_state_dict(bundles.load_codec_weights(folder, cfg))
        out = RIC(codec, self.classifier, alpha=cfg["alpha"], attack=self.attack.config(), nae_batch=self.nae_batch,
                  model_id=self.model_id, max_retries=self.max_retries, batch_size=self.batch_size,
                  device=self.device, scramble=bool(cfg.get("scramble", False)))
        out.config = {**self.config, "codec_from": str(other), "codec_sha256": bundles.codec_sha256(cfg),
                      "scramble": out.scramble}
        return out

    @property
    def fingerprint(self) -> str:
        """16 hex digits of SHA-256 over what decryption regenerates from (codec weights, α, attack settings,
        NAE chunk size, scrambling), stored in every ciphertext: a file encrypted by another version of a model
        is refused with a clear error instead of decrypting to noise."""
        if not self._fingerprint:
            settings = {"alpha": self.alpha, "attack": self.attack.config(), "nae_batch": self.nae_batch,
                        "scramble": self.scramble, "codec": fingerprint(self.codec)}
            self._fingerprint = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
        return self._fingerprint

    def check_ciphertext(self, ct: Ciphertext) -> None:
        """Raise :class:`CiphertextError` unless ``ct`` was made by this model (name, settings, classifier)."""
        if ct.model != self.model_id:
            raise CiphertextError(f"ciphertext was made with model {quote(ct.model)}, not {self.model_id!r}")
        if ct.model_fp and ct.model_fp != self.fingerprint:
            raise CiphertextError(f"ciphertext was made by another version of model {ct.model!r} (settings "
                                  f"fingerprint {ct.model_fp}, this one is {self.fingerprint}): its noise "
                                  "cannot be regenerated; decrypt it with the model files that encrypted it")
        if ct.classifier != self.classifier.ident:
            raise CiphertextError(f"ciphertext was encrypted for classifier {quote(ct.classifier)}, this model uses "
                                  f"{self.classifier.ident} (pass the same --classifier as for encryption)")

    @property
    def input_shape(self) -> tuple:
        return self.classifier.input_shape

    @property
    def plaintext_channels(self) -> int:
        """Channels of the plaintext files (1 for grey models: replicated to RGB inside, grey on output)."""
        return int(self.config.get("plaintext_channels", self.input_shape[0]))

    # ------------------------------------------------------------------ pieces
    def _batches(self, n: int):
        for i in range(0, n, self.batch_size):
            yield slice(i, min(n, i + self.batch_size))

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Classifier labels for images in [0,1] (this is all the cloud does)."""
        return self.classifier.predict(x.to(self.device), self.batch_size).cpu()

    def nae(self, key: SecretKey, nonces: list[bytes], targets: torch.Tensor, shape: tuple) -> torch.Tensor:
        """Regenerate the NAEs for (key, nonce, target)."""
        return self.nae_from_rni(random_noise_images(key, nonces, shape), targets)

    def nae_from_rni(self, z0: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Run the attack on RNIs in chunks of exactly ``nae_batch`` rows (the last one padded); a row's
        result does not depend on the other rows of its chunk."""
        out = []
        b = self.nae_batch
        for i in range(0, len(z0), b):
            zc, tc = z0[i:i + b], targets[i:i + b]
            k = len(zc)
            if k < b:  # pad so every chunk has the same shape (results do not depend on the padding rows)
                zc = torch.cat([zc, zc[-1:].expand(b - k, *zc.shape[1:])])
                tc = torch.cat([tc, tc[-1:].expand(b - k)])
            out.append(self.attack(self.classifier, zc.to(self.device), tc.to(self.device))[:k].cpu())
        return torch.cat(out) if out else torch.empty(0, *z0.shape[1:])

    def perms(self, key: SecretKey, nonces: list[bytes], shape: tuple) -> torch.Tensor | None:
        """The secret scrambling permutations for (key, nonce) (``None`` for models without scrambling)."""
        if not self.scramble:
            return None
        c, h, w = shape
        return scramble_permutations(key, nonces, c * h * w)

    def _need_perm(self, perm) -> None:
        if self.scramble and perm is None:
            raise InputError(f"model {self.model_id} scrambles: pass perm=ric.perms(key, nonces, shape)")

    def encode_with(self, x: torch.Tensor, z: torch.Tensor, perm: torch.Tensor | None = None) -> torch.Tensor:
        """Ciphertext pixels in [0,1] given plaintexts and NAEs (and, for scrambling models, the permutations
        from :meth:`perms`); no key handling, no label check: for studies."""
        self._need_perm(perm)
        return torch.cat([self._encode(x[sl], z[sl], None if perm is None else perm[sl])
                          for sl in self._batches(len(x))]) if len(x) else x.clone()

    def decode_with(self, c: torch.Tensor, z: torch.Tensor, perm: torch.Tensor | None = None) -> torch.Tensor:
        """Recovery given ciphertext pixels in [0,1] and NAEs (and permutations); no key handling: for studies."""
        self._need_perm(perm)
        return torch.cat([self._decode(c[sl], z[sl], None if perm is None else perm[sl])
                          for sl in self._batches(len(c))]) if len(c) else c.clone()

    def _codec(self, fn, *tensors: torch.Tensor) -> torch.Tensor:
        """``fn`` one image at a time. CPU kernels can round a row differently depending on where it sits in a
        batch (seen: the last row of a batch of 8 in the SVHN decoder, off by 1 ulp), which would make recovered
        PNGs depend on how images were batched; one image per pass makes them depend only on the image."""
        n = len(tensors[0])
        if n == 0:
            return tensors[0].clone()
        return torch.cat([fn(*[t[i:i + 1].to(self.device) for t in tensors]).cpu() for i in range(n)])

    def _encode(self, x: torch.Tensor, z: torch.Tensor, perm: torch.Tensor | None = None) -> torch.Tensor:
        if perm is None:
            return self._codec(self._encode_rows, x, z)
        return self._codec(self._encode_rows, x, z, perm)

    def _decode(self, c: torch.Tensor, z: torch.Tensor, perm: torch.Tensor | None = None) -> torch.Tensor:
        if perm is None:
            return self._codec(self._decode_rows, c, z)
        return self._codec(self._decode_rows, c, z, perm)

    @torch.no_grad()
    def _encode_rows(self, x: torch.Tensor, z: torch.Tensor, perm: torch.Tensor | None = None) -> torch.Tensor:
        return encrypt_pixels(self.codec, x.to(self.device), z.to(self.device), self.alpha,
                              None if perm is None else perm.to(self.device))

    @torch.no_grad()
    def _decode_rows(self, c: torch.Tensor, z: torch.Tensor, perm: torch.Tensor | None = None) -> torch.Tensor:
        return recover(self.codec, c.to(self.device), z.to(self.device), self.alpha,
                       None if perm is None else perm.to(self.device)).clamp(0, 1)

    def refine(self, x: torch.Tensor, c: torch.Tensor, z: torch.Tensor, t: torch.Tensor,
               perm: torch.Tensor | None = None) -> torch.Tensor:
        """Encoder-side refinement (:class:`ric.codec.refine.Refinement`) of ciphertext pixels ``c``, in batches."""
        out = []
        for sl in self._batches(len(c)):
            args = [a[sl].to(self.device) for a in (x, c, z, t)]
            p = None if perm is None else perm[sl].to(self.device)
            out.append(self.refinement(self.codec, self.classifier, *args, self.alpha, p).cpu())
        return torch.cat(out) if out else c

    # ------------------------------------------------------------------ public API
    def check_shape(self, shape) -> None:
        """The paper scheme takes exactly the classifier's input size (it recovers what it encrypts)."""
        self.classifier.check_input(shape, strict=True)

    def encrypt(self, x: torch.Tensor, key: SecretKey, progress=None) -> list[EncryptResult]:
        """Encrypt images (N×C×H×W in [0,1]). Every ciphertext is checked: C(c) must equal t = C(x);
        a failure is retried with a fresh nonce up to ``max_retries`` times and reported if it persists."""
        if x.ndim != 4:
            raise InputError("expected a batch of images N×C×H×W")
        self.check_shape(tuple(x.shape[1:]))
        results: list[EncryptResult] = []
        for sl in self._batches(len(x)):
            xb = x[sl]
            t = self.predict(xb)
            tr = self.encrypt_traced(xb, t, key)
            for i in range(len(xb)):
                ct = None
                if i not in tr.failed:
                    px = to_pixels(tr.c[i])
                    ct = Ciphertext(px, self.model_id, tr.nonces[i], int(t[i]), key.key_id,
                                    classifier=self.classifier.ident, model_fp=self.fingerprint).sign(key)
                err = "" if ct else (f"classifier does not label the ciphertext as {int(t[i])} "
                                     f"after {tr.attempts[i]} attempts")
                results.append(EncryptResult(ct, int(t[i]), tr.attempts[i], err))
            if progress:
                progress(len(xb))
        return results

    def encrypt_traced(self, x: torch.Tensor, t: torch.Tensor, key: SecretKey, nonces: list[bytes] | None = None,
                       z: torch.Tensor | None = None, c: torch.Tensor | None = None,
                       perm: torch.Tensor | None = None, max_retries: int | None = None) -> Trace:
        """Ciphertext pixels of ``x`` for targets ``t``, with the scheme's retries (a fresh nonce for every
        mislabelled ciphertext), and everything decryption regenerates: the :class:`Trace`. ``nonces`` / ``z`` /
        ``c`` + ``perm``: the first attempt's, when a study already computed them (timed separately)."""
        shape = tuple(x.shape[1:])
        tr = Trace(nonces=list(nonces) if nonces is not None else [new_nonce() for _ in range(len(x))])
        given = {"z": z, "c": c, "perm": perm}

        def attempt(pending: list[int]) -> list[int]:
            idx = torch.tensor(pending)
            if tr.c is not None:  # a retry: fresh nonces, fresh noise
                for i in pending:
                    tr.nonces[i] = new_nonce()
            nn_ = [tr.nonces[i] for i in pending]
            zb = given.pop("z", None)
            zb = self.nae(key, nn_, t[idx], shape) if zb is None else zb
            cb, pb = given.pop("c", None), given.pop("perm", None)
            if cb is None:
                pb = self.perms(key, nn_, shape)
                cb = self._encode(x[idx], zb, pb)
            if self.refinement is not None:
                cb = self.refine(x[idx], cb, zb, t[idx], pb)
            lab = self.predict(cb)
            tr.store(idx, cb, zb, pb, lab)
            return [i for j, i in enumerate(pending) if lab[j] != t[i]]

        retries = self.max_retries if max_retries is None else max_retries
        tr.attempts, tr.failed = retry_loop(list(range(len(x))), attempt, retries)
        tr.first = tr.first_labels == t
        return tr

    def decrypt(self, cts: list[Ciphertext], key: SecretKey, verify: bool = True, progress=None) -> torch.Tensor:
        """Recover plaintexts (N×C×H×W in [0,1]) from ciphertexts of one shape.

        With ``verify`` (the default) every tag is checked first and nothing is decrypted if any fails.
        ``verify=False`` is for experiments only (brute-force studies with wrong keys)."""
        if not cts:
            return torch.empty(0)
        for ct in cts:
            self.check_ciphertext(ct)
            if ct.pixels.shape != cts[0].pixels.shape:
                raise InputError("decrypt() takes ciphertexts of one shape per call")
            if verify:
                ct.verify(key)
        shape = (cts[0].pixels.shape[2], *cts[0].pixels.shape[:2])
        self.check_shape(shape)
        out = []
        for sl in self._batches(len(cts)):
            part = cts[sl]
            c = to_tensor(np.stack([ct.pixels for ct in part]))
            t = torch.tensor([ct.target for ct in part])
            if int(t.max()) >= self.classifier.num_classes:
                raise CiphertextError("ciphertext target label is out of range for this classifier")
            nonces = [ct.nonce for ct in part]
            z = self.nae(key, nonces, t, shape)
            out.append(self._decode(c, z, self.perms(key, nonces, shape)))
            if progress:
                progress(len(part))
        return torch.cat(out)


RESIZE_HINT = ("; the paper scheme recovers only what it encrypts: pass --resize to encrypt a resized copy, or use "
               "--scheme exact (any size, bit-exact, when the classifier declares its preprocessing)")


@register_scheme("paper")
class PaperScheme(Scheme):
    """``model``: a RIC model bundle (name or folder); the other arguments go to :meth:`ric.schemes.paper.RIC.load`."""

    fields = SchemeFields(required=frozenset({"model", "classifier", "nonce", "target", "key-id", "tag"}),
                          optional=frozenset({"model-fp", "plain-mac", "scheme", "name-id"}))
    implicit = True  # files written before ric:scheme existed are paper-scheme files
    owns = {"model": "-m/--model", "resize": "--resize", "ric": "ric="}
    declines = {"bits": "the paper scheme has no digit split",
                "transcode": "the paper scheme seals pixels at the model's input size, not files",
                "robust_set": "the paper scheme has no robustness set"}
    implied_by = ("model", "ric")

    def __init__(self, ric, resize: bool = False):
        self.ric = ric
        self.model = ric.model_id
        self.resize = bool(resize)

    @classmethod
    def load(cls, model: str, resize: bool = False, **kw) -> PaperScheme:
        return cls(RIC.load(model, **kw), resize=resize)

    @classmethod
    def from_options(cls, opts: SchemeOptions) -> PaperScheme:
        if opts.ric is not None:
            return cls(opts.ric, resize=opts.resize)
        return cls.load(opts.model or bundles.DEFAULT_MODEL, resize=opts.resize, device=opts.device,
                        max_retries=opts.max_retries, batch_size=opts.batch_size, classifier=opts.classifier,
                        classifier_config=opts.classifier_config, refine=opts.refine)

    @classmethod
    def decrypter_key(cls, ct, opts: SchemeOptions) -> str:
        """The model that decrypts ``ct``: the caller's (``ric`` or ``model``), else the shipped model the file names
        (metadata may only select shipped bundles)."""
        if opts.ric is not None:
            return "<given>"
        return str(opts.model) if opts.model else str(bundles.resolve_shipped(ct.model, "ric"))

    @classmethod
    def batch_key(cls, ct) -> tuple:
        return tuple(ct.pixels.shape)

    @classmethod
    def for_decryption(cls, decrypter_key: str, opts: SchemeOptions) -> PaperScheme:
        if opts.ric is not None:
            return cls(opts.ric)
        return cls.load(decrypter_key, device=opts.device, batch_size=opts.batch_size, classifier=opts.classifier,
                        classifier_config=opts.classifier_config)

    @classmethod
    def demo_options(cls, model: str | None = None) -> SchemeOptions:
        return SchemeOptions(model=model)

    def demo_checks(self, cts: list, plain, wrong_key) -> dict:
        """The noise a wrong key gives (tag check off): what an attacker would see."""
        from ric.eval.metrics import psnr

        return {"wrong_key_psnr_db": float(psnr(self.ric.decrypt(cts, wrong_key, verify=False), plain).mean())}

    def read_plain(self, path, convert: str = "strict") -> np.ndarray:
        """The image in the model's channels, at the model's input size unless ``resize``."""
        size = None if self.resize else self.ric.input_shape[1:]
        return read_image(path, self.channels, convert, size=size, hint=RESIZE_HINT)

    def check_encryptable(self) -> None:
        check_field("model", self.ric.model_id, InputError)
        super().check_encryptable()

    def check_decryptable(self, ct) -> None:
        self.check_ciphertext(ct)
        if ct.target >= self.classifier.num_classes:
            raise CiphertextError(f"ciphertext target label {ct.target} is out of range for classifier "
                                  f"{self.classifier.name}")

    @property
    def classifier(self):
        return self.ric.classifier

    @property
    def channels(self) -> int:
        return int(self.ric.plaintext_channels)

    def _public(self) -> dict:
        return {"model": self.model, "resize": self.resize, "fingerprint": self.ric.fingerprint}

    def check_shape(self, shape: tuple[int, int, int]) -> None:
        """``shape`` is (H, W, C) of a plaintext; the model takes only its classifier's input size unless
        ``resize``."""
        c, h, w = self.ric.input_shape
        if self.resize:
            Preprocess("resize", (h, w)).check(shape[0], shape[1])
        elif (h, w) != tuple(shape[:2]):
            raise InputError(f"model {self.model} takes {h}x{w} images, got {shape[0]}x{shape[1]}: the paper "
                             "scheme recovers only what it encrypts; pass --resize to encrypt a resized copy "
                             "(recovery then returns the resized image), or use --scheme exact (full size, "
                             "bit-exact)")

    def check_ciphertext(self, ct) -> None:
        if ct.scheme_name != self.name:
            raise CiphertextError(f"not a paper-scheme ciphertext (scheme {ct.scheme_name})")
        self.ric.check_ciphertext(ct)

    def _tensor(self, a: np.ndarray) -> torch.Tensor:
        c, h, w = self.ric.input_shape
        x = to_tensor(channel_view(a, c))
        if tuple(x.shape[-2:]) != (h, w):
            pre = getattr(self.ric.classifier, "preprocess", None) or Preprocess("resize", (h, w))
            x = torch.round(pre(x).clamp(0, 1) * 255) / 255  # the resized copy is an 8-bit image too
        return x

    def encrypt(self, images: list[np.ndarray], key, progress=None) -> list[EncryptResult]:
        for a in images:
            self.check_shape(a.shape)
        if not images:
            return []
        x = torch.cat([self._tensor(a) for a in images])
        return self.ric.encrypt(x, key, progress)

    def decrypt(self, cts: list, key, verify: bool = True) -> list[np.ndarray]:
        """Recover a list of ciphertexts of one shape (batched: the noise is regenerated in chunks)."""
        if not cts:
            return []
        xh = self.ric.decrypt(cts, key, verify=verify)
        if self.channels == 1 and xh.shape[1] == 3:
            xh = xh.mean(1, keepdim=True)
        return list(to_pixels(xh))
