"""``LockAll``: several locks taken together, all or none (``Locker.lock_all``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, List, Optional, Sequence

from . import _lockhog
from ._acquirable import Acquirable
from ._errors import LockhogError

if TYPE_CHECKING:
    from ._lock import Locker

__all__ = ["LockAll"]


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


class LockAll(Acquirable[List[_lockhog.NativeGuard]]):
    """Several locks of a ``Locker`` taken together (``Locker.lock_all``): ``acquire()``
    holds every one of them or none, within one ``timeout`` for the whole set, and
    ``release()`` gives them back last taken first. Use it with ``with`` / ``async with`` or
    ``acquire()`` / ``release()``, as a ``Lock``; it is not reentrant either.
    """

    _what = "set of locks"

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
        super().__init__(blocking, timeout)
        self._locker = locker
        self._names = names
        self._resources = resources
        self._ttl = ttl

    def _take(self, blocking: Optional[bool] = None, timeout: Optional[float] = None) -> None:
        blocking, timeout = self._wait(blocking, timeout)
        native = self._locker._native
        self._push(native.acquire_all(self._names, self._resources, blocking, timeout, self._ttl))

    async def _take_async(
        self, blocking: Optional[bool] = None, timeout: Optional[float] = None
    ) -> None:
        blocking, timeout = self._wait(blocking, timeout)
        native = self._locker._native
        guards = await native.acquire_all_async(
            self._names, self._resources, blocking, timeout, self._ttl
        )
        self._push(guards)

    def release(self) -> bool:
        """Releases every lock, last taken first: ``True`` when all were still ours. Every
        lock is released even when one release fails; the first failure is then raised."""
        return _release_all(self._pop())

    async def release_async(self) -> bool:
        """``release`` without blocking the event loop."""
        return await _release_all_async(self._pop())

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

    def __repr__(self) -> str:
        state = "held" if self.held else "not held"
        return f"<lockhog.LockAll {self._names!r} on {self._locker.url!r}, {state}>"
