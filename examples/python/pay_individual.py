"""The code under test: pay an individual, refusing to run twice at once.

The lock is a `flock(2)` on ``<lock_dir>/<name>.lock`` -- the same file and the same kind of
lock as lockhog's default ``file://`` backend, so ``lockhog hold`` can hog it from outside.
"""

import fcntl
import os


class AlreadyPayingIndividual(Exception):
    """Someone else is paying this individual right now."""


def lock_path(lock_dir: str, individual_id: int) -> str:
    return os.path.join(lock_dir, f"pay-individual-{individual_id}.lock")


def pay_individual(lock_dir: str, individual_id: int, amount: int) -> int:
    fd = os.open(lock_path(lock_dir, individual_id), os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as e:
            raise AlreadyPayingIndividual(individual_id) from e
        return amount  # the actual payment
    finally:
        os.close(fd)  # closing the descriptor releases the lock
