"""End-to-end: a short soak (bench/soak.py). Four VMs under one `rvisor
serve` do disk and network I/O for about two minutes while they are
ballooned, paused and resumed, destroyed and made again, and attached to
and detached from (over the API and through `rvisor console`). Every
request must be answered, no VM lost, and the monitor's own memory,
descriptors and threads must not grow (`python3 bench/soak.py` is the long
version: 16 VMs for an hour)."""
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "bench"))
import soak  # noqa: E402

RVISOR = os.environ.get("RVISOR", "build/rvisor")
GUEST = os.environ.get("RVISOR_GUEST", os.path.expanduser("~/.cache/rvisor/default"))


class Soak(unittest.TestCase):
    def test_short_soak(self):
        res = soak.run_soak(os.path.abspath(RVISOR), GUEST, vms=4, seconds=100, warmup=20, mem="192M",
                            recreate_every=12, rss_tolerance_mib=10, log=lambda msg: None)
        summary = soak.format_summary(res)
        print("\n" + summary, file=sys.stderr)
        self.assertEqual(res["problems"], [], summary)
        self.assertEqual(res["unanswered"], 0, summary)
        self.assertEqual(res["refused"], 0, summary)
        self.assertEqual(res["lost"], [], summary)
        ops = res["ops"]
        # Every kind of operation happened, several times.
        for kind, least in (("console", 10), ("console_cli", 3), ("balloon", 10), ("pause_resume", 5),
                            ("destroy_create", 3)):
            self.assertGreaterEqual(ops.get(kind, 0), least, "%s: %s" % (kind, summary))
        # The guests did their I/O: every VM through disk and network.
        self.assertGreater(res["disk_round_trips"], 20, summary)
        self.assertGreater(res["http"]["puts_ok"], 20, summary)
        self.assertEqual(res["http"]["puts_bad"], 0, summary)
        # What the monitor holds when quiet is what it held before (bench/soak.py checks it too:
        # a descriptor leaked per destroy/create cycle or per connection would show, and so did
        # the page-sharing table that grew with every new content a guest frame had).
        q0, q1 = res["quiet"]["start"], res["quiet"]["end"]
        self.assertLessEqual(q1["fds"], q0["fds"] + 2, summary)
        self.assertLessEqual(q1["rest"], q0["rest"] + (10 << 20), summary)


if __name__ == "__main__":
    unittest.main()
