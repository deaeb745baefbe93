"""lockhog's pytest plugin (registered through the ``pytest11`` entry point, so installing
the wheel is enough): the fixtures ``hog`` and ``locker``.

    def test_refuses_while_paying(hog, locker):
        lock = locker.lock("pay-42")
        hog(lock)                                 # held by another thread until teardown
        with pytest.raises(lockhog.Contended):
            pay_individual(locker, 42)

    def test_other_process(hog, tmp_path):
        hog(tmp_path / "app.lock", from_=HogFrom.PROCESS)   # fcntl locks, from a child
        ...

A hog started with ``hog`` is released at teardown even when the test fails; one whose
release overruns its ``release_timeout`` fails the teardown (``HoggerStillAlive``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterator, List

import pytest

from ._lock import Locker
from .hog import Hog, HogFrom, hog_lock

__all__ = ["hog", "locker"]


@pytest.fixture
def hog() -> Iterator[Callable[..., Hog]]:
    """``hog(lock, *, from_=HogFrom.THREAD, acquire_timeout=10.0, release_timeout=1.0)``:
    hogs ``lock`` (anything ``lockhog.hog.hog_lock`` takes) and returns once it is held; it
    is released at teardown, newest first."""
    started: List[Hog] = []

    def start(lock: object, *, from_: HogFrom = HogFrom.THREAD, **timeouts: Any) -> Hog:
        held = hog_lock(lock, from_=from_, **timeouts).start()
        started.append(held)
        return held

    yield start
    errors = []
    for held in reversed(started):
        try:
            while held._holds:
                held.release()
        except Exception as e:  # every hog is released before the first error is raised
            errors.append(e)
    if errors:
        raise errors[0]


@pytest.fixture
def locker(tmp_path: Path) -> Locker:
    """A lockhog ``Locker`` on a fresh directory of lock files (``file://`` under the
    test's ``tmp_path``): real locks, seen by other processes, gone after the test."""
    directory = tmp_path / "lockhog-locks"
    return Locker(f"file://{directory}")
