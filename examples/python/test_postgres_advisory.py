"""The seed scenario on PostgreSQL with psycopg: code that pays at most one payment run at a
time takes ``pg_try_advisory_xact_lock(PAYMENTS_LOCK)`` -- a constant of its own -- inside its
transaction, and must raise while ``lockhog hold --resource advisory:<PAYMENTS_LOCK>`` holds
that very lock from another process. Nothing in the code under test knows about lockhog.

Also here, each both ways (the other client keeps lockhog out, and lockhog keeps it out):
psycopg's session and transaction locks in both key spaces (``advisory:<i64>``,
``advisory:<i32>,<i32>``); the PALs package (``pals`` on PyPI), its README's own example, with
the key computed by PALs' own code; and lockhog's own names, whose key is documented in SQL.
scripts/test installs psycopg and pals in a venv (target/py-venv) and runs these tests with it.

Needs ``LOCKHOG_TEST_POSTGRES_URL`` (set by scripts/test), psycopg and pals; skipped without
them, except under ``CI=true``, where any missing is a failure. The TLS case also needs
``LOCKHOG_TEST_POSTGRES_TLS_URL`` and ``LOCKHOG_TEST_POSTGRES_CA``.
"""

import hashlib
import os
import subprocess
import unittest

from lockhog_hold import hog_lock, lockhog_binary

try:
    import psycopg
except ImportError:  # reported by need_server
    psycopg = None

try:
    import pals
except ImportError:  # reported by TestPals
    pals = None

URL = os.environ.get("LOCKHOG_TEST_POSTGRES_URL", "")
TLS_URL = os.environ.get("LOCKHOG_TEST_POSTGRES_TLS_URL", "")
CA = os.environ.get("LOCKHOG_TEST_POSTGRES_CA", "")
NAMESPACE = "lockhog"


def advisory_key(namespace: str, name: str) -> int:
    """lockhog's key for ``pg_advisory_lock(bigint)``: the first 8 bytes (big-endian, signed)
    of SHA-256(len(namespace) as little-endian u64 || namespace || name)."""
    ns = namespace.encode()
    digest = hashlib.sha256(len(ns).to_bytes(8, "little") + ns + name.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


# ---------------------------------------------------------------------------------------------
# The code under test

PAYMENTS_LOCK = 7_340_512
"""The advisory-lock key this codebase takes around a payment run."""


class AlreadyPaying(Exception):
    """Someone else (any process) is running payments right now."""


def pay_individual(conn, individual_id: int, amount: int) -> int:
    """Pays an individual inside a transaction, refusing to while another payment runs."""
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("SELECT pg_try_advisory_xact_lock(%s)", (PAYMENTS_LOCK,))
        (got,) = cur.fetchone()
        if not got:
            raise AlreadyPaying(individual_id)
        return amount  # ... the payment; the lock ends with the transaction ...


# ---------------------------------------------------------------------------------------------
# The tests


def missing(test: unittest.TestCase, why: str) -> None:
    if os.environ.get("CI") == "true":
        test.fail(f"CI=true and {why}")
    test.skipTest(why)


def need_server(test: unittest.TestCase) -> None:
    if not URL:
        missing(test, "LOCKHOG_TEST_POSTGRES_URL is not set: run through scripts/test")
    if psycopg is None:
        missing(test, "psycopg is not installed: scripts/test installs it in target/py-venv")


def connect(url: str, **options):
    return psycopg.connect(url, autocommit=True, connect_timeout=10, **options)


def lockhog_try(resource: str) -> subprocess.CompletedProcess:
    """``lockhog hold -n --resource RESOURCE``, released at once: exit 0 when the lock was free,
    1 when someone held it. The URL goes in the environment, off the command line."""
    return subprocess.run(
        [lockhog_binary(), "hold", "-n", f"--resource={resource}"],
        env={**os.environ, "LOCKHOG_URL": URL},
        input="",
        capture_output=True,
        text=True,
        timeout=30,
    )


def unique_key() -> int:
    """A bigint key of this process, so runs against a shared server never meet."""
    return os.getpid() * 1000 + 17


class TestSeedScenario(unittest.TestCase):
    """The code under test takes its own key; the test hogs it by that key."""

    def setUp(self) -> None:
        need_server(self)
        self.conn = connect(URL, application_name="py-pay-individual")
        self.addCleanup(self.conn.close)

    def test_raises_while_lockhog_holds_the_lock(self) -> None:
        resource = f"advisory:{PAYMENTS_LOCK}"
        with hog_lock(URL, resources=[resource]) as held:
            self.assertEqual(held[0].resource, resource)
            self.assertIsNone(held[0].token, "a foreign lock has no fencing token")
            with self.assertRaises(AlreadyPaying):
                pay_individual(self.conn, 42, amount=100)
        # Released: paying works again, and leaves nothing held.
        self.assertEqual(pay_individual(self.conn, 42, amount=100), 100)
        with self.conn.cursor() as cur:
            cur.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                "AND pid = pg_backend_pid()"
            )
            self.assertEqual(cur.fetchone()[0], 0)

    def test_pays_when_nobody_else_is_paying(self) -> None:
        self.assertEqual(pay_individual(self.conn, 43, amount=1), 1)


