"""``hog_lock`` keeps the backend URL off the child's command line: every local user can read a
process's argv (/proc/PID/cmdline), and the URL may carry a password. It goes in the child's
``LOCKHOG_URL`` instead, which only the same user can read, and a ``LOCKHOG_URL`` of this
process cannot take its place.

Against the real PostgreSQL over TLS: ``LOCKHOG_TEST_POSTGRES_TLS_URL`` (a role with a
password) and ``LOCKHOG_TEST_POSTGRES_CA``, set by scripts/test; skipped without them, except
under ``CI=true``, where that is a failure.
"""

import os
import secrets
import unittest
from unittest import mock

from lockhog_hold import hog_lock

TLS_URL = os.environ.get("LOCKHOG_TEST_POSTGRES_TLS_URL", "")
CA = os.environ.get("LOCKHOG_TEST_POSTGRES_CA", "")


def processes_naming(arg: str):
    """``(pid, argv)`` of every process with ``arg`` among its arguments."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = [a.decode(errors="replace") for a in f.read().split(b"\0")]
        except OSError:
            continue
        if arg in argv:
            found.append((int(entry), argv))
    return found


class TestHogLockArgv(unittest.TestCase):
    def setUp(self) -> None:
        if not (TLS_URL and CA):
            why = "LOCKHOG_TEST_POSTGRES_TLS_URL/_CA are not set: run through scripts/test"
            if os.environ.get("CI") == "true":
                self.fail(f"CI=true and {why}")
            self.skipTest(why)

    def test_the_url_is_not_on_the_command_line(self) -> None:
        password = TLS_URL.split("://", 1)[1].rsplit("@", 1)[0].split(":", 1)[1]
        self.assertTrue(password, "the TLS test URL carries a password")
        sep = "&" if "?" in TLS_URL else "?"
        url = f"{TLS_URL}{sep}sslmode=verify-full&sslrootcert={CA}"
        name = f"argv-python-{secrets.token_hex(8)}"
        # A child that took this process's LOCKHOG_URL would hold on mem:, not PostgreSQL.
        with mock.patch.dict(os.environ, {"LOCKHOG_URL": "mem:"}):
            with hog_lock(url, name) as held:
                self.assertTrue(held[0].resource.startswith("advisory:"), held[0].resource)
                found = processes_naming(name)
                self.assertEqual(len(found), 1, found)
                pid, argv = found[0]
                for arg in argv:
                    self.assertNotIn(arg, ("-b", "--backend"), argv)
                    self.assertNotIn(password, arg, "the password is in the child's argv")
                with open(f"/proc/{pid}/environ", "rb") as f:
                    environ = f.read().split(b"\0")
                self.assertIn(f"LOCKHOG_URL={url}".encode(), environ)


if __name__ == "__main__":
    unittest.main()
