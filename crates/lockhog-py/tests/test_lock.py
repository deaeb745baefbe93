"""The lock API on every backend of the wheel: acquire/release, with, decorator, exceptions,
fencing tokens, hashed names, status and cleanup."""

from __future__ import annotations

import hashlib
import struct

import pytest

import lockhog
from conftest import BOUND


def test_acquire_and_release_like_threading_lock(any_url: str, name: str) -> None:
    locker = lockhog.Locker(any_url)
    first, second = locker.lock(name), locker.lock(name)
    assert first.acquire(timeout=BOUND) is True
    assert first.held and first.attempts >= 1
    assert second.acquire(blocking=False) is False
    assert not second.held
    token = first.fencing_token
    assert first.release() is True
    assert second.acquire(timeout=BOUND) is True
    assert second.fencing_token > token
    assert second.release() is True
    with pytest.raises(RuntimeError):
        second.release()


def test_with_and_decorator_raise_when_not_acquired(any_url: str, name: str) -> None:
    locker = lockhog.Locker(any_url)
    ran = []

    @locker.lock(name, blocking=False)
    def job() -> str:
        ran.append(1)
        return "done"

    with locker.lock(name, timeout=BOUND) as held:
        assert held.resource
        with pytest.raises(lockhog.Contended) as contended:
            job()
        assert contended.value.name == name
        with pytest.raises(lockhog.TimedOut) as timed_out:
            with locker.lock(name, timeout=0.05):
                ran.append(2)
        assert timed_out.value.waited >= 0.05
        assert isinstance(timed_out.value, lockhog.NotAcquired)
    assert ran == []
    assert job() == "done" and ran == [1]


def test_exception_hierarchy() -> None:
    assert issubclass(lockhog.Contended, lockhog.NotAcquired)
    assert issubclass(lockhog.TimedOut, lockhog.NotAcquired)
    for cls in (lockhog.NotAcquired, lockhog.BackendError, lockhog.InvalidName, lockhog.InvalidUrl):
        assert issubclass(cls, lockhog.LockhogError)
    for cls in (lockhog.InvalidName, lockhog.InvalidUrl, lockhog.InvalidOption):
        assert issubclass(cls, ValueError)


@pytest.mark.parametrize(
    "url", ["nope://x", "file://relative/dir", "mem:?bogus=1", "redis://127.0.0.1:1?bogus=1"]
)
def test_bad_url_is_invalid_url(url: str) -> None:
    with pytest.raises(lockhog.InvalidUrl):
        lockhog.Locker(url)


def test_bad_input(mem: lockhog.Locker) -> None:
    with pytest.raises(lockhog.InvalidName):
        mem.lock("").acquire()
    with pytest.raises(lockhog.InvalidName):
        mem.lock("x" * 1025).acquire()
    with pytest.raises(lockhog.InvalidOption):
        mem.lock("a", timeout=-0.5).acquire()
    with pytest.raises(lockhog.InvalidOption):
        mem.lock("a").acquire(timeout=-2)
    with pytest.raises(lockhog.InvalidOption):
        mem.lock("a", timeout=float("nan")).acquire()
    with pytest.raises(lockhog.InvalidOption):
        mem.lock("a", ttl=0).acquire()
    with pytest.raises(lockhog.InvalidOption):
        mem.lock("a", blocking=False, timeout=1).acquire()
    with pytest.raises(TypeError):
        mem.lock(1.5).acquire()  # type: ignore[arg-type]
    with pytest.raises(lockhog.InvalidOption):
        lockhog.Locker("mem:", namespace="")
    # Nothing was taken by any of them.
    assert mem.lock("a").acquire(blocking=False)


def test_threading_timeout_minus_one_waits_forever(mem: lockhog.Locker, name: str) -> None:
    lock = mem.lock(name, timeout=0.01)
    assert lock.acquire(timeout=-1)
    assert lock.release()