class TestPsycopgBothWays(unittest.TestCase):
    """psycopg's own locks against ``lockhog hold --resource``, in both key spaces."""

    def setUp(self) -> None:
        need_server(self)
        self.conn = connect(URL, application_name="py-advisory-both-ways")
        self.addCleanup(self.conn.close)

    def one(self, sql: str, *args):
        with self.conn.cursor() as cur:
            cur.execute(sql, args)
            return cur.fetchone()[0]

    def test_psycopg_keeps_lockhog_out(self) -> None:
        key, (a, b) = unique_key(), (os.getpid(), -7)
        self.one("SELECT pg_advisory_lock(%s)", key)
        self.assertEqual(lockhog_try(f"advisory:{key}").returncode, 1)
        self.assertEqual(lockhog_try(f"advisory:{a},{b}").returncode, 0, "another key space")
        self.assertTrue(self.one("SELECT pg_advisory_unlock(%s)", key))
        self.assertEqual(lockhog_try(f"advisory:{key}").returncode, 0)
        # A transaction lock, in another transaction, until it ends.
        with self.conn.transaction():
            self.assertTrue(self.one("SELECT pg_try_advisory_xact_lock(%s, %s)", a, b))
            self.assertEqual(lockhog_try(f"advisory:{a},{b}").returncode, 1)
        self.assertEqual(lockhog_try(f"advisory:{a},{b}").returncode, 0)

    def test_lockhog_keeps_psycopg_out(self) -> None:
        key, (a, b) = unique_key() + 1, (os.getpid(), -8)
        with hog_lock(URL, resources=[f"advisory:{key}", f"advisory:{a},{b}"]):
            self.assertFalse(self.one("SELECT pg_try_advisory_lock(%s)", key))
            self.assertFalse(self.one("SELECT pg_try_advisory_lock(%s, %s)", a, b))
            with self.conn.transaction():
                self.assertFalse(self.one("SELECT pg_try_advisory_xact_lock(%s)", key))
                self.assertFalse(self.one("SELECT pg_try_advisory_xact_lock(%s, %s)", a, b))
        self.assertTrue(self.one("SELECT pg_try_advisory_lock(%s)", key))
        self.assertTrue(self.one("SELECT pg_advisory_unlock(%s)", key))


