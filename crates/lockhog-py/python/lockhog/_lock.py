"""``Locker`` (a connection to one lock store) and ``Lock`` (one lock: named, or a resource
another program names)."""

from __future__ import annotations

import functools
import inspect
import os
import urllib.parse
from typing import (
    Any,
    Awaitable,
    Callable,
    Dict,
    List,
    NamedTuple,
    Optional,
    Sequence,
    TYPE_CHECKING,
    Tuple,
    TypeVar,
    Union,
    cast,
)

from . import _lockhog
from ._acquirable import Acquirable
from ._lock_all import LockAll

if TYPE_CHECKING:
    # Semaphore is a Lock, so its module imports this one.
    from ._semaphore import Semaphore

__all__ = ["Locker", "Lock", "LockStatus", "CleanupReport", "Name", "URL_ENV"]

#: The environment variable a ``Locker()`` without a URL reads.
URL_ENV = "LOCKHOG_URL"

#: What a lock may be named by: a ``str`` is the name itself; ``bytes``, an ``int`` or a tuple
#: of those (nested tuples too) name the lock ``sha256:<digest>`` (see ``hashed_name``).
Name = Union[str, bytes, int, Tuple[Any, ...]]

F = TypeVar("F", bound=Callable[..., Any])


class LockStatus(NamedTuple):
    """One lock as ``Locker.status`` reports it."""

    #: The lock's name, when the backend can recover it from the resource.
    name: Optional[str]
    #: The backend's own name for the lock (a file path, ``advisory:<key>``, a Redis key).
    resource: str
    #: ``"held"``, ``"free"`` or ``"unknown"``.
    state: str
    #: Who holds it, when the backend knows (e.g. ``"pid 4242"``).
    holder: Optional[str]


class CleanupReport(NamedTuple):
    """What ``Locker.cleanup`` did."""

    #: Stale resources removed (unheld lock files, expired rows).
    removed: int
    #: Resources left because they were held.
    kept: int


