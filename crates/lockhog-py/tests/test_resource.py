"""``Locker.lock_resource``: the lock another program takes, by its resource, raced both ways
against that program's own call (``fcntl.flock`` in a child process, psycopg's advisory
locks), with no fencing token, status by resource, hogs from a thread and a process, and bad
resources refused at the call with nothing created."""

from __future__ import annotations

import asyncio
import os
import random
from pathlib import Path
from typing import Iterator, List

import psycopg
import pytest

import lockhog
from cli_child import Child
from conftest import BOUND, server_url
from lockhog.hog import HogFrom, async_hog_lock, hog_lock

# A child that tries `fcntl.flock` once on argv[1] ("busy" or "got"), or with argv[2] ==
# "hold" takes it, says "held", and keeps it until its stdin ends.
FLOCK_CHILD = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
if sys.argv[2] == "hold":
    fcntl.flock(fd, fcntl.LOCK_EX)
    print("held", flush=True)
    sys.stdin.read()
    sys.exit(0)
try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
except BlockingIOError:
    print("busy", flush=True)
else:
    print("got", flush=True)
"""

PID_CONTENT = b"4242\n\x00binary tail\xff"


def flock_from_a_child(path: Path) -> str:
    child = Child(str(path), "try", code=FLOCK_CHILD)
    try:
        [said] = child.rest()
        assert child.finish() == 0, child.stderr()
        return said
    finally:
        child.kill()


@pytest.fixture
def pid_file(tmp_path: Path) -> Path:
    path = tmp_path / "app.pid"
    path.write_bytes(PID_CONTENT)
    os.chmod(path, 0o640)
    return path


@pytest.fixture
def pg() -> Iterator[psycopg.Connection]:
    with psycopg.connect(server_url("POSTGRES"), autocommit=True) as conn:
        yield conn


def random_key() -> int:
    return random.randrange(-(2**63), 2**63)


def pg_try(conn: psycopg.Connection, *key: int) -> bool:
    """``pg_try_advisory_lock(key)`` (one bigint or two ints), released at once when taken."""
    cast = "::bigint" if len(key) == 1 else "::int"
    sql_args = ", ".join(f"%s{cast}" for _ in key)
    row = conn.execute(f"SELECT pg_try_advisory_lock({sql_args})", key).fetchone()
    assert row is not None
    if row[0]:
        conn.execute(f"SELECT pg_advisory_unlock({sql_args})", key)
    return bool(row[0])


def test_file_resource_blocks_flock_and_leaves_the_file_as_it_was(
    file_url: str, pid_file: Path
) -> None:
    before = os.stat(pid_file)
    lock = lockhog.Locker(file_url).lock_resource(str(pid_file))
    assert (lock.name, lock.resource) == (str(pid_file), str(pid_file))
    with lock:
        assert lock.fencing_token is None
        assert flock_from_a_child(pid_file) == "busy"
    assert flock_from_a_child(pid_file) == "got"
    after = os.stat(pid_file)
    assert pid_file.read_bytes() == PID_CONTENT
    assert (after.st_mode, after.st_ino, after.st_mtime_ns) == (
        before.st_mode,
        before.st_ino,
        before.st_mtime_ns,
    )


def test_file_resource_held_by_flock_is_seen_held(file_url: str, pid_file: Path) -> None:
    holder = Child(str(pid_file), "hold", code=FLOCK_CHILD)
    try:
        assert holder.line() == "held"
        locker = lockhog.Locker(file_url)
        lock = locker.lock_resource(str(pid_file))
        assert not lock.acquire(blocking=False)
        with pytest.raises(lockhog.Contended):
            with locker.lock_resource(str(pid_file), blocking=False):
                pass
        [status] = locker.status(resources=[str(pid_file)])
        assert (status.resource, status.state) == (str(pid_file), "held")
        holder.send("")
        assert holder.proc.stdin is not None
        holder.proc.stdin.close()
        assert holder.finish() == 0
        assert lock.acquire(timeout=BOUND)
        assert lock.release()
    finally:
        holder.kill()
    assert pid_file.read_bytes() == PID_CONTENT


def test_postgres_resource_both_ways_with_psycopg(pg: psycopg.Connection) -> None:
    locker = lockhog.Locker(server_url("POSTGRES"))
    assert locker.capabilities()["resource_fencing"] is False
    key = random_key()
    # The backend's own spelling: leading zeros dropped.
    assert locker.lock_resource("advisory:007").name == "advisory:7"
    lock = locker.lock_resource(f"advisory:{key}")
    with lock:
        assert lock.fencing_token is None
        assert lock.resource == f"advisory:{key}"
        assert not pg_try(pg, key)
    assert pg_try(pg, key)
    pg.execute("SELECT pg_advisory_lock(%s::bigint)", (key,))
    try:
        assert not lock.acquire(blocking=False)
        [status] = locker.status(resources=[f"advisory:{key}"])
        assert status.state == "held"
    finally:
        pg.execute("SELECT pg_advisory_unlock(%s::bigint)", (key,))
    assert lock.acquire(blocking=False)
    assert lock.release()
    [status] = locker.status(resources=[f"advisory:{key}"])
    assert status.state == "free"


def test_postgres_two_int_resource(pg: psycopg.Connection) -> None:
    locker = lockhog.Locker(server_url("POSTGRES"))
    a, b = random.randrange(-(2**31), 2**31), random.randrange(-(2**31), 2**31)
    lock = locker.lock_resource(f"advisory:{a},{b}")
    with lock:
        assert not pg_try(pg, a, b)
        # The two-int space is not the bigint one: the single key `a` stays free.
        assert pg_try(pg, a)
    assert pg_try(pg, a, b)
    pg.execute("SELECT pg_advisory_lock(%s::int, %s::int)", (a, b))
    try:
        assert not lock.acquire(blocking=False)
    finally:
        pg.execute("SELECT pg_advisory_unlock(%s::int, %s::int)", (a, b))


def test_status_by_name_and_resource_together(file_url: str, pid_file: Path, name: str) -> None:
    locker = lockhog.Locker(file_url)
    with locker.lock(name), locker.lock_resource(str(pid_file)):
        found = locker.status(name, resources=[str(pid_file)])
    assert [(s.name, s.resource, s.state) for s in found] == [
        (name, locker.resource(name), "held"),
        (str(pid_file), str(pid_file), "held"),
    ]
    with pytest.raises(TypeError):
        locker.status(resources=str(pid_file))


def listing(*dirs: Path) -> List[str]:
    return sorted(str(p) for d in dirs for p in d.rglob("*"))


@pytest.mark.parametrize("resource", ["app.pid", "./app.pid", "", "/dir/"])
def test_a_bad_file_resource_is_refused_at_the_call_and_creates_nothing(
    tmp_path: Path, resource: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    work, locks = tmp_path / "work", tmp_path / "locks"
    work.mkdir()
    locker = lockhog.Locker(f"file://{locks}")
    monkeypatch.chdir(work)
    before = listing(tmp_path)
    with pytest.raises(lockhog.InvalidOption) as refused:
        locker.lock_resource(resource)
    assert isinstance(refused.value, ValueError)
    assert "cannot lock the resource" in str(refused.value)
    with pytest.raises(lockhog.InvalidOption):
        locker.status(resources=[resource])
    assert listing(tmp_path) == before


@pytest.mark.parametrize(
    "resource", ["advisory:x", "advisory:9223372036854775808", "42", "advisory:1,2,3"]
)
def test_a_bad_postgres_resource_is_refused(resource: str) -> None:
    with pytest.raises(lockhog.InvalidOption, match="cannot lock the resource"):
        lockhog.Locker(server_url("POSTGRES")).lock_resource(resource)


def test_stores_without_resources_refuse_them(sqlite_url: str) -> None:
    for url in ("mem:", sqlite_url):
        with pytest.raises(lockhog.InvalidOption):
            lockhog.Locker(url).lock_resource("/tmp/app.pid")


@pytest.mark.parametrize("from_", [HogFrom.THREAD, HogFrom.PROCESS])
def test_hog_a_file_resource(file_url: str, pid_file: Path, from_: HogFrom) -> None:
    lock = lockhog.Locker(file_url).lock_resource(str(pid_file))
    with hog_lock(lock, from_=from_, acquire_timeout=BOUND) as hog:
        assert flock_from_a_child(pid_file) == "busy"
        assert not lock.held  # the hog took a twin
        if from_ is HogFrom.PROCESS:
            assert hog.pid != os.getpid()
            assert (hog.resource, hog.fencing_token) == (str(pid_file), None)
    assert flock_from_a_child(pid_file) == "got"
    assert pid_file.read_bytes() == PID_CONTENT


def test_async_hog_of_a_postgres_resource(pg: psycopg.Connection) -> None:
    key = random_key()
    lock = lockhog.Locker(server_url("POSTGRES")).lock_resource(f"advisory:{key}")

    async def main() -> None:
        async with async_hog_lock(lock, acquire_timeout=BOUND):
            assert not pg_try(pg, key)
        assert pg_try(pg, key)

    asyncio.run(asyncio.wait_for(main(), BOUND))


def test_hog_a_resource_starting_with_a_dash_from_a_process() -> None:
    # A MySQL GET_LOCK name may start with "-": `hold` must take it as the resource.
    url = server_url("MYSQL")
    resource = f"-py-{random.randrange(2**32)}"
    locker = lockhog.Locker(url)
    lock = locker.lock_resource(resource)
    with hog_lock(lock, from_=HogFrom.PROCESS, acquire_timeout=BOUND) as hog:
        assert hog.resource == resource
        assert not locker.lock_resource(resource).acquire(blocking=False)
    assert locker.lock_resource(resource).acquire(blocking=False)


def test_async_and_decorator_forms(file_url: str, pid_file: Path) -> None:
    locker = lockhog.Locker(file_url)
    lock = locker.lock_resource(str(pid_file), blocking=False)

    @lock
    def inside() -> str:
        return flock_from_a_child(pid_file)

    assert inside() == "busy"

    async def main() -> None:
        async with lock:
            assert lock.fencing_token is None
            assert not await locker.lock_resource(str(pid_file)).acquire_async(blocking=False)
        assert await lock.acquire_async()
        assert await lock.release_async()

    asyncio.run(asyncio.wait_for(main(), BOUND))
    assert flock_from_a_child(pid_file) == "got"


def test_hold_command_of_a_resource_lock_carries_no_password() -> None:
    url = server_url("POSTGRES")
    lock = lockhog.Locker(url).lock_resource("advisory:5")
    args, env = lock._hold_command(1.0)
    assert args[-1] == "--resource=advisory:5"
    assert not any(url in a or "@" in a for a in args)
    assert env[lockhog.URL_ENV].startswith(url.split("?")[0])
