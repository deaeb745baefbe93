"""``HogFrom.PROCESS``: locks only another process can block. File locks through a Python
child (lock-hog's own case: a thread hog does not block ``fcntl.lockf`` in the same process,
a process hog does), lockhog locks through ``python -m lockhog hold``."""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path

import pytest

import lockhog
from conftest import server_url
from lockhog.hog import FileLock, HogAcquireFailed, HogAcquireTimedOut, HogFrom, hog_lock


def free(path: Path, kind: str) -> bool:
    """Whether this process can take ``kind`` on ``path`` at once (given back at once)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if kind == "lockf":
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        else:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def test_lockf_is_blocked_by_a_process_hog_not_a_thread_hog(tmp_path: Path) -> None:
    path = tmp_path / "pay.lock"
    with hog_lock(FileLock(path, "lockf")):
        # Record locks belong to the process: this one never conflicts with itself.
        assert free(path, "lockf")
    with hog_lock(FileLock(path, "lockf"), from_=HogFrom.PROCESS) as hog:
        assert hog.pid != os.getpid()
        assert not free(path, "lockf")
    assert free(path, "lockf")


def test_a_path_hogs_both_kinds_from_a_process(tmp_path: Path) -> None:
    path = tmp_path / "both.lock"
    with hog_lock(path, from_=HogFrom.PROCESS):
        assert not free(path, "lockf")
        assert not free(path, "flock")
    assert free(path, "lockf") and free(path, "flock")
    # flock locks belong to the open file: a thread hog blocks another descriptor.
    with hog_lock(str(path)):
        assert not free(path, "flock")


def test_a_process_hog_that_cannot_get_the_file_lock_times_out(tmp_path: Path) -> None:
    path = tmp_path / "held.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX)
        with pytest.raises(HogAcquireTimedOut):
            hog_lock(FileLock(path, "lockf"), from_=HogFrom.PROCESS, acquire_timeout=0.5).start()
    finally:
        os.close(fd)
    assert free(path, "lockf"), "the timed-out child was left holding"


def test_a_process_hog_that_fails_says_why(tmp_path: Path) -> None:
    with pytest.raises(HogAcquireFailed, match="FileNotFoundError"):
        hog_lock(tmp_path / "no-dir" / "x.lock", from_=HogFrom.PROCESS).start()


def test_lockhog_lock_from_a_hold_process(locker: lockhog.Locker, name: str) -> None:
    lock = locker.lock(("invoice", name))  # a hashed name goes over as its digest
    with hog_lock(lock, from_=HogFrom.PROCESS) as hog:
        assert hog.pid != os.getpid()
        assert hog.resource == locker.resource(lock.name)
        assert hog.fencing_token >= 1
        assert not lock.acquire(blocking=False)
    assert lock.acquire(blocking=False)
    lock.release()


def test_abandon_is_a_crash_and_the_lock_goes_with_it(locker: lockhog.Locker, name: str) -> None:
    hog = hog_lock(locker.lock(name), from_=HogFrom.PROCESS).start()
    assert not locker.lock(name).acquire(blocking=False)
    hog.abandon()
    lock = locker.lock(name)
    assert lock.acquire(blocking=False), "a killed holder's file lock stayed"
    lock.release()


def test_hold_process_times_out_on_a_held_lock(locker: lockhog.Locker, name: str) -> None:
    with locker.lock(name):
        with pytest.raises(HogAcquireTimedOut):
            hog_lock(locker.lock(name), from_=HogFrom.PROCESS, acquire_timeout=0.3).start()


def test_server_lock_from_a_process_keeps_the_password_off_argv(name: str) -> None:
    url = server_url("POSTGRES")
    locker = lockhog.Locker(url, namespace="py-hog")
    credentials = url.split("://", 1)[1].split("@", 1)[0]
    with hog_lock(locker.lock(name), from_=HogFrom.PROCESS) as hog:
        cmdline = Path(f"/proc/{hog.pid}/cmdline").read_bytes().split(b"\0")
        assert not any(credentials.encode() in arg or b"://" in arg for arg in cmdline)
        assert not locker.lock(name).acquire(blocking=False)
        # The child used this locker's namespace: the same name elsewhere is free.
        assert lockhog.Locker(url).lock(name).acquire(blocking=False)


def test_what_a_process_cannot_hog_is_refused(mem: lockhog.Locker, name: str) -> None:
    with pytest.raises(TypeError, match="HogFrom.PROCESS"):
        hog_lock(threading.Lock(), from_=HogFrom.PROCESS).start()
    with pytest.raises(ValueError, match="other processes"):
        hog_lock(mem.lock(name), from_=HogFrom.PROCESS).start()


@pytest.mark.parametrize("from_", [HogFrom.THREAD, HogFrom.PROCESS])
def test_a_hogged_shared_lock_lets_readers_in_and_keeps_writers_out(
    file_url: str, name: str, from_: HogFrom
) -> None:
    locker = lockhog.Locker(file_url)
    with hog_lock(locker.lock(name, shared=True), from_=from_):
        reader = locker.lock(name, shared=True)
        assert reader.acquire(blocking=False), "a reader was kept out by a shared hog"
        assert reader.release()
        assert not locker.lock(name).acquire(blocking=False), "a writer got in past the hog"
    writer = locker.lock(name)
    assert writer.acquire(blocking=False), "the hog kept the lock"
    assert writer.release()
