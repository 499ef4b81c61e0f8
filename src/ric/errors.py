"""Exception hierarchy. Every error a user can provoke is a RICError with a one-line message."""


def quote(s: str, n: int = 80) -> str:
    """An untrusted string for a message: ``repr`` (no terminal escapes), cut to about ``n`` characters."""
    s = str(s)
    return repr(s if len(s) <= n else s[:n] + "...")


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


class CapacityError(RICError):
    """An image does not fit the capacity of its ciphertext (exact scheme): nothing is written for it."""

    exit_code = 1



class NotACiphertextError(CiphertextError):
    """A readable file without RIC metadata (a plain image)."""


class RICWarning(UserWarning):
    """Something the user should know that does not stop the job; the CLI prints it on one line."""


class KeyPermissionWarning(RICWarning):
    """A key file that group or others may read or write."""
