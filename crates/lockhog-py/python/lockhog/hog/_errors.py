"""What can go wrong while hogging a lock, and while racing calls with ``contend``.

Every error names the limit or the step that failed, so a failing test says which knob to
look at. The hogger's own exception, when there is one, is the ``__cause__``.
"""

from __future__ import annotations

from typing import Sequence

from .._errors import LockhogError

__all__ = [
    "HogError",
    "HogAcquireFailed",
    "HogAcquireTimedOut",
    "HogReleaseFailed",
    "HoggerStillAlive",
    "ContendError",
    "ContendTimedOut",
    "ContendCallFailed",
]


class HogError(LockhogError):
    """The base of every error of the hog toolkit."""


class HogAcquireFailed(HogError):
    """The hogger raised (its exception is ``__cause__``), returned ``False``, or its process
    exited, instead of acquiring the lock."""


class HogAcquireTimedOut(HogError):
    """The hogger had not acquired the lock within ``acquire_timeout`` seconds (``timeout``).
    If it acquires it later, it releases it at once."""

    def __init__(self, timeout: float, detail: str = "") -> None:
        super().__init__(
            f"the hogger did not acquire the lock within the acquire timeout of {timeout}s "
            f"(if it acquires it later, it releases it at once){detail}"
        )
        self.timeout = timeout


class HogReleaseFailed(HogError):
    """The hogger raised while releasing the lock (its exception is ``__cause__``), or its
    process reported a failure."""


class HoggerStillAlive(HogError):
    """The hogger had not finished releasing within ``release_timeout`` seconds
    (``timeout``): the lock may still be held (a process hog has been killed). lock-hog's
    name for it."""

    def __init__(self, timeout: float) -> None:
        super().__init__(
            f"the hogger did not finish releasing the lock within the release timeout of "
            f"{timeout}s: the lock may still be held (a hog process is killed)"
        )
        self.timeout = timeout


class ContendError(HogError):
    """The base of what ``contend`` raises."""


class ContendTimedOut(ContendError):
    """Not every call of ``contend`` returned within its timeout; ``pending`` are the
    indexes of those still running."""

    def __init__(self, message: str, *, timeout: float, pending: Sequence[int]) -> None:
        super().__init__(message)
        self.timeout = timeout
        self.pending = list(pending)


class ContendCallFailed(ContendError):
    """A call of ``contend`` raised; ``index`` is its place, its exception ``__cause__``."""

    def __init__(self, message: str, *, index: int) -> None:
        super().__init__(message)
        self.index = index