class TestPals(unittest.TestCase):
    """PALs (Postgres advisory locks for Python, ``pals`` on PyPI), as its README uses it. The
    key is PALs' own: ``Lock.lock_num`` of the lock PALs made, never a number copied here."""

    def setUp(self) -> None:
        need_server(self)
        if pals is None:
            missing(self, "pals is not installed: scripts/test installs it in target/py-venv")
        # SQLAlchemy's URL for psycopg 3, the driver in the test venv.
        db_url = "postgresql+psycopg://" + URL.split("://", 1)[1]
        # The README's example: one Locker per application, a lock by name.
        self.locker = pals.Locker(f"my-app-name-{os.getpid()}", db_url)
        self.addCleanup(self.locker.engine.dispose)
        self.lock = self.locker.lock("my-lock")
        self.resource = f"advisory:{self.lock.lock_num}"

    def test_lockhog_keeps_pals_out(self) -> None:
        with hog_lock(URL, resources=[self.resource]):
            self.assertFalse(self.lock.acquire(blocking=False))
        self.assertTrue(self.lock.acquire(blocking=False))
        self.assertTrue(self.lock.release())

    def test_pals_keeps_lockhog_out(self) -> None:
        self.assertTrue(self.lock.acquire())
        try:
            done = lockhog_try(self.resource)
            self.assertEqual(done.returncode, 1, done.stderr)
            self.assertIn("held by someone else", done.stderr)
        finally:
            self.assertTrue(self.lock.release())
        self.assertEqual(lockhog_try(self.resource).returncode, 0)


class TestLockhogNames(unittest.TestCase):
    """lockhog's own names: the key it documents, checked against PostgreSQL's SQL."""

    def setUp(self) -> None:
        need_server(self)
        self.conn = connect(URL, application_name="py-lockhog-names")
        self.addCleanup(self.conn.close)

    def test_a_name_hogged_by_lockhog_is_its_documented_key(self) -> None:
        key = advisory_key(NAMESPACE, "pay-individual-42")
        with hog_lock(URL, "pay-individual-42") as held:
            self.assertEqual(held[0].resource, f"advisory:{key}")
            self.assertIsNotNone(held[0].token)
            with self.conn.cursor() as cur:
                cur.execute("SELECT pg_try_advisory_lock(%s)", (key,))
                self.assertFalse(cur.fetchone()[0])

    def test_the_key_is_the_documented_sql(self) -> None:
        # The SQL form of the derivation in lockhog's postgres backend docs.
        with self.conn.cursor() as cur:
            for name in ["pay-individual-42", "x", "naïve 名前 'quoted'"]:
                cur.execute(
                    "SELECT ('x' || encode(substr(sha256("
                    "decode(lpad(to_hex(octet_length(convert_to(%(ns)s, 'UTF8'))), 2, '0')"
                    " || '00000000000000', 'hex')"
                    " || convert_to(%(ns)s, 'UTF8') || convert_to(%(name)s, 'UTF8')), 1, 8),"
                    " 'hex'))::bit(64)::bigint",
                    {"ns": NAMESPACE, "name": name},
                )
                self.assertEqual(cur.fetchone()[0], advisory_key(NAMESPACE, name), name)


class TestPostgresAdvisoryOverTls(unittest.TestCase):
    """The seed scenario over TLS: lockhog holds with sslmode=verify-full, psycopg pays over TLS."""

    def setUp(self) -> None:
        need_server(self)
        if not (TLS_URL and CA):
            missing(self, "LOCKHOG_TEST_POSTGRES_TLS_URL/_CA are not set: run through scripts/test")
        self.conn = connect(TLS_URL, sslmode="verify-full", sslrootcert=CA)
        self.addCleanup(self.conn.close)

    def test_raises_while_lockhog_holds_the_lock_over_tls(self) -> None:
        with self.conn.cursor() as cur:
            cur.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            self.assertTrue(cur.fetchone()[0])
        sep = "&" if "?" in TLS_URL else "?"
        hold_url = f"{TLS_URL}{sep}sslmode=verify-full&sslrootcert={CA}"
        with hog_lock(hold_url, resources=[f"advisory:{PAYMENTS_LOCK}"]):
            with self.assertRaises(AlreadyPaying):
                pay_individual(self.conn, 44, amount=100)
        self.assertEqual(pay_individual(self.conn, 44, amount=100), 100)


if __name__ == "__main__":
    unittest.main()
