"""Typical use of lockhog, checked by ``mypy --strict`` (test_typing.py); never run."""

from __future__ import annotations

import asyncio
from typing import List, Optional

import lockhog


def sync_use(url: Optional[str]) -> int:
    locker = lockhog.Locker(url, namespace="my-app")
    lock: lockhog.Lock = locker.lock(("invoice", 42), timeout=5.0, ttl=30.0)
    if lock.acquire(blocking=False):
        token: int = lock.fencing_token
        still_ours: bool = lock.release()
        return token if still_ours else -1
    with locker.lock("report") as held:
        reason: Optional[str] = held.wait_lost(timeout=0.0)
        lost: bool = held.lost
        del reason, lost
    statuses: List[lockhog.LockStatus] = locker.status("report")
    report: lockhog.CleanupReport = locker.cleanup()
    return len(statuses) + report.removed


@lockhog.Locker("mem:").lock("job", blocking=False)
def decorated(x: int) -> str:
    return str(x)


async def async_use() -> bool:
    locker = await lockhog.Locker.connect_async("mem:")
    async with locker.lock(b"raw-key") as held:
        print(held.resource)
    lock = locker.lock("x")
    got: bool = await lock.acquire_async(timeout=1.0)
    return got and await lock.release_async()


def errors() -> str:
    try:
        asyncio.run(async_use())
    except lockhog.TimedOut as e:
        return f"{e.name} {e.waited}"
    except lockhog.NotAcquired as e:
        return e.name
    except lockhog.InvalidUrl as e:
        return e.url or ""
    except lockhog.BackendError as e:
        return e.backend
    return decorated(1)


def compute(locker: lockhog.Locker) -> bytes:
    once = lockhog.ComputeOnce(locker, "redis://127.0.0.1:6379")

    @once.cached(ttl=60.0)
    def expensive(n: int) -> bytes:
        return b"x" * n

    return expensive(3) + lockhog.compute_once(locker, "redis://h", "k", 1.0, lambda: b"v")


def hog_use(locker: lockhog.Locker, path: str) -> List[str]:
    import threading

    from lockhog.hog import (
        Contender,
        FileLock,
        HogFrom,
        HoggerStillAlive,
        LockHogger,
        async_hog_lock,
        contend,
        hog_lock,
    )

    pay = threading.Lock()

    class PayHogger(LockHogger):
        def acquire_lock(self) -> None:
            pay.acquire()

        def release_lock(self) -> None:
            pay.release()

    with hog_lock(PayHogger(), acquire_timeout=1.0, release_timeout=0.5):
        pass
    with hog_lock(locker.lock("x"), from_=HogFrom.PROCESS) as held:
        token: int = held.fencing_token
        del token
    try:
        hog_lock(FileLock(path, "lockf"), from_=HogFrom.PROCESS).start().release()
    except HoggerStillAlive as e:
        print(e.timeout)

    @hog_lock(pay)
    def body(n: int) -> str:
        return str(n)

    async def on_loop() -> None:
        async with async_hog_lock(asyncio.Lock()):
            pass

    asyncio.run(on_loop())

    def attempt(c: Contender) -> str:
        return f"{c.index}/{c.n}" if c.hold_until_others_done() else body(1)

    return contend(4, attempt, timeout=5.0)
