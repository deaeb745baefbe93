"""``Locker.semaphore``: at most N holders across threads, tasks and lockers; the count kept
in the store; try, timeout, ``with``, asyncio and Ctrl-C as with ``Locker.lock``."""

from __future__ import annotations

import asyncio
import threading
from typing import List

import pytest

import lockhog
from lockhog.hog import HogFrom, hog_lock
from conftest import BOUND, interrupt_main_once_waiting

PERMITS = 3


def has_semaphores(locker: lockhog.Locker, name: str) -> bool:
    """False when the backend has none, after checking that it refuses them."""
    if locker.capabilities()["semaphore"]:
        return True
    with pytest.raises(lockhog.InvalidOption):
        locker.semaphore(name, 2).acquire(blocking=False)
    return False


def test_at_most_n_holders_across_threads(any_url: str, name: str) -> None:
    locker = lockhog.Locker(any_url)
    if not has_semaphores(locker, name):
        return
    # N threads hold a permit at once: each waits at the barrier while holding.
    together = threading.Barrier(PERMITS + 1)
    sem = locker.semaphore(name, PERMITS, timeout=BOUND)  # one object for every thread
    release = threading.Event()
    errors: List[BaseException] = []

    def holder() -> None:
        try:
            with sem:
                together.wait(BOUND)
                release.wait(BOUND)
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=holder) for _ in range(PERMITS)]
    for t in threads:
        t.start()
    together.wait(BOUND)
    # Every permit is out: one more, from another locker too, is turned away.
    other = lockhog.Locker(any_url)
    assert not other.semaphore(name, PERMITS).acquire(blocking=False)
    assert not locker.semaphore(name, PERMITS).acquire(blocking=False)
    release.set()
    for t in threads:
        t.join(BOUND)
        assert not t.is_alive()
    assert errors == []

    # Under contention, never more than N inside.
    inside, most = 0, 0
    count = threading.Lock()

    def worker(s: lockhog.Semaphore) -> None:
        nonlocal inside, most
        try:
            for _ in range(4):
                with s:
                    with count:
                        inside += 1
                        most = max(most, inside)
                    with count:
                        inside -= 1
        except BaseException as e:  # reported below
            errors.append(e)

    lockers = [locker, other]
    workers = [
        threading.Thread(target=worker, args=(lockers[i % 2].semaphore(name, PERMITS, timeout=BOUND),))
        for i in range(8)
    ]
    for t in workers:
        t.start()
    for t in workers:
        t.join(BOUND)
        assert not t.is_alive(), "a worker did not finish"
    assert errors == []
    assert 1 <= most <= PERMITS


def test_permits_are_distinct_and_the_count_is_kept(file_url: str, name: str) -> None:
    a, b = lockhog.Locker(file_url), lockhog.Locker(file_url)
    assert a.capabilities()["semaphore"]
    first, second = a.semaphore(name, 2), b.semaphore(name, 2)
    assert first.acquire(blocking=False) and second.acquire(blocking=False)
    assert first.resource != second.resource
    assert first.resource.endswith(("#permit-0.lock", "#permit-1.lock", "%23permit-0.lock", "%23permit-1.lock"))
    assert first.permits == 2 and isinstance(first, lockhog.Lock)
    for other in (1, 3):
        with pytest.raises(lockhog.InvalidOption, match="2 permits"):
            b.semaphore(name, other).acquire(blocking=False)
    with pytest.raises(lockhog.InvalidOption):
        a.semaphore(name + "-zero", 0).acquire()
    # Full: a try fails, a bounded wait times out, entering raises.
    assert not a.semaphore(name, 2).acquire(timeout=0.05)
    with pytest.raises(lockhog.TimedOut):
        with a.semaphore(name, 2, timeout=0.05):
            pytest.fail("entered a full semaphore")
    with pytest.raises(lockhog.Contended):
        with a.semaphore(name, 2, blocking=False):
            pytest.fail("entered a full semaphore")
    token = first.fencing_token
    assert first.release()
    third = b.semaphore(name, 2)
    assert third.acquire(blocking=False)
    assert third.fencing_token is not None and token is not None and third.fencing_token > token
    assert third.release() and second.release()


def test_asyncio_tasks_share_the_permits(name: str) -> None:
    locker = lockhog.Locker("mem:")

    async def main() -> int:
        inside, most = 0, 0
        sem = locker.semaphore(name, 2)

        async def task() -> None:
            nonlocal inside, most
            for _ in range(3):
                async with sem:
                    inside += 1
                    most = max(most, inside)
                    await asyncio.sleep(0)  # let the others run while holding
                    inside -= 1

        await asyncio.wait_for(asyncio.gather(*(task() for _ in range(6))), BOUND)
        # Both out: a try fails without blocking the loop; a cancelled wait leaves nothing.
        a, b = locker.semaphore(name, 2), locker.semaphore(name, 2)
        assert await a.acquire_async() and await b.acquire_async()
        assert not await locker.semaphore(name, 2).acquire_async(blocking=False)
        waiter = asyncio.ensure_future(locker.semaphore(name, 2).acquire_async())
        await asyncio.sleep(0)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert await a.release_async() and await b.release_async()
        return most

    most = asyncio.run(main())
    assert 1 <= most <= 2
    probes = [locker.semaphore(name, 2) for _ in range(2)]
    assert all(p.acquire(blocking=False) for p in probes), "a cancelled wait kept a permit"


@pytest.mark.usefixtures("sigint_default")
def test_ctrl_c_interrupts_a_wait_and_leaves_nothing_held(file_url: str, name: str) -> None:
    locker = lockhog.Locker(file_url)
    holder = locker.semaphore(name, 1)
    assert holder.acquire()

    t = interrupt_main_once_waiting()
    waiter = locker.semaphore(name, 1)
    with pytest.raises(KeyboardInterrupt):
        waiter.acquire(timeout=BOUND)
    t.join(BOUND)
    assert not waiter.held
    assert holder.release()
    probe = locker.semaphore(name, 1)
    assert probe.acquire(blocking=False), "the interrupted wait kept the permit"
    assert probe.release()


@pytest.mark.parametrize("from_", [HogFrom.THREAD, HogFrom.PROCESS])
def test_a_hogged_semaphore_holds_one_permit(file_url: str, name: str, from_: HogFrom) -> None:
    locker = lockhog.Locker(file_url)
    with hog_lock(locker.semaphore(name, 2), from_=from_):
        one = locker.semaphore(name, 2)
        assert one.acquire(blocking=False), "the hog took more than one permit"
        assert not locker.semaphore(name, 2).acquire(blocking=False), "the hog took no permit"
        assert one.release()
    both = [locker.semaphore(name, 2) for _ in range(2)]
    assert all(s.acquire(blocking=False) for s in both), "the hog kept its permit"
