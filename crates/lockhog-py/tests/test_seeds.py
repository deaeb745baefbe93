"""The README examples of the Python libraries lockhog grew from, rewritten with lockhog:
PALs (PostgreSQL advisory locks), py-dspinlock (a Redis spinlock with cached results) and
djangae's locking app (wait, wait_for_ms, steal_after_ms)."""

from __future__ import annotations

import subprocess
import sys
import uuid
from typing import List

import pytest

import lockhog
from conftest import BOUND, server_url


def test_pals_locker_examples(name: str) -> None:
    # locker = pals.Locker('my-app-name', 'postgresql://user:pass@server/dbname')
    locker = lockhog.Locker(server_url("POSTGRES"), namespace="my-app-name")
    lock1 = locker.lock(name)
    lock2 = locker.lock(name)
    assert lock1.acquire()
    # Non blocking version should fail immediately.
    assert lock2.acquire(blocking=False) is False
    # A wait with a bound (PALs: retry_timeout) fails once it runs out...
    with pytest.raises(lockhog.TimedOut) as timed_out:
        with locker.lock(name, timeout=0.2):
            pass
    assert timed_out.value.waited >= 0.2
    assert lock1.release()
    # ...and return_retries: how many attempts the acquire took.
    assert lock2.acquire(timeout=BOUND)
    assert lock2.attempts >= 1
    lock2.release()
    # The context-manager form.
    with locker.lock(name) as held:
        assert held.resource.startswith("advisory:")


def test_dspinlock_spinlock_on_any_hashable(name: str) -> None:
    # with HashDSpinlock("example"): ...
    locker = lockhog.Locker(server_url("REDIS"))
    key = (name, 1)
    with locker.lock(key) as held:
        assert held.name == lockhog.hashed_name(key)
        assert not locker.lock(key).acquire(blocking=False)
    assert locker.lock(key).acquire(blocking=False)


def test_dspinlock_cached_if_computed(name: str) -> None:
    url = server_url("REDIS")
    once = lockhog.ComputeOnce(lockhog.Locker(url, namespace=name), url)
    calls: List[int] = []

    @once.cached(ttl=60)
    def square(n: int) -> bytes:
        calls.append(n)
        return str(n * n).encode()

    assert square(12) == b"144" and square(12) == b"144"
    assert square(3) == b"9"
    assert calls == [12, 3]

    # A failure is not cached: the next caller computes.
    def boom() -> bytes:
        raise RuntimeError("no")

    with pytest.raises(RuntimeError):
        once.get_or_compute("k", 60, boom)
    assert lockhog.compute_once(lockhog.Locker(url, namespace=name), url, "k", 60, lambda: b"v") == b"v"
    assert once.get_or_compute("k", 60, boom) == b"v"


def test_djangae_lock_wait_and_wait_for(sqlite_url: str, name: str) -> None:
    locker = lockhog.Locker(sqlite_url)
    ran: List[str] = []

    # @lock('my_lock')
    @locker.lock(name)
    def refresh_user_oauth_token() -> None:
        ran.append("refresh")

    refresh_user_oauth_token()

    with locker.lock(name):
        # @lock('my_lock', wait=False): the function does not run while someone holds it.
        @locker.lock(name, blocking=False)
        def my_function() -> None:
            ran.append("never")

        with pytest.raises(lockhog.NotAcquired):
            my_function()
        # with lock('my_lock', wait=False): raises (djangae: LockAcquisitionError).
        with pytest.raises(lockhog.Contended):
            with locker.lock(name, blocking=False):
                ran.append("never")
        # wait_for_ms: the longest wait before giving up.
        with pytest.raises(lockhog.TimedOut):
            with locker.lock(name, timeout=0.1):
                ran.append("never")
    assert ran == ["refresh"]


HOLD_WITH_LEASE = """
import sys, threading, lockhog
lock = lockhog.Locker(sys.argv[1]).lock(sys.argv[2], ttl=1.0)
assert lock.acquire()
print("held", flush=True)
threading.Event().wait()
"""


def test_djangae_steal_after_is_a_lease(sqlite_url: str) -> None:
    # steal_after_ms: a lock older than this is ignored. With lockhog the holder's lease (ttl)
    # is renewed while it lives; a holder that stopped (killed here) loses it after ttl.
    name = f"steal-{uuid.uuid4().hex[:8]}"
    child = subprocess.Popen(
        [sys.executable, "-c", HOLD_WITH_LEASE, sqlite_url, name],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == "held\n"
        locker = lockhog.Locker(sqlite_url)
        assert not locker.lock(name).acquire(blocking=False)
        child.kill()
        child.wait(BOUND)
        lock = locker.lock(name, ttl=1.0)
        assert lock.acquire(timeout=BOUND), "the dead holder's lease never ran out"
        assert lock.release()
    finally:
        child.kill()
        child.wait(BOUND)
