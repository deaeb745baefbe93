"""Hog a lock from another process with ``lockhog hold``: a context manager for tests.

    with hog_lock("file:///tmp/locks", "pay-individual-42") as held:
        ...  # the lock is held by the child until the block ends

It follows the ``hold`` contract: the child prints ``held <NAME> <RESOURCE> <TOKEN>`` per lock
(fields percent-encoded) once every lock is held, releases on a ``release`` line on its stdin
and prints ``released <NAME>``, and exits without releasing on ``abandon``. Every wait here is
bounded: a child that does not say ``held`` in time, or does not exit in time, is killed and
the test fails with a message.
"""

import contextlib
import os
import queue
import subprocess
import threading
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


def lockhog_binary() -> str:
    """``$LOCKHOG_BIN``, else the debug build of this repository."""
    explicit = os.environ.get("LOCKHOG_BIN")
    if explicit:
        return explicit
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(REPO, "target"))
    candidate = os.path.join(target, "debug", "lockhog")
    if not os.access(candidate, os.X_OK):
        raise RuntimeError(
            f"no lockhog binary at {candidate}: run `cargo build -p lockhog-cli` "
            "or set LOCKHOG_BIN"
        )
    return candidate


class HeldLock:
    def __init__(self, line: str):
        fields = line.rstrip("\n").split(" ")
        if len(fields) != 4 or fields[0] != "held":
            raise RuntimeError(f"lockhog hold printed an unexpected line: {line!r}")
        self.name = urllib.parse.unquote(fields[1])
        self.resource = urllib.parse.unquote(fields[2])
        # `-`: a lock without a fencing token (a resource the store does not number).
        self.token = None if fields[3] == "-" else int(fields[3])


@contextlib.contextmanager
def hog_lock(
    url: str,
    *names: str,
    resources: "tuple[str, ...]" = (),
    acquire_timeout: float = 10.0,
    release_timeout: float = 5.0,
):
    """Holds ``names``, then ``resources`` (locks another program takes, ``--resource``), on
    the backend at ``url`` from a ``lockhog hold`` child process."""
    flags = [arg for res in resources for arg in ("--resource", res)]
    expected = len(names) + len(resources)
    # The URL goes in the child's environment, not its argv: every local user can read a
    # process's command line (/proc/PID/cmdline), and the URL may carry a password.
    child = subprocess.Popen(
        [lockhog_binary(), "hold", "-w", str(acquire_timeout), *flags, "--", *names],
        env={**os.environ, "LOCKHOG_URL": url},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: "queue.Queue[str | None]" = queue.Queue()

    def read_stdout():
        for line in child.stdout:
            lines.put(line)
        lines.put(None)  # end of output

    threading.Thread(target=read_stdout, daemon=True).start()
    try:
        held = []
        while len(held) < expected:
            try:
                line = lines.get(timeout=acquire_timeout + release_timeout)
            except queue.Empty:
                raise RuntimeError(
                    f"lockhog hold did not hold {names} {resources} in time"
                ) from None
            if line is None:
                child.wait(timeout=release_timeout)
                raise RuntimeError(
                    f"lockhog hold exited with {child.returncode} before holding: "
                    f"{child.stderr.read().strip()}"
                )
            held.append(HeldLock(line))
        yield held
        child.stdin.write("release\n")
        child.stdin.flush()
        child.stdin.close()
        code = child.wait(timeout=release_timeout)
        if code != 0:
            raise RuntimeError(f"lockhog hold exited with {code} on release")
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        for stream in (child.stdin, child.stdout, child.stderr):
            with contextlib.suppress(Exception):
                stream.close()