class Locker:
    """A connection to one lock store, and the factory of its locks.

    ``url`` names the backend: ``file:///abs/dir``, ``mem:``, ``sqlite:///abs/path.db``,
    ``postgres://…``, ``mysql://…``, ``redis://…``, ``rediss://…``,
    ``redlock://h1:p1,h2:p2,h3:p3``, ``memcached://host:port``; query options ``namespace=``
    and ``ttl=`` apply to all. Without a URL the ``LOCKHOG_URL`` environment variable is used,
    else the default file directory (``default_url()``), as the ``lockhog`` command does.
    ``namespace`` keeps these locks apart from those of other applications on the same store.

    Connecting blocks (the GIL released, Ctrl-C honoured); in asyncio code use
    ``await Locker.connect_async(...)``. A locker is safe to share between threads and tasks.

    Raises ``InvalidUrl`` for a URL that cannot be used, ``InvalidOption`` for a bad
    namespace or ttl, ``BackendError`` when the store cannot be reached.
    """

    def __init__(self, url: Optional[str] = None, namespace: Optional[str] = None) -> None:
        self._native = _lockhog.NativeLocker.connect(url, namespace)
        # As given (password included), for a hog's `lockhog hold` child, which gets it in
        # its environment, never on its command line.
        self._raw_url = url

    @classmethod
    async def connect_async(
        cls, url: Optional[str] = None, namespace: Optional[str] = None
    ) -> Locker:
        """Connects as ``Locker(url, namespace)`` does, without blocking the event loop."""
        locker = cls.__new__(cls)
        locker._native = await _lockhog.NativeLocker.connect_async(url, namespace)
        locker._raw_url = url
        return locker

    def _child_url(self) -> str:
        """The URL, password included, with this locker's namespace: for another process
        that must reach the same locks (``lockhog hold``)."""
        url = self._raw_url or os.environ.get(URL_ENV) or _lockhog.default_url()
        base, _, query = url.partition("?")
        # Query values are kept as written; only the namespace is set, to this locker's.
        options = [o for o in query.split("&") if o and not o.startswith("namespace=")]
        options.append("namespace=" + urllib.parse.quote(self.namespace, safe=""))
        return base + "?" + "&".join(options)

    @property
    def url(self) -> str:
        """The URL this locker was made from, password redacted."""
        return self._native.url

    @property
    def namespace(self) -> str:
        """The namespace its locks live in."""
        return self._native.namespace

    def capabilities(self) -> Dict[str, bool]:
        """What the backend guarantees: ``lease``, ``native_fencing``, ``lost_notice``,
        ``fair``, ``shared``, ``crash_release``, ``native_wait``, ``cross_process``,
        ``resource_fencing`` (a lock of ``lock_resource`` gets a fencing token),
        ``semaphore`` (``semaphore()`` works), ``shared_writer_priority`` (a waiting writer
        holds back later readers), ``steal_after``, ``free_fencing`` (the token costs
        nothing: kept even with ``fencing=off``)."""
        return self._native.capabilities()

    def lock(
        self,
        name: Name,
        *,
        blocking: bool = True,
        timeout: Optional[float] = None,
        ttl: Optional[float] = None,
        shared: bool = False,
    ) -> Lock:
        """The lock ``name`` (nothing is taken until it is acquired or entered).

        ``blocking=False`` tries once; otherwise it waits, at most ``timeout`` seconds when
        given. ``ttl`` is the lease of lease backends (Redis, memcached, SQLite), renewed while
        held. ``shared=True`` asks for a reader lock (where ``capabilities()["shared"]``: file,
        SQLite, PostgreSQL, Redis, etcd; otherwise ``InvalidOption``). Bad values raise when the
        lock is acquired, before any I/O: ``InvalidName``, ``InvalidOption``.
        """
        return Lock(self, name, blocking=blocking, timeout=timeout, ttl=ttl, shared=shared)

    def semaphore(
        self,
        name: Name,
        permits: int,
        *,
        blocking: bool = True,
        timeout: Optional[float] = None,
        ttl: Optional[float] = None,
    ) -> Semaphore:
        """One of the ``permits`` permits of the counting semaphore ``name``: at most
        ``permits`` holders at once, across threads, processes and machines. Used like
        ``lock()`` (``acquire``/``release``, ``with``, ``async with``, a decorator); each
        holder gets a permit of its own, with its own ``fencing_token`` and ``resource``
        (``name#permit-<i>``). One object may hold several permits at once, from several
        threads, as a ``threading.Semaphore`` does.

        The count is kept in the store: asking another ``permits`` for a name in use raises
        ``InvalidOption`` when acquired, as does a backend without semaphores
        (``capabilities()["semaphore"]``) or a count of 0 or over 1024.
        """
        from ._semaphore import Semaphore

        return Semaphore(self, name, permits, blocking=blocking, timeout=timeout, ttl=ttl)

    def lock_all(
        self,
        names: Sequence[Name],
        *,
        resources: Sequence[str] = (),
        blocking: bool = True,
        timeout: Optional[float] = None,
        ttl: Optional[float] = None,
    ) -> LockAll:
        """All the locks ``names`` (and the ``resources`` other programs name, see
        ``lock_resource``) at once: acquiring holds every one of them or none, within one
        ``timeout`` for the whole set. They are taken in one order every caller shares, so
        two callers taking overlapping sets cannot deadlock, and given back last first. Use
        it like ``lock()``: ``acquire``/``release``, ``with``, ``async with``."""
        if isinstance(names, (str, bytes)) or isinstance(resources, str):
            raise TypeError("names and resources are sequences, not one str")
        return LockAll(
            self, list(names), list(resources), blocking=blocking, timeout=timeout, ttl=ttl
        )

    def lock_resource(
        self,
        resource: str,
        *,
        blocking: bool = True,
        timeout: Optional[float] = None,
        ttl: Optional[float] = None,
    ) -> Lock:
        """The lock another program takes, addressed by its resource in the store's own
        convention (the RESOURCE ``lockhog hold`` and ``status`` print): on ``file:`` an
        absolute path (``fcntl.flock`` on it; ``fcntl.lockf`` with ``?mode=fcntl``), never
        written; on ``postgres:`` ``advisory:<i64>`` (``pg_advisory_lock(42)``,
        ``pg_try_advisory_xact_lock(42)``) or ``advisory:<i32>,<i32>``
        (``pg_advisory_lock(7, 99)``); on ``mysql:`` the ``GET_LOCK`` name. Hog it in a test
        to make the code under test find its own lock taken.

        Returns the same ``Lock`` as ``lock()``, whose ``name`` and ``resource`` are the
        resource as the backend writes it (``advisory:007`` is ``advisory:7``). The namespace
        does not apply. ``fencing_token`` is None unless the store numbers its holders itself
        (``capabilities()["resource_fencing"]``). A resource the backend cannot lock (a
        relative path, a key out of range, any resource on ``mem:`` or ``sqlite:``) raises
        ``InvalidOption`` (a ``ValueError``) here, at the call, before any I/O.
        """
        checked = self._native.check_resource(resource)
        lock = Lock(self, checked, blocking=blocking, timeout=timeout, ttl=ttl)
        lock._by_resource = True
        return lock

    def resource(self, name: str) -> str:
        """The backend's own name for the lock ``name`` (a file path, a Redis key)."""
        return self._native.resource(name)

    def status(self, *names: str, resources: Sequence[str] = ()) -> List[LockStatus]:
        """The state of the locks ``names``, then of the ``resources`` other programs name
        (see ``lock_resource``; a bad one raises ``InvalidOption``); of every lock the
        backend can list when both are left out."""
        if isinstance(resources, str):
            raise TypeError("resources is a sequence of resources, not one str")
        found = self._native.status(list(names), list(resources))
        return [LockStatus(*s) for s in found]

    def cleanup(self) -> CleanupReport:
        """Removes stale resources of this namespace that nobody holds."""
        return CleanupReport(*self._native.cleanup())

    def __repr__(self) -> str:
        return f"Locker({self.url!r}, namespace={self.namespace!r})"


