"""``Locker.lock_all``: all or none, one timeout for the set, ``with`` and ``async with``,
Ctrl-C leaving nothing held, overlapping sets in opposite orders never deadlocking."""

from __future__ import annotations

import asyncio
import threading
from typing import List

import pytest

import lockhog
from conftest import BOUND, interrupt_main_once_waiting


def test_all_or_none_when_one_is_held_elsewhere(any_url: str, name: str) -> None:
    mine, theirs = lockhog.Locker(any_url), lockhog.Locker(any_url)
    names = [f"{name}-a", f"{name}-b", f"{name}-c"]
    held = theirs.lock(names[1])
    assert held.acquire(blocking=False)

    both = mine.lock_all(names)
    assert not both.acquire(blocking=False)
    assert not both.held
    assert not mine.lock_all(names).acquire(timeout=0.05)
    with pytest.raises(lockhog.TimedOut):
        with mine.lock_all(names, timeout=0.05):
            pytest.fail("entered with one lock held elsewhere")
    # None of the others stayed held.
    for free in (names[0], names[2]):
        probe = theirs.lock(free)
        assert probe.acquire(blocking=False), f"{free} was left held"
        assert probe.release()

    assert held.release()
    with mine.lock_all(names, timeout=BOUND) as all_three:
        assert sorted(all_three.names) == sorted(names)
        assert len(set(all_three.resources)) == 3
        assert all(t is not None for t in all_three.fencing_tokens)
        assert not all_three.lost
        for n in names:
            assert not theirs.lock(n).acquire(blocking=False)
    for n in names:
        probe = theirs.lock(n)
        assert probe.acquire(blocking=False), f"{n} was not released"
        assert probe.release()


def test_a_waiter_gets_the_set_when_it_frees(file_url: str, name: str) -> None:
    mine, theirs = lockhog.Locker(file_url), lockhog.Locker(file_url)
    held = theirs.lock(f"{name}-y")
    assert held.acquire()
    got: List[bool] = []
    waiter = threading.Thread(
        target=lambda: got.append(mine.lock_all([f"{name}-x", f"{name}-y"]).acquire(timeout=BOUND))
    )
    waiter.start()
    assert held.release()
    waiter.join(BOUND)
    assert got == [True]


def test_overlapping_sets_in_opposite_orders_never_deadlock(file_url: str, name: str) -> None:
    names = [f"{name}-{i}" for i in range(3)]
    errors: List[BaseException] = []

    def worker(order: List[str]) -> None:
        locker = lockhog.Locker(file_url)
        try:
            for _ in range(10):
                with locker.lock_all(order, timeout=BOUND):
                    pass
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [
        threading.Thread(target=worker, args=(order,))
        for order in (names, list(reversed(names)), names[1:], [names[2], names[0]])
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(BOUND)
        assert not t.is_alive(), "deadlocked"
    assert errors == []


def test_asyncio_all_or_none_and_cancel(name: str) -> None:
    locker = lockhog.Locker("mem:")
    names = [f"{name}-1", f"{name}-2"]

    async def main() -> None:
        held = locker.lock(names[0])
        assert await held.acquire_async()
        assert not await locker.lock_all(names).acquire_async(blocking=False)
        # A wait cancelled half-way gives back what it took.
        waiter = asyncio.ensure_future(locker.lock_all(names).acquire_async())
        await asyncio.sleep(0)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert await held.release_async()
        async with locker.lock_all(names, timeout=BOUND) as both:
            assert sorted(both.names) == names

    asyncio.run(main())
    for n in names:
        probe = locker.lock(n)
        assert probe.acquire(blocking=False), f"{n} stayed held"
        assert probe.release()


@pytest.mark.usefixtures("sigint_default")
def test_ctrl_c_interrupts_a_wait_and_leaves_nothing_held(file_url: str, name: str) -> None:
    locker = lockhog.Locker(file_url)
    names = [f"{name}-a", f"{name}-b"]
    # Hold the later of the two in lock_all's order, so the earlier one is taken first.
    held = locker.lock(max(names, key=locker.resource))
    assert held.acquire()

    t = interrupt_main_once_waiting()
    waiter = locker.lock_all(names)
    with pytest.raises(KeyboardInterrupt):
        waiter.acquire(timeout=BOUND)
    t.join(BOUND)
    assert not waiter.held
    first = locker.lock(min(names, key=locker.resource))
    assert first.acquire(blocking=False), "the interrupted wait kept the lock it had taken"
    assert first.release() and held.release()


def test_bad_input(name: str) -> None:
    locker = lockhog.Locker("mem:")
    with pytest.raises(TypeError):
        locker.lock_all(name)
    with pytest.raises(lockhog.InvalidName):
        locker.lock_all([]).acquire()
    with pytest.raises(RuntimeError):
        locker.lock_all([name]).release()
    # Hashed keys name their locks as lock() does.
    with locker.lock_all([("invoice", 42)]) as one:
        assert one.names == [lockhog.hashed_name(("invoice", 42))]
