"""A hog in a child process, for locks only another process can block: lockhog locks
through ``python -m lockhog hold``, and POSIX file locks through a small Python child.

Both children speak ``hold``'s protocol: a line ``held …`` once the lock is held, then
``release`` (or the end of stdin) releases it, and ``released …`` is printed. The lock's
URL goes in the child's environment, never on its command line (which every local user can
read). Every wait on the child is bounded; a child that overruns one is killed."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
import urllib.parse
from typing import IO, Dict, List, Optional

from ._errors import HogAcquireFailed, HogAcquireTimedOut, HoggerStillAlive, HogReleaseFailed
from ._hoggers import FileLock

__all__ = ["ProcessHog", "FILE_CHILD"]

#: The child that holds a file lock: argv is (path, kind).
FILE_CHILD = """
import fcntl, os, sys
path, kind = sys.argv[1], sys.argv[2]
fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
if kind in ("flock", "both"):
    fcntl.flock(fd, fcntl.LOCK_EX)
if kind in ("lockf", "both"):
    fcntl.lockf(fd, fcntl.LOCK_EX)
print("held", path, flush=True)
for line in sys.stdin:
    if line.strip() == "release":
        break
os.close(fd)
print("released", path, flush=True)
"""


class ProcessHog:
    """One hold in a child process running ``argv``: ``start()`` returns once it says
    ``held``."""

    def __init__(
        self,
        argv: List[str],
        env: Dict[str, str],
        acquire_timeout: float,
        release_timeout: float,
        timed_out_status: Optional[int] = None,
    ) -> None:
        self._argv = argv
        # The exit status by which the child says its own wait ran out.
        self._timed_out_status = timed_out_status
        self._env = env
        self._acquire_timeout = acquire_timeout
        self._release_timeout = release_timeout
        self._lines: "queue.Queue[Optional[str]]" = queue.Queue()
        self._stderr: List[str] = []
        self._stderr_done = threading.Event()
        self._child: Optional["subprocess.Popen[str]"] = None
        #: The child's ``held`` line, split into fields (percent-decoded).
        self.held: List[str] = []

    @classmethod
    def for_file(
        cls, lock: FileLock, acquire_timeout: float, release_timeout: float
    ) -> ProcessHog:
        argv = [sys.executable, "-c", FILE_CHILD, lock.path, lock.kind]
        return cls(argv, {}, acquire_timeout, release_timeout)

    @classmethod
    def for_hold(
        cls, args: List[str], env: Dict[str, str], acquire_timeout: float, release_timeout: float
    ) -> ProcessHog:
        argv = [sys.executable, "-m", "lockhog", *args]
        # `lockhog hold -w` exits 1 when its wait ran out.
        return cls(argv, env, acquire_timeout, release_timeout, timed_out_status=1)

    @property
    def pid(self) -> int:
        """The child's process id."""
        assert self._child is not None
        return self._child.pid

    def _pump(self, stream: IO[str], into: "queue.Queue[Optional[str]]") -> None:
        for line in stream:
            into.put(line.rstrip("\n"))
        into.put(None)

    def _drain_stderr(self, stream: IO[str]) -> None:
        self._stderr.extend(stream)
        self._stderr_done.set()

    def _said(self) -> str:
        text = "".join(self._stderr).strip()
        return f": {text}" if text else ""

    def _kill(self) -> None:
        assert self._child is not None
        if self._child.poll() is None:
            self._child.kill()
        self._child.wait()

    def start(self) -> None:
        started = time.monotonic()
        child = subprocess.Popen(
            self._argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **self._env},
        )
        self._child = child
        assert child.stdout is not None and child.stderr is not None
        out = threading.Thread(target=self._pump, args=(child.stdout, self._lines), daemon=True)
        err = threading.Thread(target=self._drain_stderr, args=(child.stderr,), daemon=True)
        out.start()
        err.start()
        left = self._acquire_timeout - (time.monotonic() - started)
        try:
            line = self._lines.get(timeout=max(left, 0.0))
        except queue.Empty:
            line = "timed out"
        if line is not None and line.startswith("held "):
            self.held = [urllib.parse.unquote(f) for f in line.split(" ")[1:]]
            return
        self._kill()
        self._stderr_done.wait(self._release_timeout)
        if line == "timed out" or child.returncode == self._timed_out_status:
            raise HogAcquireTimedOut(self._acquire_timeout, self._said())
        raise HogAcquireFailed(
            f"the hog process exited with status {child.returncode} instead of acquiring "
            f"the lock{self._said()}"
        )

    def release(self) -> None:
        child = self._child
        assert child is not None and child.stdin is not None
        try:
            child.stdin.write("release\n")
            child.stdin.close()
        except BrokenPipeError:
            pass  # it exited already; its status says how
        try:
            status = child.wait(self._release_timeout)
        except subprocess.TimeoutExpired:
            self._kill()
            raise HoggerStillAlive(self._release_timeout) from None
        if status != 0:
            self._stderr_done.wait(self._release_timeout)
            raise HogReleaseFailed(f"the hog process exited with status {status}{self._said()}")

    def abandon(self) -> None:
        """Kills the child without a release, as a crash would: locks bound to its
        connection or descriptor go with it, leases stay until they run out."""
        self._kill()
