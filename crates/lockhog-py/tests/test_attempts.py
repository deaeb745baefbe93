"""A wait that runs out says how many attempts it made: ``TimedOut.attempts``."""

from __future__ import annotations

import pytest

import lockhog
from conftest import BOUND


def test_timed_out_reports_its_attempts(any_url: str, name: str) -> None:
    locker = lockhog.Locker(any_url)
    with locker.lock(name, timeout=BOUND):
        with pytest.raises(lockhog.TimedOut) as timed_out:
            with locker.lock(name, timeout=0.05):
                pytest.fail("acquired a held lock")
    attempts = timed_out.value.attempts
    assert isinstance(attempts, int) and attempts >= 1
    assert "attempt" in str(timed_out.value)


def test_attempts_default_to_zero_when_raised_by_hand() -> None:
    assert lockhog.TimedOut("x").attempts == 0
