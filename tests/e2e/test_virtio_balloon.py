"""End-to-end: virtio-balloon through `rvisor serve`. A 256 MiB guest dirties
memory and frees it; the balloon (`rvisor balloon NAME 128M`) then takes half
of its RAM and the machine frames behind it go back to the monitor; deflating
gives the guest its memory back. Free page reporting returns memory the guest
freed without any target change. The guest's own memory figures reach
`rvisor stats`."""
import os
import re
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import test_monitor_api as api  # noqa: E402

MiB = 1 << 20
# Free page reporting (on by default) would return freed memory by itself;
# the balloon test switches it off in the guest to see what inflation does.
ORDER = "/sys/module/page_reporting/parameters/page_reporting_order"


class Balloon(unittest.TestCase):
    def setUp(self):
        # Page sharing off: its scanner would give the zero-filled files of
        # these tests back before the balloon's mechanisms get to them.
        self.mon = api.Monitor("--machine-mem", "1G", "--sharing", "off")
        self.cons = []

    def tearDown(self):
        for c in self.cons:
            c.close()
        try:
            if self.mon.proc.poll() is None:
                self.assertEqual(self.mon.stop(), 0, self.mon.output())
        finally:
            self.mon.close()

    def boot(self, name, cpus=1):
        r = self.mon.request(op="create", name=name, kernel=api.KERNEL, initrd=api.INITRD, append=api.APPEND,
                             mem="256M", cpus=cpus)
        self.assertTrue(r["ok"], r)
        self.assertIsNotNone(r["balloon"], "a VM has a balloon unless created without one")
        self.assertTrue(self.mon.request(op="start", name=name)["ok"])
        con = api.SocketConsole(self.mon, name)
        self.cons.append(con)
        api.wait_for_shell(con)
        return con

    def info(self, name):
        r = self.mon.request(op="stats", name=name)
        self.assertTrue(r["ok"], r)
        return r

    def wait_for(self, name, what, cond, timeout=60):
        deadline = time.monotonic() + timeout
        while True:
            info = self.info(name)
            if cond(info):
                return info
            if time.monotonic() > deadline:
                self.fail("timed out waiting for %s; last info: %r" % (what, info))
            time.sleep(0.2)

    def free_bytes(self):
        return self.mon.request(op="memory")["free"]

    def test_inflate_gives_memory_back_and_deflate_returns_it(self):
        name = "bal"
        con = self.boot(name, cpus=2)  # frames are dropped while the other hart may run
        con.command("echo 11 > %s" % ORDER)  # no order-11 blocks exist: nothing is reported
        self.assertEqual(con.command("cat %s" % ORDER).strip(), "11")
        # The driver sends its statistics when it starts, and again every 2 s.
        info = self.wait_for(name, "the guest's memory statistics", lambda i: i["balloon"]["stats"])
        stats = info["balloon"]["stats"]
        self.assertGreater(stats["total"], 200 * MiB)
        self.assertLessEqual(stats["total"], 256 * MiB)
        self.assertGreater(stats["free"], 150 * MiB)
        self.assertGreater(stats["available"], 150 * MiB)
        # (fault and swap counts come only from kernels with CONFIG_VM_EVENT_COUNTERS)

        # Dirty ~180 MiB of anonymous memory and free it again.
        out = con.command("dd if=/dev/zero of=/dev/null bs=180M count=1")
        self.assertIn("1+0 records out", out)
        before = self.info(name)["mem_backed"]
        free_before = self.free_bytes()
        self.assertGreater(before, 170 * MiB)

        t0 = time.monotonic()
        r = self.mon.cli("balloon", name, "128M")
        self.assertIn("%s: balloon target 128M" % name, r.stdout)
        info = self.wait_for(name, "the balloon to reach its target",
                             lambda i: i["balloon"]["actual"] == 128 * MiB)
        inflate_s = time.monotonic() - t0
        b = info["balloon"]
        self.assertEqual(b["target"], 128 * MiB)
        self.assertEqual(b["size"], 128 * MiB)
        after = info["mem_backed"]
        print("\nballoon: backed %d MiB before inflating to 128M, %d MiB after (%.1fs); freed %d MiB; "
              "monitor free +%d MiB" % (before // MiB, after // MiB, inflate_s, b["freed"] // MiB,
                                        (self.free_bytes() - free_before) // MiB), file=sys.stderr)
        self.assertGreater(before - after, 100 * MiB)
        self.assertGreater(b["freed"], 100 * MiB)
        self.assertGreater(self.free_bytes() - free_before, 100 * MiB)
        self.assertEqual(b["reported"], 0)

        # The guest still works, and knows its memory went to the balloon.
        self.assertEqual(con.command("echo alive-$((20 + 22))").strip(), "alive-42")
        free_kb = int(re.search(r"Mem:\s+\d+\s+\d+\s+(\d+)", con.command("free")).group(1))
        self.assertLess(free_kb, 128 * 1024)
        self.wait_for(name, "statistics showing the inflated balloon",
                      lambda i: i["balloon"]["stats"]["free"] < 128 * MiB, timeout=30)
        human = self.mon.cli("stats", name).stdout
        self.assertRegex(human, r"balloon:\s+guest keeps 128M of target 128M \(the balloon holds 128M\)")
        self.assertRegex(human, r"guest memory:\s+total \d+.*\(0\.\ds ago\)")  # asked for when looked at

        # Deflate: the guest can use all of its memory again.
        r = self.mon.request(op="balloon", name=name, target="256M")
        self.assertTrue(r["ok"], r)
        self.assertEqual(r["balloon"]["target"], 256 * MiB)
        self.wait_for(name, "the balloon to deflate", lambda i: i["balloon"]["actual"] == 256 * MiB)
        out = con.command("dd if=/dev/zero of=/dev/null bs=180M count=1")
        self.assertIn("1+0 records out", out)
        self.assertGreater(self.info(name)["mem_backed"], 170 * MiB)
        self.assertEqual(con.command("echo still-$((40 + 2))").strip(), "still-42")

    def test_free_page_reporting_returns_freed_memory(self):
        name = "rep"
        con = self.boot(name)
        self.assertEqual(con.command("cat %s" % ORDER).strip(), "10")
        out = con.command("dd if=/dev/zero of=/tmp/f bs=1M count=100")
        self.assertIn("100+0 records out", out)
        full = self.info(name)
        self.assertGreater(full["mem_backed"], 100 * MiB)
        con.command("rm /tmp/f")
        # Linux reports free blocks of 4 MiB about 2 s after they appear.
        t0 = time.monotonic()
        info = self.wait_for(name, "free page reporting to release the file's memory",
                             lambda i: i["mem_backed"] < full["mem_backed"] - 80 * MiB
                             and i["balloon"]["reported"] > 80 * MiB, timeout=30)
        print("\nreporting: backed %d MiB with a 100 MiB file, %d MiB %.1fs after rm; reported %d MiB"
              % (full["mem_backed"] // MiB, info["mem_backed"] // MiB, time.monotonic() - t0,
                 info["balloon"]["reported"] // MiB), file=sys.stderr)
        b = info["balloon"]
        self.assertEqual(b["target"], 256 * MiB)  # no balloon target was involved
        self.assertEqual(b["size"], 0)
        # The reported memory is the guest's again the moment it writes it.
        out = con.command("dd if=/dev/zero of=/tmp/g bs=1M count=100 && md5sum /tmp/g")
        self.assertIn("2f282b84e7e608d5852449ed940bfc51", out)  # md5 of 100 MiB of zeros
        self.assertGreater(self.info(name)["mem_backed"], 100 * MiB)


if __name__ == "__main__":
    unittest.main()
