"""lock-hog's README scenarios (a Python test tool for hogging locks), rewritten with
``lockhog.hog``: the debounced ``pay_individual`` with a threading lock, the decorator,
``LockHogger``, the async variant, and the PostgreSQL advisory lock held from another
process while the code under test takes its own transaction-level lock."""

from __future__ import annotations

import asyncio
import os
import random
import threading
from typing import Optional

import psycopg
import pytest

from cli_child import Child
from conftest import BOUND, server_url
from lockhog.hog import AsyncLockHogger, LockHogger, async_hog_lock, hog_lock


class AlreadyPayingIndividual(Exception):
    pass


PAY_INDIVIDUAL_LOCK = threading.Lock()
paid: list = []


def pay_individual(amount: int) -> None:
    if not PAY_INDIVIDUAL_LOCK.acquire(blocking=False):
        raise AlreadyPayingIndividual
    try:
        paid.append(amount)
    finally:
        PAY_INDIVIDUAL_LOCK.release()


class PayIndividualLockHogger(LockHogger):
    def acquire_lock(self) -> None:
        PAY_INDIVIDUAL_LOCK.acquire()

    def release_lock(self) -> None:
        PAY_INDIVIDUAL_LOCK.release()


def test_raises_if_multiple_threads_try_to_pay_individuals() -> None:
    with hog_lock(PayIndividualLockHogger()):
        with pytest.raises(AlreadyPayingIndividual):
            pay_individual(1)
    pay_individual(2)  # released: no pollution of other tests
    assert paid[-1] == 2


@hog_lock(PayIndividualLockHogger())
def test_the_decorator_form() -> None:
    with pytest.raises(AlreadyPayingIndividual):
        pay_individual(3)


def test_the_lock_itself_is_enough() -> None:
    with hog_lock(PAY_INDIVIDUAL_LOCK):
        with pytest.raises(AlreadyPayingIndividual):
            pay_individual(4)


ASYNC_PAY_LOCK: Optional[asyncio.Lock] = None


async def async_pay_individual() -> None:
    assert ASYNC_PAY_LOCK is not None
    try:
        # The seed waits 0.1 s for the lock; here the failure under test is that wait
        # running out.
        await asyncio.wait_for(ASYNC_PAY_LOCK.acquire(), 0.1)
    except asyncio.TimeoutError as e:
        raise AlreadyPayingIndividual from e
    ASYNC_PAY_LOCK.release()


class AsyncPayIndividualLockHogger(AsyncLockHogger):
    async def acquire_lock(self) -> None:
        assert ASYNC_PAY_LOCK is not None
        await ASYNC_PAY_LOCK.acquire()

    async def release_lock(self) -> None:
        assert ASYNC_PAY_LOCK is not None
        ASYNC_PAY_LOCK.release()


def test_raises_if_multiple_tasks_try_to_pay_individuals() -> None:
    async def main() -> None:
        global ASYNC_PAY_LOCK
        ASYNC_PAY_LOCK = asyncio.Lock()
        async with async_hog_lock(AsyncPayIndividualLockHogger()):
            with pytest.raises(AlreadyPayingIndividual):
                await async_pay_individual()
        await async_pay_individual()

    asyncio.run(asyncio.wait_for(main(), BOUND))


# --- The database scenario: code under test takes a transaction-level advisory lock. ---


def pay_individual_in_db(conn: psycopg.Connection, key: int) -> None:
    """The code under test: pays only while it holds the advisory lock ``key`` for its
    transaction (the seed's ``pglock.advisory(..., xact=True, timeout=0)``)."""
    with conn.transaction():
        row = conn.execute("SELECT pg_try_advisory_xact_lock(%s)", (key,)).fetchone()
        if not (row and row[0]):
            raise AlreadyPayingIndividual


# A process that takes the advisory lock in a transaction of its own with psycopg and speaks
# `lockhog hold`'s protocol. The URL comes in the environment, never on the command line.
PSYCOPG_HOLDER = """
import os, sys, psycopg
with psycopg.connect(os.environ["HOG_DATABASE_URL"]) as conn:
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (int(sys.argv[1]),))
        print("held", sys.argv[1], flush=True)
        sys.stdin.readline()
print("released", sys.argv[1], flush=True)
"""


class AdvisoryXactHogger(LockHogger):
    """Holds advisory lock ``key`` from another process's transaction."""

    def __init__(self, url: str, key: int) -> None:
        self.url, self.key = url, key
        self.child: Optional[Child] = None

    def acquire_lock(self) -> None:
        self.child = Child(str(self.key), code=PSYCOPG_HOLDER, env={"HOG_DATABASE_URL": self.url})
        line = self.child.line()
        if line != f"held {self.key}":
            self.child.kill()
            raise RuntimeError(f"the holder said {line!r}: {self.child.stderr()}")

    def release_lock(self) -> None:
        assert self.child is not None
        self.child.send("release\n")
        assert self.child.rest() == [f"released {self.key}"]
        assert self.child.finish() == 0


def test_database_lock_hogged_from_another_process() -> None:
    url = server_url("POSTGRES")
    key = random.randrange(-(2**63), 2**63)
    # LEAD: once Locker.lock_resource lands, this hogger becomes
    #   hog_lock(lockhog.Locker(url).lock_resource(f"advisory:{key}"), from_=HogFrom.PROCESS)
    hogger = AdvisoryXactHogger(url, key)
    with psycopg.connect(url) as conn:
        with hog_lock(hogger, acquire_timeout=BOUND):
            assert hogger.child is not None and hogger.child.proc.pid != os.getpid()
            with pytest.raises(AlreadyPayingIndividual):
                pay_individual_in_db(conn, key)
        pay_individual_in_db(conn, key)  # released with the other transaction
