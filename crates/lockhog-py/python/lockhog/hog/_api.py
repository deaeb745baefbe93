"""``hog_lock`` and ``HogFrom``: a lock held from another thread or process for the length
of a ``with`` block or a decorated call."""

from __future__ import annotations

import enum
import functools
import inspect
from types import TracebackType
from typing import Any, Callable, List, Optional, Type, TypeVar, Union, cast

from ._hoggers import adapt, file_lock
from ._process import ProcessHog
from ._thread import ThreadHog

__all__ = ["HogFrom", "Hog", "hog_lock"]

F = TypeVar("F", bound=Callable[..., Any])


class HogFrom(enum.Enum):
    """Where the hogger runs."""

    #: A thread of this process: for locks any other thread is kept out of (``threading``
    #: locks, database sessions, lockhog locks, ``flock`` files).
    THREAD = "thread"
    #: A child process: for locks only another process can block (``fcntl.lockf`` record
    #: locks, which a process never conflicts with itself on). Hogs lockhog locks through
    #: ``python -m lockhog hold`` and file paths through a small Python child.
    PROCESS = "process"


class Hog:
    """One lock to hog, and its holds: ``with`` holds it for the block (giving the hold),
    ``@`` around a function for each call; ``start()`` / ``release()`` by hand.

    A hold from a process has ``pid``, ``abandon()`` (kill it without a release, as a crash
    would) and, for a lockhog lock, ``resource`` and ``fencing_token``.
    """

    def __init__(
        self, lock: object, from_: HogFrom, acquire_timeout: float, release_timeout: float
    ) -> None:
        self._lock = lock
        self._from = from_
        self._acquire_timeout = acquire_timeout
        self._release_timeout = release_timeout
        self._holds: List[Union[ThreadHog, ProcessHog]] = []

    def _new_hold(self) -> Union[ThreadHog, ProcessHog]:
        timeouts = (self._acquire_timeout, self._release_timeout)
        if self._from is HogFrom.THREAD:
            return ThreadHog(adapt(self._lock, self._acquire_timeout), *timeouts)
        found = file_lock(self._lock)
        if found is not None:
            return ProcessHog.for_file(found, *timeouts)
        hold_command = getattr(self._lock, "_hold_command", None)
        if callable(hold_command):
            args, env = hold_command(self._acquire_timeout)
            return ProcessHog.for_hold(args, env, *timeouts)
        raise TypeError(
            f"HogFrom.PROCESS hogs lockhog locks and file paths, not {self._lock!r}: hog it "
            "from a thread, or with a LockHogger that starts a process of its own"
        )

    def start(self) -> Hog:
        """Hogs the lock; returns once it is held."""
        hold = self._new_hold()
        hold.start()
        self._holds.append(hold)
        return self

    def release(self) -> None:
        """Releases the newest hold."""
        self._holds.pop().release()

    def _process(self) -> ProcessHog:
        if not self._holds or not isinstance(self._holds[-1], ProcessHog):
            raise RuntimeError("only a hold from HogFrom.PROCESS has a process")
        return self._holds[-1]

    @property
    def pid(self) -> int:
        """The process id of the newest hold's child."""
        return self._process().pid

    @property
    def resource(self) -> str:
        """The backend's name for a lockhog lock held from a process."""
        return self._process().held[1]

    @property
    def fencing_token(self) -> int:
        """The fencing token of a lockhog lock held from a process."""
        return int(self._process().held[2])

    def abandon(self) -> None:
        """Kills the newest hold's child without a release, as a crash would."""
        self._process().abandon()
        self._holds.pop()

    def __enter__(self) -> Hog:
        return self.start()

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.release()

    def __call__(self, func: F) -> F:
        """Decorates ``func`` (a function or a coroutine function) to run with the lock
        hogged, released after each call even when it raises."""
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                with self:
                    return await func(*args, **kwargs)

            return cast(F, run_async)

        @functools.wraps(func)
        def run(*args: Any, **kwargs: Any) -> Any:
            with self:
                return func(*args, **kwargs)

        return cast(F, run)


def hog_lock(
    lock: object,
    *,
    from_: HogFrom = HogFrom.THREAD,
    acquire_timeout: float = 10.0,
    release_timeout: float = 1.0,
) -> Hog:
    """Hogs ``lock`` from another thread (or process: ``from_=HogFrom.PROCESS``) while a
    ``with hog_lock(lock):`` block runs, or around each call of a function it decorates.

    ``lock`` is a ``LockHogger``, any context manager, an object with ``acquire()`` /
    ``release()`` (``threading.Lock``, ``RLock``, ``Semaphore``, ``multiprocessing.Lock``),
    a lockhog lock (``locker.lock(name)``, taken through a twin, so that object stays free),
    a file path or ``FileLock`` (``fcntl`` locks), or a function returning a context manager
    (called on the hog's thread, as a database transaction must be).

    Entering returns only once the lock is held. Raises ``HogAcquireFailed`` at once when the
    hogger raises, ``HogAcquireTimedOut`` when it has not acquired within
    ``acquire_timeout`` seconds (never hangs), ``HoggerStillAlive`` when the release does not
    finish within ``release_timeout`` seconds, and ``HogReleaseFailed``."""
    return Hog(lock, from_, acquire_timeout, release_timeout)
