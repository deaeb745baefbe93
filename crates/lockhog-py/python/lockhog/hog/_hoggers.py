"""What a hog can hold, each reduced to ``acquire()`` / ``release()`` run on the hog's
thread: ``LockHogger`` subclasses and other context managers, objects with
``acquire()``/``release()`` (``threading`` and ``multiprocessing`` locks), lockhog locks,
file locks given as a path, and factories of context managers."""

from __future__ import annotations

import fcntl
import inspect
import os
from types import TracebackType
from typing import Any, Callable, ContextManager, Optional, Type, Union, cast

from .._lock import Lock
from ._errors import HogAcquireFailed, HogAcquireTimedOut

__all__ = ["LockHogger", "FileLock", "Hogger", "adapt", "file_lock"]


class LockHogger:
    """How to take and give back a lock, for ``hog_lock`` (lock-hog's class): override
    ``acquire_lock`` and ``release_lock``; both run on the hog's thread. It is also a
    context manager, so a subclass may override ``__enter__``/``__exit__`` instead."""

    def acquire_lock(self) -> None:
        """Takes the lock; returns once it is held, or raises."""
        raise NotImplementedError("LockHogger subclasses define acquire_lock")

    def release_lock(self) -> None:
        """Gives the lock back."""
        raise NotImplementedError("LockHogger subclasses define release_lock")

    def __enter__(self) -> LockHogger:
        self.acquire_lock()
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.release_lock()


class FileLock:
    """A POSIX file lock on ``path`` to hog: ``kind`` ``"lockf"`` (``fcntl.lockf``, record
    locks, owned by the process), ``"flock"`` (``fcntl.flock``, owned by the open file) or
    ``"both"`` (the default; on Linux the two kinds do not see each other). A plain path
    given to ``hog_lock`` means ``FileLock(path)``."""

    def __init__(self, path: Union[str, "os.PathLike[str]"], kind: str = "both") -> None:
        if kind not in ("lockf", "flock", "both"):
            raise ValueError(f"kind is 'lockf', 'flock' or 'both', not {kind!r}")
        self.path = os.fspath(path)
        self.kind = kind

    def __repr__(self) -> str:
        return f"FileLock({self.path!r}, kind={self.kind!r})"


def file_lock(lock: object) -> Optional[FileLock]:
    """``lock`` as a ``FileLock`` when it is one or a path, else None."""
    if isinstance(lock, FileLock):
        return lock
    if isinstance(lock, (str, os.PathLike)):
        return FileLock(lock)
    return None


class Hogger:
    """A lock reduced to the two calls a hog makes on its own thread."""

    def acquire(self) -> None:
        raise NotImplementedError

    def release(self) -> None:
        raise NotImplementedError


class _Manager(Hogger):
    """A context manager, or a factory of one called on the hog's thread (a database
    transaction must be opened and closed on the same thread)."""

    def __init__(self, make: Callable[[], ContextManager[Any]]) -> None:
        self._make = make
        self._entered: Optional[ContextManager[Any]] = None

    def acquire(self) -> None:
        manager = self._make()
        manager.__enter__()
        self._entered = manager

    def release(self) -> None:
        assert self._entered is not None
        self._entered.__exit__(None, None, None)


class _AcquireRelease(Hogger):
    def __init__(self, lock: Any) -> None:
        self._lock = lock

    def acquire(self) -> None:
        if self._lock.acquire() is False:
            raise HogAcquireFailed(f"{self._lock!r}.acquire() returned False")

    def release(self) -> None:
        self._lock.release()


class _Lockhog(Hogger):
    """A lockhog lock, taken through a twin of its own so the caller's object stays free."""

    def __init__(self, lock: Lock, acquire_timeout: float) -> None:
        self._twin = lock._hog_twin()
        self._timeout = acquire_timeout

    def acquire(self) -> None:
        if not self._twin.acquire(timeout=self._timeout):
            raise HogAcquireTimedOut(self._timeout)

    def release(self) -> None:
        self._twin.release()


class _File(Hogger):
    def __init__(self, lock: FileLock) -> None:
        self._lock = lock
        self._fd = -1

    def acquire(self) -> None:
        fd = os.open(self._lock.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if self._lock.kind in ("flock", "both"):
                fcntl.flock(fd, fcntl.LOCK_EX)
            if self._lock.kind in ("lockf", "both"):
                fcntl.lockf(fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def release(self) -> None:
        # Closing drops both kinds of lock this descriptor holds.
        os.close(self._fd)


def adapt(lock: object, acquire_timeout: float) -> Hogger:
    """The hogger for ``lock``; ``TypeError`` when it is nothing a thread can hog."""
    if callable(getattr(lock, "_hog_twin", None)):
        return _Lockhog(cast(Lock, lock), acquire_timeout)
    found = file_lock(lock)
    if found is not None:
        return _File(found)
    acquire = getattr(lock, "acquire", None)
    if inspect.iscoroutinefunction(acquire) or hasattr(lock, "__aenter__") and not hasattr(
        lock, "__enter__"
    ):
        raise TypeError(f"{lock!r} is an asyncio lock: hog it with async_hog_lock")
    if callable(acquire) and callable(getattr(lock, "release", None)):
        return _AcquireRelease(lock)
    if hasattr(lock, "__enter__") and hasattr(lock, "__exit__"):
        manager = cast(ContextManager[Any], lock)
        return _Manager(lambda: manager)
    if callable(lock):
        return _Manager(lock)
    raise TypeError(
        f"cannot hog {lock!r}: give a LockHogger, a context manager, an object with "
        "acquire()/release(), a lockhog lock, a file path, or a function returning a "
        "context manager"
    )
