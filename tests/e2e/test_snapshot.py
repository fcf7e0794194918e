"""End-to-end: snapshots of running guests in `rvisor serve`. A guest with
data in its RAM-backed /tmp and a counter running is saved, destroyed and
restored, and goes on with the same data and the same counter (not a
reboot: its uptime goes on too); one snapshot restores into several
independent VMs; damaged files are refused; a monitor killed while it
writes a snapshot leaves the previous file at that path restorable."""
import os
import re
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from test_monitor_api import APPEND, INITRD, KERNEL, PROMPT, Monitor, SocketConsole, wait_for_shell  # noqa: E402

# Commands stay short: the guest's terminal wraps lines at 80 columns.
DATA = ("dd if=/dev/urandom of=/tmp/r bs=1M count=8 2>/dev/null", "md5sum < /tmp/r > /tmp/s")
CHECK = "[ \"$(md5sum < /tmp/r)\" = \"$(cat /tmp/s)\" ] && echo SAME-$((6 * 7))"
COUNTER = "(i=0; while :; do i=$((i+1)); echo $i > /tmp/c; sleep 0.05; done) &"


def number(text):
    m = re.search(r"(\d+(?:\.\d+)?)", text)
    assert m, "no number in %r" % text
    return float(m.group(1))


def o_direct_works(d):
    """Whether d's file system takes O_DIRECT (tmpfs does not)."""
    path = os.path.join(d, "o_direct.probe")
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_DIRECT, 0o600))
        return True
    except OSError:
        return False
    finally:
        if os.path.exists(path):
            os.unlink(path)


