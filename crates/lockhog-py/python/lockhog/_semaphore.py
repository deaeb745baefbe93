"""``Semaphore``: one permit of a counting semaphore, used like a ``Lock``."""

from __future__ import annotations

from typing import Optional, cast

from ._lock import Lock, Locker, Name

__all__ = ["Semaphore"]


class Semaphore(Lock):
    """One permit of a counting semaphore (``Locker.semaphore``): a ``Lock`` whose
    ``acquire`` takes any free permit of ``permits``, so that at most ``permits`` holders
    hold one at once. ``resource`` names the permit held (``<name>#permit-<i>``)."""

    def __init__(
        self,
        locker: Locker,
        name: Name,
        permits: int,
        *,
        blocking: bool = True,
        timeout: Optional[float] = None,
        ttl: Optional[float] = None,
    ) -> None:
        super().__init__(locker, name, blocking=blocking, timeout=timeout, ttl=ttl)
        self._permits = permits

    @property
    def permits(self) -> int:
        """The semaphore's count of permits."""
        return cast(int, self._permits)

    def __repr__(self) -> str:
        with self._mutex:
            held = len(self._held)
        return (
            f"<lockhog.Semaphore {self.name!r} ({self.permits} permits) on "
            f"{self._locker.url!r}, {held} held>"
        )