def test_hashed_names_are_pinned(mem: lockhog.Locker) -> None:
    def le64(n: int) -> bytes:
        return struct.pack("<Q", n)

    def encoded(key: object) -> bytes:
        # The documented encoding, independently of the Rust code.
        if isinstance(key, str):
            raw = key.encode()
            return b"s" + le64(len(raw)) + raw
        if isinstance(key, bytes):
            return b"b" + le64(len(key)) + key
        if isinstance(key, int):
            return b"i" + key.to_bytes(16, "little", signed=True)
        assert isinstance(key, tuple)
        return b"t" + le64(len(key)) + b"".join(encoded(k) for k in key)

    for key in [("pay", 1234), b"\x00\xff", -1, ("a", (b"b", 2**100, "ü")), ()]:
        expected = "sha256:" + hashlib.sha256(encoded(key)).hexdigest()
        assert lockhog.hashed_name(key) == expected  # type: ignore[arg-type]
    # Pinned: a change of encoding would move every hashed lock to another name.
    assert lockhog.hashed_name(("pay", 1234)) == (
        "sha256:63f43e98aa2200ac9240d2f196a2a322f9e61f921510d7e3e2827d6dd128e02c"
    )
    assert lockhog.hashed_name("plain") == "plain"
    # The same key is the same lock; True is 1, as in Python's own hashing.
    held = mem.lock(("invoice", 42))
    assert held.acquire(blocking=False)
    assert not mem.lock(("invoice", 42)).acquire(blocking=False)
    assert mem.lock(("invoice", 43)).acquire(blocking=False)
    assert held.name == lockhog.hashed_name(("invoice", 42))


def test_status_and_cleanup_on_files(file_url: str, name: str) -> None:
    locker = lockhog.Locker(file_url, namespace="py-status")
    lock = locker.lock(name)
    with lock:
        [status] = locker.status(name)
        assert status.state == "held" and status.resource == lock.resource
        assert locker.cleanup().removed == 0
    [status] = locker.status(name)
    assert status.state == "free"
    report = locker.cleanup()
    assert report.removed >= 1


def test_namespaces_keep_locks_apart(mem: lockhog.Locker, name: str) -> None:
    a = lockhog.Locker("mem:", namespace="app-a")
    assert a.namespace == "app-a"
    with a.lock(name):
        assert mem.lock(name).acquire(blocking=False)


def test_locker_without_url_uses_lockhog_url(
    monkeypatch: pytest.MonkeyPatch, file_url: str
) -> None:
    monkeypatch.setenv("LOCKHOG_URL", file_url)
    assert lockhog.Locker().url == file_url
    monkeypatch.delenv("LOCKHOG_URL")
    assert lockhog.Locker().url == lockhog.default_url()


def test_password_never_in_messages(name: str) -> None:
    from conftest import server_url

    url = server_url("POSTGRES")
    secret = "Wr0ng-pw-5ecret"
    user_end = url.index("@")
    scheme_end = url.index("://") + 3
    user = url[scheme_end:user_end].split(":")[0]
    bad = f"{url[:scheme_end]}{user}:{secret}{url[user_end:]}"
    with pytest.raises(lockhog.BackendError) as err:
        lockhog.Locker(bad).lock(name).acquire(blocking=False)
    assert err.value.backend == "postgres"
    for text in (str(err.value), repr(err.value), repr(err.value.args)):
        assert secret not in text
    locker = lockhog.Locker(url)
    password = url[scheme_end:user_end].split(":")[1]
    assert f":{password}@" not in locker.url + repr(locker)


def test_lost_is_false_while_held_and_wait_lost_ends_on_release(mem: lockhog.Locker, name: str) -> None:
    lock = mem.lock(name)
    with lock:
        assert lock.lost is False and lock.lost_reason is None
        assert lock.wait_lost(timeout=0) is None


def test_help_reads_well() -> None:
    import inspect
    import pydoc

    text = pydoc.render_doc(lockhog, renderer=pydoc.plaintext)
    for word in ("Locker", "fencing token", "NotAcquired", "fork"):
        assert word in text
    for public in lockhog.__all__:
        obj = getattr(lockhog, public)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert obj.__doc__, public
