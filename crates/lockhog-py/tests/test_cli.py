"""``python -m lockhog``: the command from the wheel, with the binary's line protocol, exit
statuses, signal handling and child handling."""

from __future__ import annotations

import signal
import threading
import sys
from typing import Iterator

import pytest

import lockhog
from cli_child import Child
from conftest import BOUND, server_url

# A command for `run` that says it started, then waits until its stdin ends or a signal
# ends it.
WAITER = [sys.executable, "-c", "import sys; print('started', flush=True); sys.stdin.read()"]


@pytest.fixture
def children() -> Iterator[list]:
    """Children started by a test, killed at its end whatever happened."""
    started: list = []
    yield started
    for child in started:
        child.kill()


def start(children: list, *args: str) -> Child:
    child = Child(*args)
    children.append(child)
    return child


def test_hold_prints_held_then_releases(file_url: str, name: str, children: list) -> None:
    locker = lockhog.Locker(file_url)
    child = start(children, "hold", "-b", file_url, name)
    word, held, resource, token = (child.line() or "").split(" ")
    assert (word, held, resource) == ("held", name, locker.resource(name))
    assert int(token) >= 1
    assert not locker.lock(name).acquire(blocking=False)
    child.send("release\n")
    assert child.rest() == [f"released {name}"]
    assert child.finish() == 0
    assert locker.lock(name).acquire(blocking=False)


def test_hold_abandon_exits_without_releasing(name: str, children: list) -> None:
    # A lease outlives the abandoned holder: nothing released it.
    url = server_url("REDIS")
    child = start(children, "hold", "-b", url, "--ttl", "60", name)
    assert (child.line() or "").startswith(f"held {name} ")
    child.send("abandon\n")
    assert child.rest() == []
    assert child.finish() == 0
    locker = lockhog.Locker(url)
    assert not locker.lock(name).acquire(blocking=False)
    [status] = locker.status(name)
    assert status.state == "held"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_hold_releases_on_a_signal(file_url: str, name: str, sig: int, children: list) -> None:
    child = start(children, "hold", "-b", file_url, name)
    assert (child.line() or "").startswith("held ")
    child.proc.send_signal(sig)
    assert child.rest() == [f"released {name}"]
    assert child.finish() == 0
    # Python's own SIGINT handling did not get in: no KeyboardInterrupt afterwards.
    assert "Traceback" not in child.stderr()
    assert lockhog.Locker(file_url).lock(name).acquire(blocking=False)


def test_contended_hold_exits_1_and_bad_input_2(file_url: str, name: str) -> None:
    with lockhog.Locker(file_url).lock(name):
        contended = Child("hold", "-n", "-b", file_url, name)
        assert contended.finish() == 1
        assert "held" in contended.stderr()
    bad_url = Child("hold", "-b", "nope://x", name)
    assert bad_url.finish() == 2
    assert "invalid backend URL" in bad_url.stderr()
    assert Child("hold", "-b", file_url, "").finish() == 2
    assert Child("no-such-command").finish() == 2
    # Left out of the wheel: it starts its workers as this program again.
    assert Child("torture").finish() == 2


def test_unreachable_backend_exits_69(name: str) -> None:
    child = Child("hold", "-n", "-b", "redis://127.0.0.1:1", name)
    assert child.finish() == 69


def test_run_holds_the_lock_while_the_command_runs(file_url: str, name: str) -> None:
    probe = (
        "import os, sys, lockhog; "
        "lock = lockhog.Locker(sys.argv[1]).lock(os.environ['LOCKHOG_NAME']); "
        "print('free' if lock.acquire(blocking=False) else 'held'); "
        "sys.exit(int(os.environ['LOCKHOG_FENCING_TOKEN']) and 7)"
    )
    child = Child("run", "-b", file_url, name, "--", sys.executable, "-c", probe, file_url)
    assert child.rest() == ["held"]
    assert child.finish() == 7
    assert lockhog.Locker(file_url).lock(name).acquire(blocking=False)


def test_run_contended_exits_with_the_conflict_code(file_url: str, name: str) -> None:
    with lockhog.Locker(file_url).lock(name):
        assert Child("run", "-n", "-b", file_url, name, "--", "true").finish() == 1
        assert Child("run", "-n", "-E", "0", "-b", file_url, name, "--", "true").finish() == 0
    assert Child("run", "-b", file_url, name, "--", "no-such-program-xyz").finish() == 127


def test_run_forwards_sigterm_to_its_command(file_url: str, name: str, children: list) -> None:
    child = start(children, "run", "-b", file_url, name, "--", *WAITER)
    assert child.line() == "started"
    child.proc.send_signal(signal.SIGTERM)
    # The command died of the forwarded SIGTERM, and run reports it as a shell does.
    assert child.finish() == 128 + signal.SIGTERM
    assert lockhog.Locker(file_url).lock(name).acquire(blocking=False)


def test_run_command_dies_with_a_killed_runner(name: str, children: list) -> None:
    # Not a file lock: the lock goes with the runner's connection, so its command must not
    # outlive it (parent-death signal, set up from Python's main thread).
    url = server_url("REDIS")
    child = start(children, "run", "-b", url, name, "--", *WAITER)
    assert child.line() == "started"
    child.proc.kill()
    # The command shares the runner's stdout: it ends only once the command is gone too.
    assert child.rest() == []


def test_status_and_cleanup(file_url: str, name: str, children: list) -> None:
    holder = start(children, "hold", "-b", file_url, name)
    assert (holder.line() or "").startswith("held ")
    status = Child("status", "-b", file_url, name)
    [line] = status.rest()
    assert line.split(" ")[:2] == ["held", name]
    assert status.finish() == 0
    holder.send("release\n")
    assert holder.finish() == 0
    cleanup = Child("cleanup", "-b", file_url)
    assert cleanup.rest() == ["cleanup: removed 1 kept 0"]
    assert cleanup.finish() == 0


def test_the_command_runs_only_on_the_main_thread() -> None:
    # `run` ties its command's life to the thread that started it, and the command takes
    # over SIGINT and SIGTERM: elsewhere than on the main thread it is refused.
    from lockhog import _lockhog

    raised: list = []

    def call() -> None:
        try:
            _lockhog._cli(["lockhog", "--version"])
        except RuntimeError as e:
            raised.append(e)

    t = threading.Thread(target=call)
    t.start()
    t.join(BOUND)
    assert len(raised) == 1 and "main thread" in str(raised[0])
