"""The exceptions lockhog raises.

``NotAcquired`` (``Contended``, ``TimedOut``) means someone else holds the lock: an ordinary
outcome, kept apart from mistakes by the caller (``InvalidName``, ``InvalidUrl``,
``InvalidOption``, all ``ValueError``) and from failures of the store (``BackendError``).
Every one is a ``LockhogError``. Messages never contain a password.
"""

from typing import Optional

__all__ = [
    "LockhogError",
    "NotAcquired",
    "Contended",
    "TimedOut",
    "BackendError",
    "InvalidName",
    "InvalidUrl",
    "InvalidOption",
]


class LockhogError(Exception):
    """The base of every exception lockhog raises."""


class NotAcquired(LockhogError):
    """The lock is held by someone else; ``name`` is the lock's name."""

    def __init__(self, message: str, *, name: str = "") -> None:
        super().__init__(message)
        self.name = name


class Contended(NotAcquired):
    """The lock was held by someone else and the caller asked not to wait."""


class TimedOut(NotAcquired):
    """The lock was still held by someone else when the wait ran out.

    ``waited`` is how long the caller waited, in seconds; ``attempts`` how many attempts were
    made on the store.
    """

    def __init__(
        self, message: str, *, name: str = "", waited: float = 0.0, attempts: int = 0
    ) -> None:
        super().__init__(message, name=name)
        self.waited = waited
        self.attempts = attempts


class BackendError(LockhogError):
    """The store could not be reached or refused the request; ``backend`` is its scheme."""

    def __init__(self, message: str, *, backend: str = "") -> None:
        super().__init__(message)
        self.backend = backend


class InvalidName(LockhogError, ValueError):
    """The lock name cannot be used (empty, or longer than 1024 bytes)."""


class InvalidUrl(LockhogError, ValueError):
    """The backend URL cannot be used; ``url`` is the URL with its password redacted."""

    def __init__(self, message: str, *, url: Optional[str] = None) -> None:
        super().__init__(message)
        self.url = url


class InvalidOption(LockhogError, ValueError):
    """An option (timeout, ttl, namespace, a URL query option) is out of range."""
