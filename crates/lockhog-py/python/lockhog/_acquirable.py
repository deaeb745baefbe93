"""``Acquirable``: what ``Lock`` and ``LockAll`` share: the guards held through one object,
``acquire``/``acquire_async`` returning ``True``/``False``, and ``with``/``async with``."""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Any, Generic, List, Optional, Tuple, Type, TypeVar

from ._errors import NotAcquired

__all__ = ["Acquirable"]

#: What one acquire holds: a guard, or a set of them.
T = TypeVar("T")
#: An ``Acquirable`` subclass: what entering it returns.
A = TypeVar("A", bound="Acquirable[Any]")


class Acquirable(Generic[T]):
    """A lock-like object: subclasses take (``_take``, ``_take_async``, raising
    ``NotAcquired`` when not acquired) and give back (``release``, ``release_async``)."""

    #: What messages call it.
    _what = "lock"

    def __init__(self, blocking: bool, timeout: Optional[float]) -> None:
        # How acquire() and entering wait, unless acquire() is told otherwise.
        self._blocking = blocking
        self._timeout = timeout
        # What was taken through this object, newest last (several when shared, or when
        # several threads hold permits of one semaphore).
        self._held: List[T] = []
        self._mutex = threading.Lock()

    def _wait(
        self, blocking: Optional[bool], timeout: Optional[float]
    ) -> Tuple[bool, Optional[float]]:
        """``acquire``'s arguments, those left out taken from the object's; ``timeout=-1`` is
        ``threading.Lock``'s "wait forever"."""
        if blocking is None:
            blocking = self._blocking
        if timeout is None:
            timeout = self._timeout
        elif timeout == -1:
            timeout = None
        return blocking, timeout

    def _push(self, held: T) -> None:
        with self._mutex:
            self._held.append(held)

    def _pop(self) -> T:
        with self._mutex:
            if not self._held:
                raise RuntimeError(f"release of a {self._what} that is not held")
            return self._held.pop()

    def _current(self) -> T:
        with self._mutex:
            if not self._held:
                raise RuntimeError(f"the {self._what} is not held")
            return self._held[-1]

    @property
    def held(self) -> bool:
        """True while this object holds it."""
        with self._mutex:
            return bool(self._held)

    def _take(self, blocking: Optional[bool] = None, timeout: Optional[float] = None) -> None:
        raise NotImplementedError

    async def _take_async(
        self, blocking: Optional[bool] = None, timeout: Optional[float] = None
    ) -> None:
        raise NotImplementedError

    def release(self) -> bool:
        """Gives it back; ``True`` when it was still ours."""
        raise NotImplementedError

    async def release_async(self) -> bool:
        """``release`` without blocking the event loop."""
        raise NotImplementedError

    def acquire(self, blocking: Optional[bool] = None, timeout: Optional[float] = None) -> bool:
        """Takes it: ``True`` once held, ``False`` when someone else holds it (for a
        ``LockAll``, any lock of the set, and then none is held) and ``blocking`` is false
        or ``timeout`` seconds passed (``-1``: wait forever). Arguments left out take the
        values it was made with.

        Waits with the GIL released; Ctrl-C interrupts it with ``KeyboardInterrupt`` and
        nothing stays held. Raises ``InvalidName``, ``InvalidOption``, ``BackendError``.
        """
        try:
            self._take(blocking, timeout)
        except NotAcquired:
            return False
        return True

    async def acquire_async(
        self, blocking: Optional[bool] = None, timeout: Optional[float] = None
    ) -> bool:
        """``acquire`` for asyncio: waits without blocking the event loop. Cancelling the
        task cancels the wait, and nothing stays held."""
        try:
            await self._take_async(blocking, timeout)
        except NotAcquired:
            return False
        return True

    def __enter__(self: A) -> A:
        self._take()
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.release()

    async def __aenter__(self: A) -> A:
        await self._take_async()
        return self

    async def __aexit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        await self.release_async()
