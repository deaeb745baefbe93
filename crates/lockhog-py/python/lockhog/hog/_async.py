"""``async_hog_lock`` and ``AsyncLockHogger``: hogging asyncio locks from a task of their
own on the running loop, with the same bounded waits as the threaded hog."""

from __future__ import annotations

import asyncio
import functools
import inspect
from types import TracebackType
from typing import Any, Awaitable, Callable, Optional, Type, TypeVar, cast

from ._errors import (
    HogAcquireFailed,
    HogAcquireTimedOut,
    HogError,
    HoggerStillAlive,
    HogReleaseFailed,
)

__all__ = ["AsyncLockHogger", "AsyncHog", "async_hog_lock"]

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


class AsyncLockHogger:
    """How to take and give back an asyncio lock, for ``async_hog_lock`` (lock-hog's class):
    override the coroutines ``acquire_lock`` and ``release_lock``; both run in the hog's
    task. It is also an async context manager."""

    async def acquire_lock(self) -> None:
        """Takes the lock; returns once it is held, or raises."""
        raise NotImplementedError("AsyncLockHogger subclasses define acquire_lock")

    async def release_lock(self) -> None:
        """Gives the lock back."""
        raise NotImplementedError("AsyncLockHogger subclasses define release_lock")

    async def __aenter__(self) -> AsyncLockHogger:
        await self.acquire_lock()
        return self

    async def __aexit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        await self.release_lock()


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


def _steps(lock: Any, acquire_timeout: float) -> "tuple[Callable[[], Awaitable[None]], Callable[[], Awaitable[None]]]":
    """The acquire and release coroutines for ``lock``."""
    twin_of = getattr(lock, "_hog_twin", None)
    if callable(twin_of):
        twin = twin_of()

        async def take_twin() -> None:
            if not await twin.acquire_async(timeout=acquire_timeout):
                raise HogAcquireTimedOut(acquire_timeout)

        async def give_twin() -> None:
            await twin.release_async()

        return take_twin, give_twin
    if callable(getattr(lock, "acquire", None)) and callable(getattr(lock, "release", None)):

        async def take() -> None:
            if await _maybe_await(lock.acquire()) is False:
                raise HogAcquireFailed(f"{lock!r}.acquire() returned False")

        async def give() -> None:
            await _maybe_await(lock.release())

        return take, give
    if hasattr(lock, "__aenter__") and hasattr(lock, "__aexit__"):

        async def enter() -> None:
            await lock.__aenter__()

        async def leave() -> None:
            await lock.__aexit__(None, None, None)

        return enter, leave
    raise TypeError(
        f"cannot hog {lock!r} on the loop: give an AsyncLockHogger, an async context "
        "manager, an asyncio lock or semaphore, or a lockhog lock"
    )


class AsyncHog:
    """The async hog of one lock: ``async with`` holds it for the block, ``@`` around a
    coroutine function for each call; ``start()`` / ``release()`` by hand."""

    def __init__(self, lock: Any, acquire_timeout: float, release_timeout: float) -> None:
        self._lock = lock
        self._acquire_timeout = acquire_timeout
        self._release_timeout = release_timeout
        self._running: "list[tuple[asyncio.Task[None], asyncio.Event]]" = []

    async def _hold(
        self,
        take: Callable[[], Awaitable[None]],
        give: Callable[[], Awaitable[None]],
        held: "asyncio.Future[None]",
        release: asyncio.Event,
    ) -> None:
        try:
            await take()
        except asyncio.CancelledError:
            raise  # the caller gave up waiting, and knows
        except BaseException as e:  # handed to the caller
            held.set_exception(e)
            return
        held.set_result(None)
        try:
            await release.wait()
        finally:
            # Also when cancelled: a hold the caller gave up on is given back at once.
            await give()

    async def start(self) -> AsyncHog:
        """Hogs the lock; returns once it is held."""
        take, give = _steps(self._lock, self._acquire_timeout)
        held: "asyncio.Future[None]" = asyncio.get_running_loop().create_future()
        release = asyncio.Event()
        task = asyncio.ensure_future(self._hold(take, give, held, release))
        try:
            await asyncio.wait_for(asyncio.shield(held), self._acquire_timeout)
        except asyncio.TimeoutError:
            # Waiting on the loop can be called off: nothing stays held.
            task.cancel()
            raise HogAcquireTimedOut(self._acquire_timeout) from None
        except HogError:
            raise
        except Exception as e:
            raise HogAcquireFailed(f"the hogger failed to acquire the lock: {e!r}") from e
        self._running.append((task, release))
        return self

    async def release(self) -> None:
        """Releases the newest hold."""
        task, release = self._running.pop()
        release.set()
        try:
            await asyncio.wait_for(asyncio.shield(task), self._release_timeout)
        except asyncio.TimeoutError:
            task.cancel()
            raise HoggerStillAlive(self._release_timeout) from None
        except Exception as e:
            raise HogReleaseFailed(f"the hogger failed to release the lock: {e!r}") from e

    async def __aenter__(self) -> AsyncHog:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        await self.release()

    def __call__(self, func: F) -> F:
        """Decorates a coroutine function to run with the lock hogged."""

        @functools.wraps(func)
        async def run(*args: Any, **kwargs: Any) -> Any:
            async with self:
                return await func(*args, **kwargs)

        return cast(F, run)


def async_hog_lock(
    lock: Any, *, acquire_timeout: float = 10.0, release_timeout: float = 1.0
) -> AsyncHog:
    """Hogs ``lock`` from a task of its own on the running loop: ``async with
    async_hog_lock(lock):`` returns once the lock is held and releases it after the block,
    even when the block raises; also a decorator of coroutine functions.

    ``lock`` is an ``asyncio.Lock``/``Semaphore`` (anything whose ``acquire`` may be
    awaited), an ``AsyncLockHogger``, an async context manager, or a lockhog lock (taken
    without blocking the loop). Raises ``HogAcquireFailed`` or ``HogAcquireTimedOut`` at
    once instead of waiting forever, and ``HoggerStillAlive`` when the release does not
    finish within ``release_timeout`` seconds."""
    return AsyncHog(lock, acquire_timeout, release_timeout)
