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


class CloudError(RICError):
    """The service refused a request, could not be reached, or sent an answer that the client refuses (too large,
    malformed, inconsistent). ``status`` is the HTTP status (0: no usable answer)."""

    def __init__(self, message: str, status: int = 0, code: str = ""):
        super().__init__(message)
        self.status, self.code = status, code


class ClusterError(RICError):
    """The Ray job could not finish: a worker or node died, or the cluster could not be reached."""


class StoreError(InputError):
    """A request the service's store refuses; ``status`` is the HTTP status the service answers with."""

    def __init__(self, message: str, status: int = 400, code: str = "bad_request"):
        super().__init__(message)
        self.status = status
        self.code = code


class ServiceError(Exception):
    """An HTTP error answer of the service (``status``, machine-readable ``code``, one-line ``message``)."""

    def __init__(self, status: int, code: str, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


class Busy(Exception):
    """The service's pixel budget is spent (HTTP 503): retry shortly."""


class RICWarning(UserWarning):
    """Something the user should know that does not stop the job; the CLI prints it on one line."""


class PlainHTTPWarning(RICWarning):
    """The bearer token goes over plain ``http://`` to a host that is not this machine."""


class KeyPermissionWarning(RICWarning):
    """A key file that group or others may read or write."""
