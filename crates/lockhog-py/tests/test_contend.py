"""``contend``: n calls at once, exactly one winner, every time, without sleeps."""

from __future__ import annotations

import threading

import pytest

import lockhog
from lockhog.hog import ContendCallFailed, ContendTimedOut, Contender, contend


@pytest.mark.parametrize("n", [2, 16])
def test_exactly_one_winner_every_time(n: int) -> None:
    lock = threading.Lock()

    def pay(c: Contender) -> str:
        if lock.acquire(blocking=False):
            try:
                c.hold_until_others_done()
                return "paid"
            finally:
                lock.release()
        return "already paying"

    for _ in range(50):
        outcomes = contend(n, pay)
        assert len(outcomes) == n
        assert outcomes.count("paid") == 1, outcomes


def test_on_a_lockhog_lock(locker: lockhog.Locker, name: str) -> None:
    def attempt(c: Contender) -> int:
        lock = locker.lock(name)
        if not lock.acquire(blocking=False):
            return -1
        c.hold_until_others_done()
        lock.release()
        return c.index

    for _ in range(10):
        outcomes = contend(8, attempt)
        assert sum(o >= 0 for o in outcomes) == 1, outcomes


def test_results_are_in_index_order() -> None:
    assert contend(5, lambda c: (c.index, c.n)) == [(i, 5) for i in range(5)]


def test_a_call_that_raises_is_reported_with_its_index() -> None:
    def attempt(c: Contender) -> None:
        if c.index == 3:
            raise KeyError("boom")

    with pytest.raises(ContendCallFailed) as err:
        contend(4, attempt)
    assert err.value.index == 3 and isinstance(err.value.__cause__, KeyError)


def test_a_call_that_never_returns_times_out() -> None:
    stuck = threading.Event()

    def attempt(c: Contender) -> None:
        if c.index == 0:
            stuck.wait()

    with pytest.raises(ContendTimedOut) as err:
        contend(3, attempt, timeout=0.1)
    assert err.value.pending == [0]
    stuck.set()


def test_a_holder_whose_rivals_never_return_gives_up() -> None:
    stuck = threading.Event()

    def attempt(c: Contender) -> bool:
        if c.index == 0:
            return c.hold_until_others_done()
        stuck.wait()
        return True

    with pytest.raises(ContendTimedOut):
        contend(2, attempt, timeout=0.1)
    stuck.set()


def test_no_calls_is_an_error() -> None:
    with pytest.raises(ValueError):
        contend(0, lambda c: None)
