"""``contend``: the deterministic race. n calls start together; the call that wins the lock
holds it (``Contender.hold_until_others_done``) until every other call has returned, so
"n requests at once" has exactly one winner every time, without sleeps."""

from __future__ import annotations

import threading
import time
from typing import Callable, Dict, List, Optional, TypeVar

from ._errors import ContendCallFailed, ContendTimedOut

__all__ = ["Contender", "contend"]

T = TypeVar("T")


class _Race:
    def __init__(self, n: int, timeout: float) -> None:
        self.n = n
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout
        self.changed = threading.Condition()
        self.arrived = 0  # calls past the start line
        self.settled = 0  # calls that returned or are holding, each counted once
        self.returned = [False] * n
        self.gave_up: Optional[List[int]] = None  # calls still running when a holder gave up

    def left(self) -> float:
        return max(self.deadline - time.monotonic(), 0.0)


class Contender:
    """What each call of ``contend`` gets: its ``index`` and the means for the winner to
    hold."""

    def __init__(self, index: int, race: _Race) -> None:
        self._race = race
        self._held = False
        #: This call's index, 0 to n - 1: its place in the returned list.
        self.index = index

    @property
    def n(self) -> int:
        """How many calls run."""
        return self._race.n

    def hold_until_others_done(self) -> bool:
        """Called by the call that acquired: blocks until every other call has returned (or
        is holding too, which means the lock let two in: both go on, and the results show
        it). ``False`` when the timeout ran out first; ``contend`` then raises
        ``ContendTimedOut``."""
        race = self._race
        with race.changed:
            if self._held:
                return True
            self._held = True
            race.settled += 1
            race.changed.notify_all()
            while race.settled < race.n:
                if not race.left():
                    if race.gave_up is None:
                        race.gave_up = [
                            i for i in range(race.n) if i != self.index and not race.returned[i]
                        ]
                    return False
                race.changed.wait(race.left())
            return True

    def _settle(self) -> None:
        race = self._race
        with race.changed:
            if not self._held:
                race.settled += 1
            race.returned[self.index] = True
            race.changed.notify_all()


def contend(n: int, fn: Callable[[Contender], T], *, timeout: float = 10.0) -> List[T]:
    """Runs ``fn(contender)`` n times at once, on n threads that start together, and returns
    the results in index order.

    Each call tries the lock once (or waits with a bound), through a connection of its own
    if it likes. The call that acquires calls ``contender.hold_until_others_done()`` before
    releasing: every other call then finds the lock held, so the race has one winner every
    time::

        def pay(c: Contender) -> str:
            if PAY_LOCK.acquire(blocking=False):
                try:
                    c.hold_until_others_done()
                    return "paid"
                finally:
                    PAY_LOCK.release()
            return "already paying"

        assert sorted(contend(8, pay)) == ["already paying"] * 7 + ["paid"]

    Raises ``ContendTimedOut`` when not every call returned within ``timeout`` seconds,
    ``ContendCallFailed`` when a call raised (its exception is the cause), ``ValueError``
    for ``n < 1``."""
    if n < 1:
        raise ValueError(f"contend needs at least one call, not {n}")
    race = _Race(n, timeout)
    results: Dict[int, T] = {}
    failures: Dict[int, BaseException] = {}
    done = threading.Semaphore(0)

    def one(index: int) -> None:
        with race.changed:
            # The start line: everyone arrives, then everyone goes.
            race.arrived += 1
            race.changed.notify_all()
            while race.arrived < n:
                race.changed.wait()
        contender = Contender(index, race)
        try:
            results[index] = fn(contender)
        except BaseException as e:  # handed to the caller
            failures[index] = e
        finally:
            contender._settle()
            done.release()

    for index in range(n):
        threading.Thread(target=one, args=(index,), name=f"lockhog-contend-{index}", daemon=True).start()
    for _ in range(n):
        if not done.acquire(timeout=race.left()):
            with race.changed:
                pending = [i for i in range(n) if not race.returned[i]]
            raise ContendTimedOut(
                f"{len(pending)} of {n} calls had not returned within {timeout}s: {pending}",
                timeout=timeout,
                pending=pending,
            )
    if failures:
        index = min(failures)
        raise ContendCallFailed(f"call {index} of {n} raised {failures[index]!r}", index=index) from failures[index]
    with race.changed:
        gave_up = race.gave_up
    if gave_up is not None:
        raise ContendTimedOut(
            f"the holder gave up at the timeout of {timeout}s; calls still running: {gave_up}",
            timeout=timeout,
            pending=gave_up,
        )
    return [results[i] for i in range(n)]
