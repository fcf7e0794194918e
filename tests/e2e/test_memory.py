"""End-to-end: guest memory is backed by machine memory only when written."""
import os
import re
import unittest

from test_platform import run


def backed_mib(out):
    m = re.search(r"guest memory (\d+) MiB, (\d+) MiB backed", out)
    if not m:
        raise AssertionError("no --stats line in:\n" + out[-1500:])
    return int(m.group(1)), int(m.group(2))


class DemandZero(unittest.TestCase):
    def test_boot_backs_a_small_part_of_guest_memory(self):
        status, out = run("true", "--mem", "512M", "--stats")
        self.assertEqual(status, 0, out)
        size, backed = backed_mib(out)
        self.assertEqual(size, 512)
        self.assertLess(backed, 40)

    def test_touching_50_mib_backs_about_50_mib_more(self):
        _, base = backed_mib(run("true", "--mem", "512M", "--stats")[1])
        status, out = run("dd if=/dev/zero of=/tmp/f bs=1M count=50 2>/dev/null; sync", "--mem", "512M", "--stats")
        self.assertEqual(status, 0, out)
        _, backed = backed_mib(out)
        self.assertGreaterEqual(backed - base, 48)
        self.assertLessEqual(backed - base, 60)

    def test_exhausted_machine_memory_stops_the_guest_cleanly(self):
        status, out = run("dd if=/dev/zero of=/tmp/f bs=1M count=50 2>/dev/null", "--mem", "512M",
                          "--machine-mem", "40M")
        self.assertEqual(status, 4, out)
        self.assertIn("machine memory exhausted", out)


if __name__ == "__main__":
    unittest.main()