class Lock(Acquirable[_lockhog.NativeGuard]):
    """One lock of a ``Locker``, by name or by resource (``lock_resource``): use it with
    ``with`` / ``async with``, as a decorator, or with ``acquire()`` / ``release()``.

    ``acquire()`` returns ``True`` or ``False`` like ``threading.Lock.acquire``; entering it
    (``with``, ``async with``, a decorated call) raises ``Contended`` or ``TimedOut`` instead,
    and the body does not run. While held, ``fencing_token``, ``resource`` and ``lost`` say
    how it was taken. A ``Lock`` is safe to share between threads; it is not reentrant: a
    thread that holds it and acquires it again waits for itself, as with ``threading.Lock``.
    """

    def __init__(
        self,
        locker: Locker,
        name: Name,
        *,
        blocking: bool = True,
        timeout: Optional[float] = None,
        ttl: Optional[float] = None,
        shared: bool = False,
    ) -> None:
        super().__init__(blocking, timeout)
        self._locker = locker
        self._name = name
        self._ttl = ttl
        self._shared = shared
        # True when `name` is a resource another program names (`Locker.lock_resource`).
        self._by_resource = False
        # A permit of a semaphore of this many permits (`Semaphore`), rather than the lock.
        self._permits: Optional[int] = None

    def _hog_twin(self) -> Lock:
        """A lock of the same name and options, not held: what a hog takes, so that this
        object stays as the caller left it."""
        twin = Lock(self._locker, self._name, ttl=self._ttl, shared=self._shared)
        twin._by_resource = self._by_resource
        twin._permits = self._permits
        return twin

    def _hold_command(self, acquire_timeout: float) -> Tuple[List[str], Dict[str, str]]:
        """The arguments of ``lockhog hold`` that take this lock from another process, and
        the environment entries it needs (the URL)."""
        if not self._locker.capabilities()["cross_process"]:
            raise ValueError(f"{self._locker.url!r} is not seen by other processes: hog it from a thread")
        args = ["hold", "-w", repr(acquire_timeout)]
        if self._permits is not None:
            args += ["--permits", str(self._permits)]
        if self._shared:
            args.append("--shared")
        if self._ttl is not None:
            args += ["--ttl", repr(self._ttl)]
        if self._by_resource:
            # One argument, so that a resource starting with "-" is never read as an option.
            return [*args, "--resource=" + self.name], {URL_ENV: self._locker._child_url()}
        return [*args, "--", self.name], {URL_ENV: self._locker._child_url()}

    def _take(self, blocking: Optional[bool] = None, timeout: Optional[float] = None) -> None:
        blocking, timeout = self._wait(blocking, timeout)
        guard = self._locker._native.acquire(
            self._name, blocking, timeout, self._ttl, self._shared, self._by_resource, self._permits
        )
        self._push(guard)

    async def _take_async(
        self, blocking: Optional[bool] = None, timeout: Optional[float] = None
    ) -> None:
        blocking, timeout = self._wait(blocking, timeout)
        guard = await self._locker._native.acquire_async(
            self._name, blocking, timeout, self._ttl, self._shared, self._by_resource, self._permits
        )
        self._push(guard)

    def release(self) -> bool:
        """Releases the lock: ``True`` when it was still ours up to the release, ``False``
        when it had been lost (a lease that ran out, a connection that died). Raises
        ``RuntimeError`` when it is not held through this object, ``BackendError`` when the
        store could not be told (it then frees the lock by its own means)."""
        return self._pop().release()

    async def release_async(self) -> bool:
        """``release`` without blocking the event loop."""
        return await self._pop().release_async()

    @property
    def name(self) -> str:
        """The lock's name (``sha256:…`` for a hashed key; the resource for a lock of
        ``lock_resource``)."""
        return _lockhog.hashed_name(self._name)

    @property
    def fencing_token(self) -> Optional[int]:
        """The fencing token of the held lock: greater than every earlier holder's. Hand it
        to the resource you protect, which refuses writes with a smaller one. A lock taken by
        name always has one; a lock of ``lock_resource`` has None unless the store numbers
        its holders itself (``capabilities()["resource_fencing"]``)."""
        return self._current().fencing_token

    @property
    def resource(self) -> str:
        """The backend's own name for the held lock (a file path, a Redis key); for a lock
        of ``lock_resource``, that resource, held or not."""
        if self._by_resource:
            return self.name
        return self._current().resource

    @property
    def attempts(self) -> int:
        """How many attempts on the store taking the held lock took (1: it was free)."""
        return self._current().attempts

    @property
    def waited(self) -> float:
        """How long taking the held lock took, in seconds."""
        return self._current().waited

    @property
    def lost(self) -> bool:
        """True once the backend reported the held lock lost (a lease that ran out, a
        connection that died): stop writing, the protection is gone."""
        return self._current().lost is not None

    @property
    def lost_reason(self) -> Optional[str]:
        """Why the held lock was lost, or None."""
        return self._current().lost

    def wait_lost(self, timeout: Optional[float] = None) -> Optional[str]:
        """Waits until the held lock is reported lost (returns the reason), or ``timeout``
        seconds pass or the lock is released (returns None)."""
        return self._current().wait_lost(timeout)

    async def wait_lost_async(self) -> Optional[str]:
        """``wait_lost`` for asyncio (no timeout: use ``asyncio.wait_for``)."""
        return await self._current().wait_lost_async()

    def __call__(self, func: F) -> F:
        """Decorates ``func`` (a function or a coroutine function) to run holding the lock;
        when the lock is not acquired it raises ``Contended``/``TimedOut`` and ``func`` does
        not run."""
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                async with self:
                    return await cast(Callable[..., Awaitable[Any]], func)(*args, **kwargs)

            return cast(F, run_async)

        @functools.wraps(func)
        def run(*args: Any, **kwargs: Any) -> Any:
            with self:
                return func(*args, **kwargs)

        return cast(F, run)

    def __repr__(self) -> str:
        state = "held" if self.held else "not held"
        return f"<lockhog.Lock {self.name!r} on {self._locker.url!r}, {state}>"

