"""Compute a value once across processes (py-dspinlock's ``cached_if_computed``), the values
kept in Redis where Rust's ``lockhog::compute_once`` keeps them.

The steps are those of the Rust function (read; else lock ``compute-once:<key>``; read again;
else compute, store, release), so Python and Rust callers of one key share the value and the
lock. They run here rather than in Rust so that ``func`` runs on the caller's thread.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Optional, TypeVar

from . import _lockhog
from ._lock import Locker

__all__ = ["ComputeOnce", "compute_once"]

F = TypeVar("F", bound=Callable[..., bytes])


class ComputeOnce:
    """Values computed once per key by everyone using ``locker`` (its namespace) and the Redis
    at ``store_url`` (``redis://`` or ``rediss://``, often the locker's own URL)."""

    def __init__(self, locker: Locker, store_url: str) -> None:
        self._locker = locker
        self._store = _lockhog.NativeStore.connect(store_url)

    def get_or_compute(self, key: str, ttl: float, func: Callable[[], bytes]) -> bytes:
        """The value of ``key``: the stored one, else the one ``func`` returns (run once,
        whoever else asks at the same time), stored for ``ttl`` seconds. When ``func``
        raises, nothing is stored and the next waiter computes."""
        ns = self._locker.namespace
        found = self._store.get(ns, key)
        if found is not None:
            return found
        with self._locker.lock(f"compute-once:{key}"):
            found = self._store.get(ns, key)
            if found is not None:
                return found
            value = func()
            self._store.put(ns, key, value, ttl)
            return value

    def cached(
        self, ttl: float, key: Optional[Callable[..., str]] = None
    ) -> Callable[[F], F]:
        """Decorates a function returning ``bytes`` so that each distinct call is computed
        once within ``ttl``. ``key(*args, **kwargs)`` names a call; by default the function's
        qualified name and the digest of its (str, bytes, int) arguments."""

        def decorate(func: F) -> F:
            @functools.wraps(func)
            def run(*args: Any, **kwargs: Any) -> bytes:
                if key is not None:
                    name = key(*args, **kwargs)
                else:
                    call = (args, tuple(sorted(kwargs.items())))
                    digest = _lockhog.hashed_name(call)
                    name = f"{func.__module__}.{func.__qualname__}:{digest}"
                return self.get_or_compute(name, ttl, lambda: func(*args, **kwargs))

            return run  # type: ignore[return-value]

        return decorate


def compute_once(
    locker: Locker, store_url: str, key: str, ttl: float, func: Callable[[], bytes]
) -> bytes:
    """``ComputeOnce(locker, store_url).get_or_compute(key, ttl, func)`` in one call."""
    return ComputeOnce(locker, store_url).get_or_compute(key, ttl, func)
