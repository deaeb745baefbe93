"""Shared fixtures: backend URLs from the environment, unique lock names, bounds.

A backend's URL comes from ``LOCKHOG_TEST_<NAME>_URL`` (scripts/test starts the servers and
exports them). Without one the test is skipped, except under ``CI=true``, where it fails: CI
must never pass by skipping.
"""

from __future__ import annotations

import _thread
import os
import signal
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Callable, Iterator

import pytest

import lockhog

#: The longest any test waits for something that should happen; waiting longer is a failure.
BOUND = 30.0


def server_url(backend: str) -> str:
    """The test server's URL for ``backend`` (``POSTGRES``, ``REDIS``…)."""
    var = f"LOCKHOG_TEST_{backend}_URL"
    url = os.environ.get(var)
    if not url:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{var} is not set (CI=true: a missing server is a failure)")
        pytest.skip(f"{var} is not set")
    return url


@pytest.fixture
def name() -> str:
    """A lock name no other test (or earlier run) uses."""
    return f"py-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def file_url(tmp_path: Path) -> str:
    return f"file://{tmp_path}"


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite://{tmp_path}/locks.db"


@pytest.fixture(params=["mem", "file", "sqlite", "postgres", "mysql", "redis", "redlock", "memcached"])
def any_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Every backend the wheel has, one after the other."""
    kind = request.param
    if kind == "mem":
        return "mem:"
    if kind == "file":
        return f"file://{tmp_path}"
    if kind == "sqlite":
        return f"sqlite://{tmp_path}/locks.db"
    return server_url(kind.upper())


def wait_until(cond: Callable[[], bool], what: str) -> None:
    """Checks ``cond()`` every few milliseconds until it holds, failing after ``BOUND``: for
    states nothing signals (where a thread is blocked)."""
    deadline = time.monotonic() + BOUND
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {BOUND}s")
        time.sleep(0.002)


def main_thread_waiting_in_lockhog() -> bool:
    """True while the main thread is inside a blocking lockhog call (its innermost Python
    frame is one of lockhog's, which call into Rust)."""
    frame = sys._current_frames().get(threading.main_thread().ident or 0)
    return frame is not None and frame.f_code.co_name == "_take"


def interrupt_main_once_waiting(interrupt: Callable[[], None] = _thread.interrupt_main) -> threading.Thread:
    """Starts a thread that calls ``interrupt`` (Ctrl-C's ``KeyboardInterrupt`` in the main
    thread by default) once the main thread is inside a blocking lockhog call."""

    def run() -> None:
        wait_until(main_thread_waiting_in_lockhog, "the main thread's wait")
        interrupt()

    t = threading.Thread(target=run)
    t.start()
    return t


@pytest.fixture
def mem() -> Iterator[lockhog.Locker]:
    yield lockhog.Locker("mem:")


@pytest.fixture
def sigint_default() -> Iterator[None]:
    """Ctrl-C raises ``KeyboardInterrupt`` in this test, and children it starts get SIGINT's
    default action, even when the suite was started with SIGINT ignored (``&`` from a
    non-interactive shell): an ignored signal stays ignored across ``fork`` and ``exec``, a
    handled one is reset to the default by ``exec``."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)
