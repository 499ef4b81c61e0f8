"""RIC: recoverable privacy-preserving image classification through noise-like adversarial examples.

Python API (each CLI verb has a counterpart here)::

    import ric
    key = ric.keygen("secret.key")                   # ric keygen
    ric.encrypt_files(["img.png"], "ct/", key)        # ric encrypt
    ric.classify_files(["ct/img.png"])                # ric classify (no key)
    ric.decrypt_files(["ct/img.png"], "rec/", key)    # ric decrypt
    ric.list_models(); ric.available()               # ric models / ric datasets
    ric.train_from_recipe("codec", "svhn-ric-v3", out="m/", run="r/")  # ric train
    ric.demo()                                        # ric demo
    model = ric.RIC.load("svhn-ric-v3")               # tensors in, tensors out

Attributes are imported lazily so that ``import ric`` stays fast.
"""

from importlib import import_module

__version__ = "0.1.0"

_LAZY = {
    "RIC": "ric.schemes.paper", "EncryptResult": "ric.schemes.paper",
    "SecretKey": "ric.keys", "random_noise_image": "ric.keys",
    "Ciphertext": "ric.container", "read_ciphertext": "ric.container",
    "load_classifier": "ric.classifiers", "Classifier": "ric.classifiers",
    "load_dataset": "ric.datasets", "available": "ric.datasets", "folder_dataset": "ric.datasets",
    "train_from_recipe": "ric.training.recipes",
    "psnr": "ric.eval.metrics", "ssim": "ric.eval.metrics",
    "keygen": "ric.api", "load_key": "ric.api", "encrypt_files": "ric.api", "classify_files": "ric.api",
    "decrypt_files": "ric.api", "list_models": "ric.api", "demo": "ric.api",
    "RICError": "ric.errors",
}


def __getattr__(name):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ric' has no attribute {name!r}")


__all__ = sorted(_LAZY)
