"""lockhog: named locks that hold across threads, processes and machines.

One API over many stores: lock files (the default), SQLite, PostgreSQL advisory locks,
MySQL named locks, Redis and Redlock, memcached. Each held lock has a fencing token.

    import lockhog

    locker = lockhog.Locker("redis://127.0.0.1:6379", namespace="my-app")
    with locker.lock("nightly-report", timeout=5) as lock:
        write_report(token=lock.fencing_token)

    lock = locker.lock("nightly-report")
    if lock.acquire(blocking=False):      # True/False, like threading.Lock
        try:
            ...
        finally:
            lock.release()                # True: it was still ours

    @locker.lock(("invoice", 42))         # tuples of str/bytes/int are hashed to a name
    def pay() -> None: ...

    async with locker.lock("job"):        # asyncio: the event loop keeps running
        ...

Blocking waits release the GIL and Ctrl-C interrupts them (nothing stays held). Exceptions:
``LockhogError``, with ``NotAcquired`` (``Contended``, ``TimedOut``), ``BackendError``, and
``InvalidName``/``InvalidUrl``/``InvalidOption`` (also ``ValueError``).

``locker.semaphore(name, permits)`` is one of ``permits`` permits (at most that many holders
at once), used like a lock; ``locker.lock_all([names])`` takes several locks, all or none,
within one timeout.

``locker.lock_resource(resource)`` is the lock another program takes, by its resource
(``/run/app.pid``, ``advisory:42``, a MySQL ``GET_LOCK`` name): hog it in a test and the code
under test finds its own lock held.

``python -m lockhog hold|run|status|cleanup ...`` is the ``lockhog`` command. For tests,
``lockhog.hog`` hogs locks from another thread, task or process (``hog_lock``,
``async_hog_lock``) and runs the one-winner race (``contend``); the wheel's pytest plugin
adds the fixtures ``hog`` and ``locker``.

After ``os.fork()`` the child must not use lockers or locks made before the fork: the
runtime's threads do not exist in the child, so a call would wait forever. Locks the parent
held stay the parent's (the child must not release them); with the file backend a child
that keeps the inherited descriptor open keeps the lock held even after the parent exits.
Make new ``Locker`` objects in the child.
"""

from ._compute import ComputeOnce, compute_once
from ._errors import (
    BackendError,
    Contended,
    InvalidName,
    InvalidOption,
    InvalidUrl,
    LockhogError,
    NotAcquired,
    TimedOut,
)
from ._lock import URL_ENV, CleanupReport, Lock, Locker, LockStatus, Name
from ._lock_all import LockAll
from ._lockhog import default_url as _default_url
from ._lockhog import hashed_name as _hashed_name
from ._semaphore import Semaphore

__all__ = [
    "Locker",
    "Lock",
    "Semaphore",
    "LockAll",
    "LockStatus",
    "CleanupReport",
    "Name",
    "ComputeOnce",
    "compute_once",
    "hashed_name",
    "default_url",
    "URL_ENV",
    "LockhogError",
    "NotAcquired",
    "Contended",
    "TimedOut",
    "BackendError",
    "InvalidName",
    "InvalidUrl",
    "InvalidOption",
]

def hashed_name(key: Name) -> str:
    """The lock name ``key`` stands for: a ``str`` as it is; ``bytes``, an ``int`` (up to 128
    bits) or a tuple of those ``sha256:<64 hex digits>``, the same in every process, on every
    machine and in Rust's ``Locker::lock_hashed``. The digest is over a tag and the value:
    ``s``/``b`` + 8-byte little-endian length + UTF-8/raw bytes, ``i`` + 16-byte little-endian
    two's complement, ``t`` + 8-byte length + each item."""
    return _hashed_name(key)


def default_url() -> str:
    """The URL a ``Locker()`` connects to when ``LOCKHOG_URL`` is unset:
    ``file://$XDG_RUNTIME_DIR/lockhog``, else ``file:///tmp/lockhog-<uid>``."""
    return _default_url()
