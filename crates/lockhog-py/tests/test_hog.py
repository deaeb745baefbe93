"""``lockhog.hog.hog_lock`` from a thread: every kind of lock, the decorator, and the ways a
hogger can misbehave (raise, never acquire, never finish releasing), none of which hangs."""

from __future__ import annotations

import contextlib
import multiprocessing
import threading
from typing import Any, Iterator

import pytest

import lockhog
from conftest import BOUND
from lockhog.hog import (
    HogAcquireFailed,
    HogAcquireTimedOut,
    HoggerStillAlive,
    HogReleaseFailed,
    LockHogger,
    hog_lock,
)


@pytest.mark.parametrize(
    "make",
    [threading.Lock, threading.RLock, lambda: threading.Semaphore(1), multiprocessing.Lock],
    ids=["Lock", "RLock", "Semaphore", "multiprocessing.Lock"],
)
def test_acquire_release_objects_are_held_by_another_thread(make: Any) -> None:
    lock = make()
    with hog_lock(lock):
        # An RLock would let this thread in again if the hog had taken it here.
        assert lock.acquire(False) is False
    assert lock.acquire(False) is True
    lock.release()


def test_lockhog_lock_is_hogged_through_a_twin(locker: lockhog.Locker, name: str) -> None:
    lock = locker.lock(name)
    with hog_lock(lock):
        assert not lock.held, "the caller's object was left as it was"
        assert lock.acquire(blocking=False) is False
        with pytest.raises(lockhog.Contended):
            with locker.lock(name, blocking=False):
                pass
    assert lock.acquire(blocking=False)
    lock.release()


def test_context_managers_and_factories_run_on_the_hog_thread() -> None:
    lock = threading.Lock()
    threads = []

    @contextlib.contextmanager
    def transaction() -> Iterator[None]:
        threads.append(threading.get_ident())
        with lock:
            yield
        threads.append(threading.get_ident())

    with hog_lock(transaction):  # a factory: called, entered and left on the hog's thread
        assert not lock.acquire(False)
    with hog_lock(transaction()):  # a context manager
        assert not lock.acquire(False)
    assert len(threads) == 4 and threading.get_ident() not in threads
    assert threads[0] == threads[1]


def test_decorator_holds_for_each_call_and_releases_after_a_raise() -> None:
    lock = threading.Lock()

    @hog_lock(lock)
    def body(fail: bool) -> bool:
        if fail:
            raise ZeroDivisionError
        return lock.acquire(False)

    assert body(False) is False
    with pytest.raises(ZeroDivisionError):
        body(True)
    assert lock.acquire(False), "the hog was not released after the body raised"


def test_a_body_that_raises_still_releases() -> None:
    lock = threading.Lock()
    with pytest.raises(ZeroDivisionError):
        with hog_lock(lock):
            1 / 0
    assert lock.acquire(False)


def test_a_hogger_that_raises_is_reported_at_once() -> None:
    class Broken(LockHogger):
        def acquire_lock(self) -> None:
            raise ConnectionError("the database is down")

    with pytest.raises(HogAcquireFailed) as err:
        with hog_lock(Broken(), acquire_timeout=BOUND):
            pytest.fail("the body ran without the lock")
    assert isinstance(err.value.__cause__, ConnectionError)
    assert "the database is down" in str(err.value)


def test_acquire_returning_false_is_a_failure() -> None:
    class Refuses:
        def acquire(self) -> bool:
            return False

        def release(self) -> None:
            raise AssertionError("never acquired")

    with pytest.raises(HogAcquireFailed, match="returned False"):
        hog_lock(Refuses()).start()


def test_a_hogger_that_never_acquires_times_out_and_gives_back_a_late_lock() -> None:
    lock = threading.Lock()
    go, took = threading.Event(), threading.Event()

    class Late(LockHogger):
        def acquire_lock(self) -> None:
            go.wait()
            lock.acquire()
            took.set()

        def release_lock(self) -> None:
            lock.release()

    with pytest.raises(HogAcquireTimedOut) as err:
        hog_lock(Late(), acquire_timeout=0.05).start()
    assert err.value.timeout == 0.05
    go.set()
    # It acquires now, after the caller gave up: and releases at once.
    assert took.wait(BOUND)
    assert lock.acquire(timeout=BOUND), "the late hogger kept the lock"


def test_a_release_that_never_returns_is_hogger_still_alive() -> None:
    stuck = threading.Event()

    class Stuck(LockHogger):
        def acquire_lock(self) -> None:
            pass

        def release_lock(self) -> None:
            stuck.wait()

    hog = hog_lock(Stuck(), release_timeout=0.05).start()
    with pytest.raises(HoggerStillAlive) as err:
        hog.release()
    assert err.value.timeout == 0.05
    assert isinstance(err.value, lockhog.LockhogError)
    stuck.set()


def test_a_release_that_raises_is_reported() -> None:
    class Bad(LockHogger):
        def acquire_lock(self) -> None:
            pass

        def release_lock(self) -> None:
            raise OSError("gone")

    with pytest.raises(HogReleaseFailed) as err:
        with hog_lock(Bad()):
            pass
    assert isinstance(err.value.__cause__, OSError)


def test_what_cannot_be_hogged_is_refused() -> None:
    import asyncio

    async def make() -> asyncio.Lock:
        return asyncio.Lock()  # Python 3.9 binds it to a loop when made

    with pytest.raises(TypeError, match="async_hog_lock"):
        hog_lock(asyncio.run(make())).start()
    with pytest.raises(TypeError, match="cannot hog"):
        hog_lock(42).start()
