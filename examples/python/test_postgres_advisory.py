"""The seed scenario on PostgreSQL: code that pays an individual at most once at a time takes
a transaction-level advisory lock, and must raise while ``lockhog hold postgres://...`` holds
the same lock from another process.

The code under test talks to the server through ``psql`` (installed with the server by
scripts/test), so the example needs no Python driver; with psycopg it would send the same
``SELECT pg_try_advisory_xact_lock(%s)``. The key is lockhog's documented derivation, computed
here in Python and checked against the RESOURCE that ``lockhog hold`` prints.

Needs ``LOCKHOG_TEST_POSTGRES_URL`` (set by scripts/test); skipped without it, except under
``CI=true``, where a missing server is a failure.
"""

import hashlib
import os
import shutil
import subprocess
import unittest

from lockhog_hold import hog_lock

URL = os.environ.get("LOCKHOG_TEST_POSTGRES_URL", "")


def advisory_key(namespace: str, name: str) -> int:
    """lockhog's key for ``pg_advisory_lock(bigint)``: the first 8 bytes (big-endian, signed)
    of SHA-256(len(namespace) as little-endian u64 || namespace || name)."""
    ns = namespace.encode()
    digest = hashlib.sha256(len(ns).to_bytes(8, "little") + ns + name.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class AlreadyPayingIndividual(Exception):
    pass


def pay_individual(url: str, individual_id: int, amount: int) -> int:
    """Pays once per individual at a time: the lock lives as long as the transaction."""
    key = advisory_key("lockhog", f"pay-individual-{individual_id}")
    script = (
        "BEGIN;\n"
        f"SELECT pg_try_advisory_xact_lock({int(key)}) AS got \\gset\n"
        "\\if :got\n"
        "  SELECT 'paid';\n"  # ... the payment, inside the transaction ...
        "\\else\n"
        "  SELECT 'busy';\n"
        "\\endif\n"
        "COMMIT;\n"
    )
    out = subprocess.run(
        ["psql", url, "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1"],
        input=script,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout.split()
    if out == ["busy"]:
        raise AlreadyPayingIndividual(individual_id)
    if out != ["paid"]:
        raise RuntimeError(f"unexpected psql output {out!r}")
    return amount


def need_server(test: unittest.TestCase) -> None:
    if not URL:
        if os.environ.get("CI") == "true":
            test.fail("CI=true and LOCKHOG_TEST_POSTGRES_URL is not set")
        test.skipTest("LOCKHOG_TEST_POSTGRES_URL is not set: run through scripts/test")
    if shutil.which("psql") is None:
        test.fail("psql is not installed (scripts/test installs it with the server)")


class TestPostgresAdvisory(unittest.TestCase):
    def setUp(self) -> None:
        need_server(self)

    def test_raises_while_lockhog_holds_the_lock(self) -> None:
        with hog_lock(URL, "pay-individual-42") as held:
            key = advisory_key("lockhog", "pay-individual-42")
            self.assertEqual(held[0].resource, f"advisory:{key}")
            with self.assertRaises(AlreadyPayingIndividual):
                pay_individual(URL, 42, amount=100)
            # Another individual is not locked.
            self.assertEqual(pay_individual(URL, 7, amount=5), 5)
        # Released: paying works again.
        self.assertEqual(pay_individual(URL, 42, amount=100), 100)

    def test_pays_when_nobody_else_is_paying(self) -> None:
        self.assertEqual(pay_individual(URL, 43, amount=1), 1)


if __name__ == "__main__":
    unittest.main()