class Snapshot(unittest.TestCase):
    def setUp(self):
        self.mon = Monitor("--machine-mem", "1G")
        self.addCleanup(self.mon.close)
        self.file = os.path.join(self.mon.dir, "vm.snap")

    def boot(self, name, mem="256M"):
        r = self.mon.request(op="create", name=name, kernel=KERNEL, initrd=INITRD, append=APPEND, mem=mem)
        self.assertTrue(r["ok"], r)
        self.assertTrue(self.mon.request(op="start", name=name)["ok"])
        con = SocketConsole(self.mon, name)
        self.addCleanup(con.close)
        wait_for_shell(con)
        return con

    def attach(self, name):
        """The console of a restored VM: its shell is waiting at a prompt."""
        con = SocketConsole(self.mon, name)
        self.addCleanup(con.close)
        con.send("\n")
        con.read_until(PROMPT, timeout=60)
        return con

    def snapshot(self, name, **extra):
        r = self.mon.request(op="snapshot", name=name, file=self.file, **extra)
        self.assertTrue(r["ok"], r)
        return r

    def restore(self, name, **extra):
        r = self.mon.request(op="restore", name=name, file=self.file, **extra)
        self.assertTrue(r["ok"], r)
        return r

    def test_restored_guest_goes_on_with_its_data_counter_and_clock(self):
        a = self.boot("a")
        for cmd in DATA:
            a.command(cmd, timeout=120)
        a.command(COUNTER)
        time.sleep(1)
        up_before = number(a.command("cat /proc/uptime"))
        counter = int(number(a.command("cat /tmp/c")))
        r = self.snapshot("a")
        snap = r["snapshot"]
        self.assertEqual(r["state"], "running", r)  # it ran on
        self.assertGreater(snap["frames"], 2048, snap)  # at least the 8 MiB written
        self.assertLess(snap["bytes"], 256 << 20, snap)  # never-written memory is not stored
        self.assertLess(snap["pause_ns"], 5 * 10**9, snap)
        self.assertIn("42", a.command("echo $((6 * 7))"))  # the source goes on
        self.assertTrue(self.mon.request(op="destroy", name="a")["ok"])

        r = self.restore("b")
        self.assertEqual(r["state"], "running", r)
        b = self.attach("b")
        self.assertIn("SAME-42", b.command(CHECK, timeout=120))
        # The counter goes on from where it was saved, still counting: the
        # guest was not rebooted and its background process lives on.
        later = int(number(b.command("cat /tmp/c")))
        self.assertGreaterEqual(later, counter)
        time.sleep(0.5)
        self.assertGreater(int(number(b.command("cat /tmp/c"))), later)
        up_after = number(b.command("cat /proc/uptime"))
        self.assertGreaterEqual(up_after, up_before)
        self.assertNotIn("init reached", b.command("dmesg | tail -n 3; echo done"))

    def test_one_snapshot_restores_into_independent_clones(self):
        a = self.boot("a")
        a.command("echo original > /tmp/who")
        gen_a = self.mon.request(op="stats", name="a")["generation_id"]
        self.assertRegex(gen_a, r"^[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$")
        self.snapshot("a", stop=True)
        stats = self.mon.request(op="stats", name="a")
        self.assertEqual(stats["state"], "paused")
        self.assertEqual(stats["generation_id"], gen_a)  # a snapshot does not make a new instance
        self.assertEqual(self.restore("b", paused=True)["state"], "paused")
        self.restore("c")
        self.assertTrue(self.mon.request(op="resume", name="b")["ok"])
        b, c = self.attach("b"), self.attach("c")
        b.command("echo clone-b > /tmp/who")
        c.command("echo clone-c > /tmp/who")
        self.assertIn("clone-b", b.command("cat /tmp/who"))
        self.assertIn("clone-c", c.command("cat /tmp/who"))
        # Each clone is a new generation (the guest sees the device in its
        # device tree) and draws fresh bytes from its own virtio-rng: all
        # but the 64 its driver fetched ahead before the snapshot, which
        # are in the guest's memory (README: "Clones and entropy").
        gens = {n: self.mon.request(op="stats", name=n)["generation_id"] for n in ("b", "c")}
        self.assertEqual(len({gen_a, gens["b"], gens["c"]}), 3, gens)
        self.assertIn("microsoft,vmgenid", b.command("cat /sys/firmware/devicetree/base/soc/rng@103000/compatible"))
        rng = "head -c 128 /dev/hwrng | tail -c 64 | md5sum"
        sums = [re.search(r"[0-9a-f]{32}", con.command(rng)).group(0) for con in (b, c)]
        self.assertNotEqual(sums[0], sums[1])
        self.assertTrue(self.mon.request(op="resume", name="a")["ok"])
        self.assertIn("original", a.command("cat /tmp/who"))
        # The CLI does the same.
        out = self.mon.cli("snapshot", "b", self.file, "--direct").stdout
        self.assertIn("b: saved to " + self.file, out)
        if o_direct_works(self.mon.dir):
            self.assertIn("O_DIRECT", out)
        out = self.mon.cli("restore", self.file, "--name", "d").stdout
        self.assertIn("d: restored from", out)
        self.assertIn("clone-b", self.attach("d").command("cat /tmp/who"))

    def test_snapshot_during_disk_and_network_io_restores_to_a_working_guest(self):
        disk = os.path.join(self.mon.dir, "disk.img")
        with open(disk, "wb") as f:
            f.truncate(64 << 20)
        r = self.mon.request(op="create", name="io", kernel=KERNEL, initrd=INITRD, append=APPEND, mem="256M",
                             drives=["file=%s" % disk], nets=["user"])
        self.assertTrue(r["ok"], r)
        self.assertTrue(self.mon.request(op="start", name="io")["ok"])
        a = SocketConsole(self.mon, "io")
        self.addCleanup(a.close)
        wait_for_shell(a)
        a.command("ip link set eth0 up")
        self.assertIn("rc=0", a.command("udhcpc -i eth0 -q -n -t 5 >/dev/null 2>&1; echo rc=$?", timeout=60))
        # Disk writes and reads in a loop, and DNS queries, while the snapshot is taken.
        a.command("w(){ dd if=/dev/urandom of=/dev/vda bs=64k count=64 2>/dev/null;}")
        a.command("r(){ dd if=/dev/vda of=/dev/null bs=64k count=64 2>/dev/null;}")
        a.command("d(){ nslookup example.org 10.0.2.3 >/dev/null 2>&1;}")
        a.command("(while :; do w; r; done) & p1=$!")
        a.command("(while :; do d; done) & p2=$!")
        time.sleep(1)
        self.snapshot("io")
        self.assertTrue(self.mon.request(op="destroy", name="io")["ok"])
        self.restore("io2")
        b = self.attach("io2")
        b.command("kill $p1 $p2; wait")
        # The disk, reopened from its path, works: a pattern written now reads back.
        b.command("seq 1 20000 > /tmp/p")
        b.command("dd if=/tmp/p of=/dev/vda bs=4k conv=fsync 2>/dev/null")
        b.command("echo 3 > /proc/sys/vm/drop_caches")
        out = b.command("head -c $(wc -c </tmp/p) /dev/vda | md5sum")
        self.assertEqual(out.split()[0], b.command("md5sum < /tmp/p").split()[0])
        pattern = "".join("%d\n" % i for i in range(1, 20001)).encode()
        with open(disk, "rb") as f:
            self.assertEqual(f.read(len(pattern)), pattern)  # it reached the host's file
        # The network card came back on a fresh user-mode network: DHCP again works.
        self.assertIn("rc=0", b.command("udhcpc -i eth0 -q -n -t 5 >/dev/null 2>&1; echo rc=$?", timeout=60))

    def test_damaged_snapshots_are_refused(self):
        self.boot("a", mem="64M")
        self.snapshot("a")
        data = open(self.file, "rb").read()
        cases = {
            "truncated": data[: len(data) // 2],
            "flipped": data[:4096 + 100] + bytes([data[4096 + 100] ^ 0x10]) + data[4096 + 101:],
            "foreign": b"\x7fELF" + os.urandom(8192),
            "empty": b"",
        }
        for what, content in cases.items():
            bad = os.path.join(self.mon.dir, what + ".snap")
            with open(bad, "wb") as f:
                f.write(content)
            r = self.mon.request(op="restore", name="x", file=bad)
            self.assertFalse(r["ok"], (what, r))
            self.assertEqual(r["code"], "invalid", (what, r))
            self.assertTrue(r["error"], r)
            self.assertFalse(self.mon.request(op="stats", name="x")["ok"], what)  # nothing was created
        r = self.mon.request(op="restore", name="x", file=os.path.join(self.mon.dir, "absent.snap"))
        self.assertFalse(r["ok"], r)
        # The monitor is unharmed.
        self.assertTrue(self.mon.request(op="restore", name="y", file=self.file)["ok"])

    def test_a_monitor_killed_while_saving_leaves_the_previous_snapshot(self):
        a = self.boot("a")
        a.command("echo first > /tmp/mark")
        self.snapshot("a")
        first = open(self.file, "rb").read()
        a.command("dd if=/dev/urandom of=/tmp/r bs=1M count=48 2>/dev/null", timeout=120)
        a.command("echo second > /tmp/mark")
        s = self.mon.connect()
        s.sendall(b'{"op":"snapshot","name":"a","file":"%s"}\n' % self.file.encode())
        time.sleep(0.02)
        self.mon.proc.send_signal(signal.SIGKILL)
        self.mon.proc.wait()
        s.close()
        # Whatever moment it died at, the file at the path is one whole
        # snapshot, the first or the second: it restores.
        self.assertGreater(len(first), 0)
        mon2 = Monitor("--machine-mem", "1G")
        self.addCleanup(mon2.close)
        r = mon2.request(op="restore", name="back", file=self.file)
        self.assertTrue(r["ok"], r)
        con = SocketConsole(mon2, "back")
        self.addCleanup(con.close)
        con.send("\n")
        con.read_until(PROMPT, timeout=60)
        self.assertRegex(con.command("cat /tmp/mark"), "first|second")
        # Only temporary files may be left beside it, never a damaged file at the path.
        self.assertTrue(all(n == "vm.snap" or ".tmp." in n or not n.endswith(".snap")
                            for n in os.listdir(self.mon.dir)))


if __name__ == "__main__":
    unittest.main()
