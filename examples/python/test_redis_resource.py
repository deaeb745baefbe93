"""Hogging the Redis locks that Python code already takes, by their keys: redis-py's
``Lock("report")`` (its key is the name) and python-redis-lock's ``Lock(r, "report")`` (its key
is ``lock:report``). ``lockhog hold --resource KEY`` blocks them, and they block lockhog
(``lockhog run --no-wait --resource KEY`` exits 1 while they hold the key).

scripts/test installs redis-py and python-redis-lock in its venv (target/py-venv). Needs
``LOCKHOG_TEST_REDIS_URL`` (set by scripts/test) and both packages; skipped without them,
except under ``CI=true``, where either missing is a failure.
"""

import os
import subprocess
import unittest
import uuid

from lockhog_hold import hog_lock, lockhog_binary

try:
    import redis
    import redis_lock
except ImportError:  # reported by need_server
    redis = redis_lock = None

URL = os.environ.get("LOCKHOG_TEST_REDIS_URL", "")
NOT_ACQUIRED = 1  # lockhog's exit code when the lock is taken


# ---------------------------------------------------------------------------------------------
# The code under test: a report that must not be built twice at once.


class AlreadyBuilding(Exception):
    """Someone else is building this report right now."""


def build_report(r, report: str) -> str:
    """Builds ``report`` under redis-py's lock named after it, refusing to wait."""
    return build_under(r.lock(report, timeout=30), report)


def build_report_with_redis_lock(r, report: str) -> str:
    """The same with python-redis-lock, whose key is ``lock:<name>``."""
    return build_under(redis_lock.Lock(r, report, expire=30), report)


def build_under(lock, report: str) -> str:
    if not lock.acquire(blocking=False):
        raise AlreadyBuilding(report)
    try:
        return f"built {report}"
    finally:
        lock.release()


# ---------------------------------------------------------------------------------------------
# The tests


def need_server(test: unittest.TestCase) -> None:
    why = None
    if not URL:
        why = "LOCKHOG_TEST_REDIS_URL is not set: run through scripts/test"
    elif redis is None:
        why = "redis / python-redis-lock are not installed: scripts/test installs them"
    if why:
        if os.environ.get("CI") == "true":
            test.fail(f"CI=true and {why}")
        test.skipTest(why)


def lockhog_try(resource: str) -> int:
    """``lockhog run --no-wait --resource RESOURCE -- true``: its exit code."""
    done = subprocess.run(
        [lockhog_binary(), "run", "--no-wait", "--resource", resource, "--", "true"],
        env={**os.environ, "LOCKHOG_URL": URL},
        capture_output=True,
        text=True,
        timeout=30,
    )
    if done.returncode not in (0, NOT_ACQUIRED):
        raise RuntimeError(f"lockhog run exited with {done.returncode}: {done.stderr}")
    return done.returncode


class TestRedisResource(unittest.TestCase):
    def setUp(self) -> None:
        need_server(self)
        self.r = redis.Redis.from_url(URL, socket_timeout=10)
        self.addCleanup(self.r.close)
        self.report = f"report-{uuid.uuid4().hex}"

    def test_lockhog_blocks_redis_py(self) -> None:
        with hog_lock(URL, resources=(self.report,)) as held:
            self.assertEqual(held[0].resource, self.report)
            self.assertIsNone(held[0].token, "no fencing token for a foreign key")
            with self.assertRaises(AlreadyBuilding):
                build_report(self.r, self.report)
        self.assertEqual(build_report(self.r, self.report), f"built {self.report}")
        self.assertEqual(self.r.exists(self.report), 0)

    def test_redis_py_blocks_lockhog(self) -> None:
        lock = self.r.lock(self.report, timeout=30)
        self.assertTrue(lock.acquire(blocking=False))
        self.assertEqual(lockhog_try(self.report), NOT_ACQUIRED)
        lock.release()
        self.assertEqual(lockhog_try(self.report), 0)

    def test_lockhog_blocks_python_redis_lock(self) -> None:
        with hog_lock(URL, resources=(f"lock:{self.report}",)) as held:
            self.assertEqual(held[0].resource, f"lock:{self.report}")
            with self.assertRaises(AlreadyBuilding):
                build_report_with_redis_lock(self.r, self.report)
        self.assertEqual(
            build_report_with_redis_lock(self.r, self.report), f"built {self.report}"
        )

    def test_python_redis_lock_blocks_lockhog(self) -> None:
        lock = redis_lock.Lock(self.r, self.report, expire=30)
        self.assertTrue(lock.acquire(blocking=False))
        self.assertEqual(lockhog_try(f"lock:{self.report}"), NOT_ACQUIRED)
        lock.release()
        self.assertEqual(lockhog_try(f"lock:{self.report}"), 0)


if __name__ == "__main__":
    unittest.main()
