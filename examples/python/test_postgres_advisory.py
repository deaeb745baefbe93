"""The seed scenario on PostgreSQL with psycopg: code that pays an individual at most once at a
time takes an advisory lock, and must raise while ``lockhog hold postgres://...`` holds the same
lock from another process.

The code under test (``pay_individual``) is ordinary psycopg code: ``SELECT
pg_try_advisory_lock(%s)`` with the key lockhog documents for a lock name (computed here in
Python, and checked against the RESOURCE ``advisory:<key>`` that ``lockhog hold`` prints and
against the SQL form of the derivation in lockhog's docs). scripts/test installs psycopg in a
venv (target/py-venv) and runs these tests with it.

Needs ``LOCKHOG_TEST_POSTGRES_URL`` (set by scripts/test) and psycopg; skipped without them,
except under ``CI=true``, where either missing is a failure. The TLS case also needs
``LOCKHOG_TEST_POSTGRES_TLS_URL`` and ``LOCKHOG_TEST_POSTGRES_CA``.
"""

import hashlib
import os
import unittest

from lockhog_hold import hog_lock

try:
    import psycopg
except ImportError:  # reported by need_server
    psycopg = None

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


class AlreadyPaying(Exception):
    """Someone else is paying this individual right now."""


def pay_individual(conn, individual_id: int, amount: int) -> int:
    """Pays an individual, refusing to while anyone else (any process) pays them."""
    key = advisory_key(NAMESPACE, f"pay-individual-{individual_id}")
    with conn.cursor() as cur:
        cur.execute("SELECT pg_try_advisory_lock(%s)", (key,))
        (got,) = cur.fetchone()
        if not got:
            raise AlreadyPaying(individual_id)
        try:
            return amount  # ... the payment ...
        finally:
            cur.execute("SELECT pg_advisory_unlock(%s)", (key,))


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


class TestPostgresAdvisory(unittest.TestCase):
    def setUp(self) -> None:
        need_server(self)
        self.conn = connect(URL, application_name="py-pay-individual")
        self.addCleanup(self.conn.close)

    def test_raises_while_lockhog_holds_the_lock(self) -> None:
        with hog_lock(URL, "pay-individual-42") as held:
            key = advisory_key(NAMESPACE, "pay-individual-42")
            self.assertEqual(held[0].resource, f"advisory:{key}")
            with self.assertRaises(AlreadyPaying):
                pay_individual(self.conn, 42, amount=100)
            # Another individual is not locked.
            self.assertEqual(pay_individual(self.conn, 7, amount=5), 5)
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
    """The same over TLS: lockhog holds with sslmode=verify-full, psycopg pays over TLS."""

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
        with hog_lock(hold_url, "pay-individual-44") as held:
            key = advisory_key(NAMESPACE, "pay-individual-44")
            self.assertEqual(held[0].resource, f"advisory:{key}")
            with self.assertRaises(AlreadyPaying):
                pay_individual(self.conn, 44, amount=100)
        self.assertEqual(pay_individual(self.conn, 44, amount=100), 100)


if __name__ == "__main__":
    unittest.main()
