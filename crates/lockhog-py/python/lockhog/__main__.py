"""``python -m lockhog ...``: the ``lockhog`` command (run, hold, status, cleanup) from the
wheel, with the same options, output and exit statuses as the binary."""

import signal
import sys

from ._lockhog import _cli


def main() -> int:
    """Runs the command on ``sys.argv`` and returns its exit status."""
    # The command catches SIGINT and SIGTERM itself (hold releases, run forwards them). With
    # Python's own SIGINT handler left in place, Python would also raise KeyboardInterrupt
    # once the command returned.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    return _cli(["python -m lockhog", *sys.argv[1:]])


if __name__ == "__main__":
    sys.exit(main())
