"""Threads, processes and asyncio tasks contending; the GIL released during a wait; Ctrl-C
during a wait; a killed holder."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
from typing import List

import pytest

import lockhog
from conftest import BOUND, interrupt_main_once_waiting, main_thread_waiting_in_lockhog, server_url, wait_until


def test_threads_take_turns(any_url: str, name: str) -> None:
    locker = lockhog.Locker(any_url)
    lock = locker.lock(name, timeout=BOUND)  # one object shared by every thread
    inside, most, entries = 0, 0, 0
    count = threading.Lock()
    errors: List[BaseException] = []

    def worker() -> None:
        nonlocal inside, most, entries
        try:
            for _ in range(5):
                with lock:
                    with count:
                        inside += 1
                        entries += 1
                        most = max(most, inside)
                    with count:
                        inside -= 1
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(BOUND)
        assert not t.is_alive(), "a worker did not finish"
    assert errors == []
    assert (most, entries) == (1, 20)


def test_blocking_wait_releases_the_gil(mem: lockhog.Locker, name: str) -> None:
    holder = mem.lock(name)
    assert holder.acquire()
    progress = []

    def other_thread() -> None:
        # Runs Python code only while the main thread is inside the blocking acquire: with
        # the GIL held there, it could not run at all and the acquire would time out.
        wait_until(main_thread_waiting_in_lockhog, "the main thread's wait")
        progress.append(sum(range(100_000)))
        holder.release()

    t = threading.Thread(target=other_thread)
    t.start()
    assert mem.lock(name).acquire(timeout=BOUND), "the holder never ran to release"
    t.join(BOUND)
    assert progress == [sum(range(100_000))]


@pytest.mark.usefixtures("sigint_default")
def test_ctrl_c_interrupts_a_wait_and_leaves_nothing_held(mem: lockhog.Locker, name: str) -> None:
    holder = mem.lock(name)
    assert holder.acquire()

    t = interrupt_main_once_waiting()
    waiter = mem.lock(name)
    with pytest.raises(KeyboardInterrupt):
        waiter.acquire(timeout=BOUND)
    t.join(BOUND)
    assert not waiter.held
    assert holder.release()
    # The interrupted wait left no waiter behind to take the lock once it was free.
    probe = mem.lock(name)
    assert probe.acquire(blocking=False)
    assert probe.release()


@pytest.mark.usefixtures("sigint_default")
def test_sigint_interrupts_a_wait_on_a_server(name: str) -> None:
    locker = lockhog.Locker(server_url("REDIS"))
    holder = locker.lock(name)
    assert holder.acquire()

    t = interrupt_main_once_waiting(lambda: os.kill(os.getpid(), signal.SIGINT))
    with pytest.raises(KeyboardInterrupt):
        locker.lock(name).acquire(timeout=BOUND)
    t.join(BOUND)
    assert holder.release()
    assert locker.lock(name).acquire(blocking=False)


HOLD = """
import sys, threading, lockhog
lock = lockhog.Locker(sys.argv[1]).lock(sys.argv[2])
assert lock.acquire()
print("held", flush=True)
threading.Event().wait()
"""


@pytest.mark.parametrize("backend", ["file", "postgres", "mysql"])
def test_killed_holder_releases_on_a_crash_release_backend(
    backend: str, file_url: str, name: str
) -> None:
    url = file_url if backend == "file" else server_url(backend.upper())
    locker = lockhog.Locker(url)
    assert locker.capabilities()["crash_release"]
    child = subprocess.Popen(
        [sys.executable, "-c", HOLD, url, name], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "held\n"
        assert not locker.lock(name).acquire(blocking=False)
        child.kill()
        child.wait(BOUND)
        lock = locker.lock(name)
        assert lock.acquire(timeout=BOUND), "the dead holder's lock stayed held"
        lock.release()
    finally:
        child.kill()
        child.wait(BOUND)


def test_asyncio_tasks_take_turns_without_blocking_the_loop(any_url: str, name: str) -> None:
    async def main() -> None:
        locker = await lockhog.Locker.connect_async(any_url)
        lock = locker.lock(name, timeout=BOUND)
        inside, most, entries, ticks = 0, 0, 0, 0
        holder = locker.lock(name)
        assert await holder.acquire_async()

        async def worker() -> None:
            nonlocal inside, most, entries
            for _ in range(3):
                async with lock:
                    inside += 1
                    entries += 1
                    most = max(most, inside)
                    await asyncio.sleep(0)
                    inside -= 1

        workers = [asyncio.ensure_future(worker()) for _ in range(4)]
        # The loop keeps running while every worker waits on the held lock.
        while ticks < 10:
            ticks += 1
            await asyncio.sleep(0)
        assert entries == 0
        assert await holder.release_async()
        await asyncio.wait_for(asyncio.gather(*workers), BOUND)
        assert (most, entries) == (1, 12)

    asyncio.run(main())


def test_cancelled_async_wait_leaves_nothing_held(mem: lockhog.Locker, name: str) -> None:
    async def main() -> None:
        holder = mem.lock(name)
        assert await holder.acquire_async()
        waiter = mem.lock(name)
        task = asyncio.ensure_future(waiter.acquire_async())
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await holder.release_async()
        probe = mem.lock(name)
        # The cancelled acquire may take a moment to be dropped on the runtime; then the
        # lock must be free.
        assert await probe.acquire_async(timeout=BOUND)
        assert not waiter.held
        await probe.release_async()

    asyncio.run(main())


def test_async_decorator_and_not_acquired(mem: lockhog.Locker, name: str) -> None:
    @mem.lock(name, blocking=False)
    async def job() -> int:
        return 7

    async def main() -> None:
        assert await job() == 7
        async with mem.lock(name):
            with pytest.raises(lockhog.Contended):
                await job()
            assert await mem.lock(name).acquire_async(blocking=False) is False

    asyncio.run(main())
