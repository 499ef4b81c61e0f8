"""Exception hierarchy. Every error a user can provoke is a RICError with a one-line message."""


class RICError(Exception):
    """Base class: the CLI prints ``str(err)`` on one line and exits with ``exit_code``."""

    exit_code = 2


class InputError(RICError):
    """Bad input: unreadable or non-image file, wrong size or channels, missing file."""


class UnknownNameError(RICError):
    """Unknown model, classifier, dataset, attack or codec name."""


class KeyFileError(RICError):
    """Missing, unreadable or malformed key file."""


class CiphertextError(RICError):
    """A file that is not a well-formed RIC ciphertext (missing or malformed metadata, truncated)."""


class AuthenticationError(RICError):
    """The authentication tag does not verify: wrong key, or pixels/metadata were modified."""

    exit_code = 3


class EncryptionError(RICError):
    """Encryption could not produce a ciphertext that the classifier labels as the target."""

    exit_code = 1
