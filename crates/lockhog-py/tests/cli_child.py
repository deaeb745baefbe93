"""A ``python -m lockhog`` child process for tests, every read of its output bounded."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
from typing import Dict, List, Optional

from conftest import BOUND


class Child:
    """``python -m lockhog ARGS`` (or ``python -c CODE ARGS`` with ``code=``), its stdout
    read line by line on a thread so that a test waits for a line at most ``BOUND``
    seconds."""

    def __init__(
        self, *args: str, code: Optional[str] = None, env: Optional[Dict[str, str]] = None
    ) -> None:
        head = ["-m", "lockhog"] if code is None else ["-c", code]
        self.proc = subprocess.Popen(
            [sys.executable, *head, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )
        self._lines: "queue.Queue[Optional[str]]" = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def line(self) -> Optional[str]:
        """The next line of stdout, None at its end."""
        try:
            return self._lines.get(timeout=BOUND)
        except queue.Empty:
            raise AssertionError(f"no output from lockhog within {BOUND}s") from None

    def send(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text)
        self.proc.stdin.flush()

    def finish(self) -> int:
        """Waits (bounded) for the exit; the status."""
        return self.proc.wait(BOUND)

    def rest(self) -> List[str]:
        """Every line still to come, once stdout ends."""
        out = []
        while (line := self.line()) is not None:
            out.append(line)
        return out

    def stderr(self) -> str:
        assert self.proc.stderr is not None
        return self.proc.stderr.read()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(BOUND)
