"""RIC: recoverable privacy-preserving image classification through noise-like adversarial examples.

The safe layer (each CLI verb has a counterpart here)::

    import ric
    key = ric.keygen("secret.key")                   # ric keygen
    ric.encrypt_files(["img.png"], "ct/", key)        # ric encrypt
    ric.classify_files(["ct/img.png"])                # ric classify (no key)
    ric.decrypt_files(["ct/img.png"], "rec/", key)    # ric decrypt
    ric.list_models(); ric.demo()                    # ric models / ric demo
    with ric.Cloud(url, token) as cloud: ...          # ric push / pull / classify --url

The schemes (``ric.ExactScheme``, ``ric.PaperScheme``, ``ric.load_scheme``) and every error class are here too.
Primitives and research stay in their subpackages: the paper's tensor model (``ric.schemes.paper.RIC``), the
container (``ric.container``), classifiers, datasets, training, metrics and attacks.

Attributes are imported lazily so that ``import ric`` stays fast.
"""

from importlib import import_module

__version__ = "0.1.0"

_ERRORS = ("RICError", "InputError", "UnknownNameError", "KeyFileError", "CiphertextError", "AuthenticationError",
           "CapacityError", "NotACiphertextError", "CloudError", "ClusterError", "StoreError", "ServiceError", "Busy",
           "RICWarning", "PlainHTTPWarning", "KeyPermissionWarning")

_LAZY = {
    **dict.fromkeys(("keygen", "load_key", "encrypt_files", "classify_files", "decrypt_files", "list_models",
                     "demo", "sample_images"), "ric.api"),
    "Cloud": "ric.client",
    "SecretKey": "ric.keys",
    **dict.fromkeys(("Scheme", "ExactScheme", "PaperScheme", "SCHEMES", "load_scheme"), "ric.schemes"),
    **dict.fromkeys(_ERRORS, "ric.errors"),
}


def __getattr__(name):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ric' has no attribute {name!r}")


__all__ = sorted(_LAZY)
