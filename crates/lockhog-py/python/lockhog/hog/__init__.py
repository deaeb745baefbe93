"""The hog toolkit: hold a lock from another thread, task or process while a test checks
that the code under test fails fast (or waits) because the lock is taken; and ``contend``,
the race with exactly one winner every time. The names follow lock-hog, the Python test
tool this grew from; unlike it, nothing here waits forever.

    from lockhog.hog import hog_lock, HogFrom, contend

    with hog_lock(PAY_LOCK):                        # a threading.Lock, held by another thread
        with pytest.raises(AlreadyPaying):
            pay_individual()

    @hog_lock(PAY_LOCK)                             # the decorator form
    def test_refuses() -> None: ...

    with hog_lock(locker.lock("payroll"), from_=HogFrom.PROCESS):   # python -m lockhog hold
        ...

    with hog_lock("/run/app.lock", from_=HogFrom.PROCESS):          # fcntl.lockf/flock
        ...

    async with async_hog_lock(asyncio_lock):        # asyncio, on the running loop
        ...

    results = contend(16, attempt)                  # one winner, held until the rest return

The pytest plugin (``lockhog.pytest_plugin``, loaded by pytest on its own) adds the fixtures
``hog`` and ``locker``.
"""

from ._api import Hog, HogFrom, hog_lock
from ._async import AsyncHog, AsyncLockHogger, async_hog_lock
from ._contend import Contender, contend
from ._errors import (
    ContendCallFailed,
    ContendError,
    ContendTimedOut,
    HogAcquireFailed,
    HogAcquireTimedOut,
    HogError,
    HoggerStillAlive,
    HogReleaseFailed,
)
from ._hoggers import FileLock, LockHogger

__all__ = [
    "hog_lock",
    "HogFrom",
    "Hog",
    "LockHogger",
    "FileLock",
    "async_hog_lock",
    "AsyncLockHogger",
    "AsyncHog",
    "contend",
    "Contender",
    "HogError",
    "HogAcquireFailed",
    "HogAcquireTimedOut",
    "HogReleaseFailed",
    "HoggerStillAlive",
    "ContendError",
    "ContendTimedOut",
    "ContendCallFailed",
]
