"""End-to-end: content-based page sharing in `rvisor serve`. Guests of one
share group that boot the same kernel end up sharing frames; a guest in a
group of its own shares only within itself; guests that write shared pages
get their own copies and compute the right results; `--sharing off` turns
the scanner off."""
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from test_monitor_api import APPEND, INITRD, KERNEL, Monitor, SocketConsole, wait_for_shell  # noqa: E402

# md5 of `seq 1 30000` (computed by the host's coreutils the same way).
SEQ_MD5 = __import__("hashlib").md5("".join("%d\n" % i for i in range(1, 30001)).encode()).hexdigest()


class PageSharing(unittest.TestCase):
    def start(self, *args):
        self.mon = Monitor("--machine-mem", "2G", *args)
        self.addCleanup(self.mon.close)

    def boot(self, name, **extra):
        r = self.mon.request(op="create", name=name, kernel=KERNEL, initrd=INITRD, append=APPEND, mem="256M", **extra)
        self.assertTrue(r["ok"], r)
        self.assertTrue(self.mon.request(op="start", name=name)["ok"])
        con = SocketConsole(self.mon, name)
        self.addCleanup(con.close)
        wait_for_shell(con)
        return con

    def memory(self):
        r = self.mon.request(op="memory")
        self.assertTrue(r["ok"], r)
        return r

    def pages(self, name):
        r = self.mon.request(op="stats", name=name)
        self.assertTrue(r["ok"], r)
        return r["pages"]

    def wait_scanned(self, frames, timeout=60):
        """Waits until the scanner has hashed `frames` more frames and its merges settled."""
        start = self.memory()["sharing"]["scanned"]
        deadline = time.monotonic() + timeout
        while self.memory()["sharing"]["scanned"] < start + frames:
            self.assertLess(time.monotonic(), deadline, "the scanner does not advance: %r" % self.memory())
            time.sleep(0.2)
        time.sleep(0.5)  # the last batch's grace periods

    def test_a_share_group_shares_and_a_lone_vm_does_not_join_it(self):
        self.start("--share-rate", "200000")
        a1 = self.boot("a1", share_group="g")
        a2 = self.boot("a2", share_group="g")
        lone = self.boot("lone")
        # Each guest backs a few thousand frames after boot: scan them all a few times.
        self.wait_scanned(60000)
        p1, p2, pl = self.pages("a1"), self.pages("a2"), self.pages("lone")
        # The kernel and initramfs pages of a1 and a2 are the same: most of a1's memory is shared.
        self.assertGreater(p1["shared"], 1500, p1)
        self.assertGreater(p2["shared"], 1500, p2)
        # The lone VM may share identical pages within itself, far fewer.
        self.assertLess(pl["shared"], p1["shared"] / 2, (pl, p1))
        self.assertGreater(pl["backed"], p1["backed"] * 2, (pl, p1))
        mem = self.memory()
        sh = mem["sharing"]
        self.assertTrue(sh["enabled"])
        self.assertGreater(sh["saved_bytes"], 4 << 20, sh)
        self.assertGreater(sh["zero_merged"], 0, sh)
        # Machine memory in use is less than what the guests hold: the shared frames count once.
        held = sum(p["backed"] + p["shared"] for p in (p1, p2, pl))
        self.assertLess(mem["used"] >> 12, held, (mem, held))
        self.assertEqual(self.mon.request(op="stats", name="a1")["share_group"], "g")
        self.assertIsNone(self.mon.request(op="stats", name="lone")["share_group"])

        # Writes into shared memory copy it for the writer only: both guests
        # compute the same right answer, and copy-on-write breaks happen.
        breaks = sh["cow_breaks"]
        for con in (a1, a2, lone):
            out = con.command("seq 1 30000 > /tmp/s; md5sum /tmp/s; echo $((6 * 7))", timeout=120)
            self.assertIn(SEQ_MD5, out)
            self.assertIn("42", out)
        self.assertGreater(self.memory()["sharing"]["cow_breaks"], breaks)
        self.assertEqual(self.mon.stop(), 0, self.mon.output())

    def test_destroying_sharers_gives_the_frames_back(self):
        self.start("--share-rate", "200000")
        self.boot("d1", share_group="g")
        self.boot("d2", share_group="g")
        self.wait_scanned(40000)
        self.assertGreater(self.memory()["sharing"]["shared_frames"], 500)
        for n in ("d1", "d2"):
            self.assertTrue(self.mon.request(op="destroy", name=n)["ok"])
        # The table lets go of frames nobody maps within a few sweeps.
        deadline = time.monotonic() + 30
        while self.memory()["sharing"]["shared_frames"] > 0:
            self.assertLess(time.monotonic(), deadline, self.memory())
            time.sleep(0.2)
        self.assertLess(self.memory()["used"], 1 << 20, self.memory())
        self.assertEqual(self.mon.stop(), 0, self.mon.output())

    def test_a_snapshot_stores_a_shared_frame_once(self):
        self.start("--share-rate", "200000")
        con = self.boot("s")
        # 4 MiB of random data twice in tmpfs: 1024 pairs of equal frames.
        con.command("dd if=/dev/urandom of=/tmp/x bs=1M count=4 2>/dev/null", timeout=60)
        con.command("cp /tmp/x /tmp/y", timeout=60)
        want = con.command("md5sum /tmp/x /tmp/y")
        deadline = time.monotonic() + 60
        while self.pages("s")["shared"] < 2000:
            self.assertLess(time.monotonic(), deadline, self.pages("s"))
            self.wait_scanned(20000)
        pages = self.pages("s")
        path = os.path.join(self.mon.dir, "s.snap")
        r = self.mon.request(op="snapshot", name="s", file=path, stop=True)
        self.assertTrue(r["ok"], r)
        snap = r["snapshot"]
        self.assertGreaterEqual(snap["aliased"], 1000, (snap, pages))
        # Each pair's contents once: the file holds fewer pages than the
        # frames with data, by the aliased ones.
        self.assertLess(snap["bytes"], (pages["backed"] + pages["shared"] - 1000) * 4096, (snap, pages))
        self.assertTrue(self.mon.request(op="destroy", name="s")["ok"])
        r = self.mon.request(op="restore", name="t", file=path)
        self.assertTrue(r["ok"], r)
        t = SocketConsole(self.mon, "t")
        self.addCleanup(t.close)
        t.send("\n")
        # The restored guest reads both copies back, and writing one leaves the other.
        self.assertEqual(t.command("md5sum /tmp/x /tmp/y"), want)
        t.command("dd if=/dev/zero of=/tmp/y bs=1M count=4 conv=notrunc 2>/dev/null")
        out = t.command("md5sum /tmp/x")
        self.assertIn(want.split()[0], out)
        self.assertEqual(self.mon.stop(), 0, self.mon.output())

    def test_sharing_off(self):
        self.start("--sharing", "off")
        self.boot("o1", share_group="g")
        self.boot("o2", share_group="g")
        time.sleep(1)
        sh = self.memory()["sharing"]
        self.assertFalse(sh["enabled"])
        self.assertEqual(sh["scanned"], 0)
        self.assertEqual(self.pages("o1")["shared"], 0)
        self.assertEqual(self.mon.stop(), 0, self.mon.output())


if __name__ == "__main__":
    unittest.main()
