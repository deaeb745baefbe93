"""Typical use of lockhog, checked by ``mypy --strict`` (test_typing.py); never run."""

from __future__ import annotations

import asyncio
from typing import List, Optional

import lockhog


def sync_use(url: Optional[str]) -> int:
    locker = lockhog.Locker(url, namespace="my-app")
    lock: lockhog.Lock = locker.lock(("invoice", 42), timeout=5.0, ttl=30.0)
    if lock.acquire(blocking=False):
        token: Optional[int] = lock.fencing_token
        still_ours: bool = lock.release()
        return token if still_ours and token is not None else -1
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


def semaphore_and_lock_all_use(locker: lockhog.Locker) -> List[Optional[int]]:
    sem: lockhog.Semaphore = locker.semaphore("encoders", 4, timeout=5.0)
    with sem as permit:
        where: str = permit.resource
        count: int = permit.permits
        del where, count
    both: lockhog.LockAll = locker.lock_all(["from", ("invoice", 42)], resources=["/run/a.pid"])
    if both.acquire(timeout=1.0):
        names: List[str] = both.names
        del names
        both.release()
    with locker.lock_all(["a", "b"], timeout=1.0) as held:
        return held.fencing_tokens


async def async_semaphore_use(locker: lockhog.Locker) -> bool:
    async with locker.semaphore("encoders", 4):
        pass
    async with locker.lock_all(["a", "b"]) as held:
        lost: bool = held.lost
    return lost


def resource_use(locker: lockhog.Locker) -> Optional[int]:
    pid_file: lockhog.Lock = locker.lock_resource("/run/app.pid", blocking=False, ttl=None)
    with pid_file as held:
        name: str = held.resource
        del name
    statuses: List[lockhog.LockStatus] = locker.status("job", resources=["/run/app.pid"])
    del statuses
    try:
        locker.lock_resource("relative.pid")
    except lockhog.InvalidOption as e:
        bad: ValueError = e
        del bad
    return pid_file.fencing_token


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
        token: Optional[int] = held.fencing_token
        del token
    with hog_lock(locker.lock_resource("advisory:42"), from_=HogFrom.PROCESS) as held:
        print(held.resource)
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
