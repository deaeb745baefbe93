"""A hog on a thread of its own: it acquires there, waits to be told, and releases there
(a ``threading.RLock`` or a database transaction must be released by the thread that took
it). The caller's waits are bounded; the hog's thread is a daemon, so a hogger stuck for
good never keeps the interpreter from exiting."""

from __future__ import annotations

import threading
from typing import Optional

from ._errors import (
    HogAcquireFailed,
    HogAcquireTimedOut,
    HogError,
    HoggerStillAlive,
    HogReleaseFailed,
)
from ._hoggers import Hogger

__all__ = ["ThreadHog"]


class ThreadHog:
    """One hold of ``hogger`` on a new thread: ``start()`` returns once it is held."""

    def __init__(self, hogger: Hogger, acquire_timeout: float, release_timeout: float) -> None:
        self._hogger = hogger
        self._acquire_timeout = acquire_timeout
        self._release_timeout = release_timeout
        self._state = threading.Lock()
        self._acquired = threading.Event()  # set once acquire() returned or raised
        self._release = threading.Event()
        self._released = threading.Event()
        self._acquire_error: Optional[BaseException] = None
        self._release_error: Optional[BaseException] = None

    def _run(self) -> None:
        try:
            self._hogger.acquire()
        except BaseException as e:  # handed to the caller
            with self._state:
                self._acquire_error = e
                self._acquired.set()
            return
        with self._state:
            self._acquired.set()
        # Set by release(), or already by start() when the caller gave up waiting: then the
        # late acquire is given back at once.
        self._release.wait()
        try:
            self._hogger.release()
        except BaseException as e:  # handed to the caller
            self._release_error = e
        finally:
            self._released.set()

    def start(self) -> None:
        threading.Thread(target=self._run, name="lockhog-hog", daemon=True).start()
        self._acquired.wait(self._acquire_timeout)
        with self._state:
            if not self._acquired.is_set():
                self._release.set()
                raise HogAcquireTimedOut(self._acquire_timeout)
            error = self._acquire_error
        if isinstance(error, HogError):
            raise error
        if error is not None:
            raise HogAcquireFailed(f"the hogger failed to acquire the lock: {error!r}") from error

    def release(self) -> None:
        self._release.set()
        if not self._released.wait(self._release_timeout):
            raise HoggerStillAlive(self._release_timeout)
        if self._release_error is not None:
            raise HogReleaseFailed(
                f"the hogger failed to release the lock: {self._release_error!r}"
            ) from self._release_error
