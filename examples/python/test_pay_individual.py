"""The Python guide's debounce scenario, with the lock hogged from another process by
``lockhog hold`` -- a lock hog for code in any language."""

import os
import tempfile
import unittest

import pay_individual
from lockhog_hold import hog_lock


class TestPayIndividual(unittest.TestCase):
    def setUp(self) -> None:
        self._dir = tempfile.TemporaryDirectory()
        self.lock_dir = self._dir.name
        self.url = f"file://{self.lock_dir}"

    def tearDown(self) -> None:
        self._dir.cleanup()

    def test_raises_if_another_process_is_paying(self) -> None:
        with hog_lock(self.url, "pay-individual-42") as held:
            self.assertEqual(held[0].name, "pay-individual-42")
            self.assertEqual(
                os.path.realpath(held[0].resource),
                os.path.realpath(pay_individual.lock_path(self.lock_dir, 42)),
            )
            with self.assertRaises(pay_individual.AlreadyPayingIndividual):
                pay_individual.pay_individual(self.lock_dir, 42, amount=100)
            # Another individual is not locked.
            self.assertEqual(pay_individual.pay_individual(self.lock_dir, 7, amount=5), 5)
        # Released: paying works again.
        self.assertEqual(pay_individual.pay_individual(self.lock_dir, 42, amount=100), 100)

    def test_pays_when_nobody_else_is_paying(self) -> None:
        self.assertEqual(pay_individual.pay_individual(self.lock_dir, 42, amount=1), 1)


if __name__ == "__main__":
    unittest.main()
