"""A lock really lost behind its holder's back: the server ends the holder's PostgreSQL
session (``pg_terminate_backend`` from psycopg), and the Python lock says so."""

from __future__ import annotations

import asyncio
import uuid

import psycopg

import lockhog
from conftest import BOUND, server_url


def holder_locker(app: str) -> lockhog.Locker:
    """A locker whose sessions carry ``application_name=app``, to be found and ended."""
    url = server_url("POSTGRES")
    return lockhog.Locker(f"{url}{'&' if '?' in url else '?'}application_name={app}")


def terminate_sessions(app: str) -> int:
    """Ends every session of ``app`` on the server; how many there were."""
    with psycopg.connect(server_url("POSTGRES"), autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            (app,),
        ).fetchall()
    assert all(done for (done,) in rows)
    return len(rows)


def test_a_terminated_session_marks_the_lock_lost(name: str) -> None:
    app = f"lockhog-py-lost-{uuid.uuid4().hex[:8]}"
    locker = holder_locker(app)
    lock = locker.lock(name)
    assert lock.acquire(blocking=False)
    assert not lock.lost
    assert terminate_sessions(app) >= 1
    # The notice comes by itself: waiting on it returns, within the bound.
    reason = lock.wait_lost(timeout=BOUND)
    assert reason is not None, f"no lost notice within {BOUND}s"
    assert lock.lost and lock.lost_reason == reason
    assert lock.release() is False, "a lost lock was still ours at release"
    # The locker goes on with a fresh session.
    again = locker.lock(name, timeout=BOUND)
    assert again.acquire()
    assert not again.lost
    assert again.release()


def test_a_lost_lock_wakes_an_asyncio_waiter(name: str) -> None:
    app = f"lockhog-py-lost-{uuid.uuid4().hex[:8]}"

    async def main() -> None:
        locker = holder_locker(app)
        async with locker.lock(name) as lock:
            waiter = asyncio.ensure_future(lock.wait_lost_async())
            await asyncio.sleep(0)
            assert not waiter.done()
            assert await asyncio.get_running_loop().run_in_executor(
                None, terminate_sessions, app
            )
            reason = await asyncio.wait_for(waiter, BOUND)
            assert reason and lock.lost

    asyncio.run(main())
