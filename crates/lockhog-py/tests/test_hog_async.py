"""``async_hog_lock`` and ``AsyncLockHogger``: asyncio locks hogged from a task on the
running loop, with the same bounded waits as the threaded hog."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, AsyncIterator, Awaitable, Callable

import pytest

import lockhog
from conftest import BOUND
from lockhog.hog import (
    AsyncLockHogger,
    HogAcquireFailed,
    HogAcquireTimedOut,
    HoggerStillAlive,
    async_hog_lock,
)


def run(main: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(asyncio.wait_for(main(), BOUND))


def test_asyncio_lock_and_semaphore_are_held_by_another_task() -> None:
    async def main() -> None:
        for lock in (asyncio.Lock(), asyncio.Semaphore(1)):
            async with async_hog_lock(lock):
                assert lock.locked()
            assert not lock.locked()

    run(main)


def test_async_context_manager_and_decorator() -> None:
    lock = None

    @contextlib.asynccontextmanager
    async def session() -> AsyncIterator[None]:
        assert lock is not None
        async with lock:
            yield

    async def main() -> None:
        nonlocal lock
        lock = asyncio.Lock()

        @async_hog_lock(session())
        async def body() -> bool:
            assert lock is not None
            return lock.locked()

        assert await body() is True
        assert not lock.locked()

    run(main)


def test_lockhog_lock_on_the_loop(mem: lockhog.Locker, name: str) -> None:
    async def main() -> None:
        lock = mem.lock(name)
        async with async_hog_lock(lock):
            assert not lock.held
            assert await lock.acquire_async(blocking=False) is False
        assert await lock.acquire_async(blocking=False)
        await lock.release_async()

    run(main)


def test_a_body_that_raises_still_releases() -> None:
    async def main() -> None:
        lock = asyncio.Lock()
        with pytest.raises(ZeroDivisionError):
            async with async_hog_lock(lock):
                1 / 0
        assert not lock.locked()

    run(main)


def test_misbehaving_async_hoggers_never_hang() -> None:
    class Raises(AsyncLockHogger):
        async def acquire_lock(self) -> None:
            raise ConnectionError("down")

    class Never(AsyncLockHogger):
        async def acquire_lock(self) -> None:
            await asyncio.Event().wait()

    class Stuck(AsyncLockHogger):
        async def acquire_lock(self) -> None:
            pass

        async def release_lock(self) -> None:
            await asyncio.Event().wait()

    async def main() -> None:
        with pytest.raises(HogAcquireFailed) as failed:
            await async_hog_lock(Raises()).start()
        assert isinstance(failed.value.__cause__, ConnectionError)
        with pytest.raises(HogAcquireTimedOut):
            await async_hog_lock(Never(), acquire_timeout=0.05).start()
        with pytest.raises(HoggerStillAlive):
            async with async_hog_lock(Stuck(), release_timeout=0.05):
                pass

    run(main)


def test_a_timed_out_acquire_is_called_off() -> None:
    async def main() -> None:
        lock = asyncio.Lock()
        await lock.acquire()
        with pytest.raises(HogAcquireTimedOut):
            await async_hog_lock(lock, acquire_timeout=0.05).start()
        lock.release()
        # The hog's waiter was called off: the lock goes to the next one, not to it.
        await asyncio.wait_for(lock.acquire(), BOUND)
        lock.release()

    run(main)
