"""``LockAll``: several locks taken together, all or none (``Locker.lock_all``)."""

from __future__ import annotations

import threading
from types import TracebackType
from typing import TYPE_CHECKING, Any, List, Optional, Sequence, Tuple, Type

from . import _lockhog
from ._errors import LockhogError, NotAcquired

if TYPE_CHECKING:
    from ._lock import Locker

__all__ = ["LockAll"]


def resolve_wait(
    blocking: Optional[bool],
    timeout: Optional[float],
    default_blocking: bool,
    default_timeout: Optional[float],
) -> Tuple[bool, Optional[float]]:
    """``acquire``'s arguments, those left out taken from the object's; ``timeout=-1`` is
    ``threading.Lock``'s "wait forever"."""
    if blocking is None:
        blocking = default_blocking
    if timeout is None:
        timeout = default_timeout
    elif timeout == -1:
        timeout = None
    return blocking, timeout


def _release_all(guards: Sequence[_lockhog.NativeGuard]) -> bool:
    ours, failed = True, None
    for guard in reversed(guards):
        try:
            ours = guard.release() and ours
        except LockhogError as e:
            failed = failed or e
    if failed is not None:
        raise failed
    return ours


async def _release_all_async(guards: Sequence[_lockhog.NativeGuard]) -> bool:
    ours, failed = True, None
    for guard in reversed(guards):
        try:
            ours = await guard.release_async() and ours
        except LockhogError as e:
            failed = failed or e
    if failed is not None:
        raise failed
    return ours


class LockAll:
    """Several locks of a ``Locker`` taken together (``Locker.lock_all``): ``acquire()``
    holds every one of them or none, within one ``timeout`` for the whole set, and
    ``release()`` gives them back last taken first. Use it with ``with`` / ``async with`` or
    ``acquire()`` / ``release()``, as a ``Lock``; it is not reentrant either.
    """

    def __init__(
        self,
        locker: Locker,
        names: List[Any],
        resources: List[str],
        *,
        blocking: bool = True,
        timeout: Optional[float] = None,
        ttl: Optional[float] = None,
    ) -> None:
        self._locker = locker
        self._names = names
        self._resources = resources
        self._blocking = blocking
        self._timeout = timeout
        self._ttl = ttl
        # Sets taken through this object, newest last, each in the order it was taken.
        self._held: List[List[_lockhog.NativeGuard]] = []
        self._mutex = threading.Lock()

    def _push(self, guards: List[_lockhog.NativeGuard]) -> None:
        with self._mutex:
            self._held.append(guards)

    def _pop(self) -> List[_lockhog.NativeGuard]:
        with self._mutex:
            if not self._held:
                raise RuntimeError("release of locks that are not held")
            return self._held.pop()

    def _current(self) -> List[_lockhog.NativeGuard]:
        with self._mutex:
            if not self._held:
                raise RuntimeError("the locks are not held")
            return self._held[-1]

    def _take(self, blocking: Optional[bool] = None, timeout: Optional[float] = None) -> None:
        blocking, timeout = resolve_wait(blocking, timeout, self._blocking, self._timeout)
        native = self._locker._native
        self._push(native.acquire_all(self._names, self._resources, blocking, timeout, self._ttl))

    async def _take_async(
        self, blocking: Optional[bool] = None, timeout: Optional[float] = None
    ) -> None:
        blocking, timeout = resolve_wait(blocking, timeout, self._blocking, self._timeout)
        native = self._locker._native
        guards = await native.acquire_all_async(
            self._names, self._resources, blocking, timeout, self._ttl
        )
        self._push(guards)

    def acquire(self, blocking: Optional[bool] = None, timeout: Optional[float] = None) -> bool:
        """Takes every lock: ``True`` once all are held, ``False`` (none held) when one is
        held elsewhere and ``blocking`` is false or ``timeout`` seconds passed for the set
        (``-1``: wait forever). Waits with the GIL released; Ctrl-C interrupts it with
        ``KeyboardInterrupt`` and nothing stays held. Raises ``InvalidName`` (also for no
        names at all), ``InvalidOption``, ``BackendError``."""
        try:
            self._take(blocking, timeout)
        except NotAcquired:
            return False
        return True

    async def acquire_async(
        self, blocking: Optional[bool] = None, timeout: Optional[float] = None
    ) -> bool:
        """``acquire`` for asyncio: waits without blocking the event loop. Cancelling the
        task cancels the wait, and gives back the locks taken so far."""
        try:
            await self._take_async(blocking, timeout)
        except NotAcquired:
            return False
        return True

    def release(self) -> bool:
        """Releases every lock, last taken first: ``True`` when all were still ours. Every
        lock is released even when one release fails; the first failure is then raised."""
        return _release_all(self._pop())

    async def release_async(self) -> bool:
        """``release`` without blocking the event loop."""
        return await _release_all_async(self._pop())

    @property
    def held(self) -> bool:
        """True while this object holds the set."""
        with self._mutex:
            return bool(self._held)

    @property
    def names(self) -> List[str]:
        """The held locks' names, in the order they were taken (that of their resources)."""
        return [g.name for g in self._current()]

    @property
    def resources(self) -> List[str]:
        """The backend's own names for the held locks, in the order they were taken."""
        return [g.resource for g in self._current()]

    @property
    def fencing_tokens(self) -> List[Optional[int]]:
        """The held locks' fencing tokens, in the order they were taken."""
        return [g.fencing_token for g in self._current()]

    @property
    def lost(self) -> bool:
        """True once the backend reported any of the held locks lost."""
        return any(g.lost is not None for g in self._current())

    def __enter__(self) -> LockAll:
        self._take()
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.release()

    async def __aenter__(self) -> LockAll:
        await self._take_async()
        return self

    async def __aexit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        await self.release_async()

    def __repr__(self) -> str:
        state = "held" if self.held else "not held"
        return f"<lockhog.LockAll {self._names!r} on {self._locker.url!r}, {state}>"
