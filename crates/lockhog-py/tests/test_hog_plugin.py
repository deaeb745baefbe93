"""The pytest plugin: ``hog`` and ``locker`` in a pytest run of their own, where a failing
test's hog is still released at teardown."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import BOUND

INNER = '''
import threading

import lockhog
from lockhog.hog import HogFrom

LOCK = threading.Lock()


def test_1_fails_while_hogging(hog):
    hog(LOCK)
    assert LOCK.locked()
    raise AssertionError("the body fails")


def test_2_the_hog_was_released_at_teardown(hog, locker):
    assert LOCK.acquire(False)
    LOCK.release()
    lock = locker.lock("pay-42")
    hog(lock)
    assert lock.acquire(blocking=False) is False


def test_3_locker_is_fresh_and_process_hogs(hog, locker):
    assert locker.url.startswith("file://")
    lock = locker.lock("pay-42")
    held = hog(lock, from_=HogFrom.PROCESS)
    assert held.fencing_token >= 1
    assert lock.acquire(blocking=False) is False
'''


def test_fixtures_release_even_when_the_test_fails(tmp_path: Path) -> None:
    (tmp_path / "test_inner.py").write_text(INNER)
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "test_inner.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=BOUND,
    )
    assert "1 failed, 2 passed" in out.stdout, out.stdout + out.stderr
    assert "the body fails" in out.stdout
