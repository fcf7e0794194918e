"""End-to-end: live migration between two `rvisor serve` monitors on this
host. A guest with data in its tmpfs and a counter running moves, running,
to a monitor started with --incoming, and goes on there with the same data
and counter; a guest that keeps rewriting memory still converges; when the
target is missing, refuses, or drops the connection halfway, the VM runs
on at the source."""
import os
import re
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from test_monitor_api import APPEND, INITRD, KERNEL, PROMPT, Monitor, SocketConsole, wait_for_shell  # noqa: E402

COUNTER = "(i=0; while :; do i=$((i+1)); echo $i > /tmp/c; sleep 0.05; done) &"
CHECK = "[ \"$(md5sum < /tmp/r)\" = \"$(cat /tmp/s)\" ] && echo SAME-$((6 * 7))"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def number(text):
    m = re.search(r"(\d+)", text)
    assert m, "no number in %r" % text
    return int(m.group(1))


class FakeTarget(threading.Thread):
    """A target that reads `limit` bytes of the stream, then either closes
    the connection or answers with `reply`."""

    def __init__(self, limit, reply=None):
        super().__init__(daemon=True)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.port = self.sock.getsockname()[1]
        self.limit, self.reply, self.got = limit, reply, 0
        self.start()

    def run(self):
        c, _ = self.sock.accept()
        while self.got < self.limit:
            data = c.recv(1 << 20)
            if not data:
                break
            self.got += len(data)
        if self.reply:
            c.sendall(self.reply)
            time.sleep(0.5)
        c.close()
        self.sock.close()


class Migration(unittest.TestCase):
    def setUp(self):
        self.port = free_port()
        self.src = Monitor("--machine-mem", "1G")
        self.addCleanup(self.src.close)
        self.dst = Monitor("--machine-mem", "1G", "--incoming", "tcp:127.0.0.1:%d" % self.port)
        self.addCleanup(self.dst.close)

    def boot(self, mon, name):
        r = mon.request(op="create", name=name, kernel=KERNEL, initrd=INITRD, append=APPEND, mem="256M")
        self.assertTrue(r["ok"], r)
        self.assertTrue(mon.request(op="start", name=name)["ok"])
        con = SocketConsole(mon, name)
        self.addCleanup(con.close)
        wait_for_shell(con)
        return con

    def attach(self, mon, name):
        con = SocketConsole(mon, name)
        self.addCleanup(con.close)
        con.send("\n")
        con.read_until(PROMPT, timeout=60)
        return con

    def migrate(self, name, port=None, **extra):
        return self.src.request(op="migrate", name=name, uri="tcp:127.0.0.1:%d" % (port or self.port), **extra)

    def test_a_running_guest_moves_with_its_data_and_counter(self):
        a = self.boot(self.src, "a")
        a.command("dd if=/dev/urandom of=/tmp/r bs=1M count=16 2>/dev/null")
        a.command("md5sum < /tmp/r > /tmp/s")
        a.command(COUNTER)
        time.sleep(0.5)
        before = number(a.command("cat /tmp/c"))
        gen = self.src.request(op="stats", name="a")["generation_id"]
        r = self.migrate("a")
        self.assertTrue(r["ok"], r)
        mig = r["migration"]
        self.assertGreaterEqual(mig["rounds"], 2, mig)
        self.assertGreater(mig["bytes"], 16 << 20, mig)
        self.assertLess(mig["downtime_ns"], 2 * 10**9, mig)
        # It exists only on the target now, running.
        self.assertFalse(self.src.request(op="stats", name="a")["ok"])
        st = self.dst.request(op="stats", name="a")
        self.assertTrue(st["ok"], st)
        self.assertEqual(st["state"], "running", st)
        self.assertEqual(st["generation_id"], gen, st)  # the same instance, not a clone
        b = self.attach(self.dst, "a")
        self.assertIn("SAME-42", b.command(CHECK, timeout=60))
        later = number(b.command("cat /tmp/c"))
        self.assertGreaterEqual(later, before)
        time.sleep(0.5)
        self.assertGreater(number(b.command("cat /tmp/c")), later)  # still counting

    def test_a_guest_that_keeps_dirtying_memory_converges(self):
        a = self.boot(self.src, "busy")
        a.command("w(){ dd if=/dev/urandom of=/tmp/d bs=1M count=24 2>/dev/null;}")
        a.command("(while :; do w; done) &")
        time.sleep(1)
        out = self.src.cli("migrate", "busy", "tcp:127.0.0.1:%d" % self.port, "--downtime", "100").stdout
        self.assertIn("busy: migrated to tcp:127.0.0.1:%d" % self.port, out)
        b = self.attach(self.dst, "busy")
        self.assertIn("42", b.command("echo $((6 * 7))"))

    def test_the_vm_runs_on_when_the_target_fails(self):
        a = self.boot(self.src, "a")
        a.command("dd if=/dev/urandom of=/tmp/r bs=1M count=16 2>/dev/null")
        # Nobody listens.
        r = self.migrate("a", port=free_port())
        self.assertFalse(r["ok"], r)
        self.assertIn("connect", r["error"])
        # The target drops the connection halfway through the memory.
        fake = FakeTarget(limit=4 << 20)
        r = self.migrate("a", port=fake.port)
        self.assertFalse(r["ok"], r)
        self.assertEqual(r["code"], "invalid", r)
        # The target reads it all and refuses.
        fake = FakeTarget(limit=0, reply=b"ERR no room here\n")
        r = self.migrate("a", port=fake.port)
        self.assertFalse(r["ok"], r)
        # A real target that has a VM of that name refuses it.
        self.boot(self.dst, "a")
        r = self.migrate("a")
        self.assertFalse(r["ok"], r)
        self.assertIn("exists", r["error"])
        # Through all of it the VM ran on here.
        st = self.src.request(op="stats", name="a")
        self.assertEqual(st["state"], "running", st)
        self.assertIn("42", a.command("echo $((6 * 7))"))

    def test_bad_requests(self):
        r = self.src.request(op="migrate", name="nope", uri="tcp:127.0.0.1:%d" % self.port)
        self.assertEqual(r["code"], "not_found", r)
        self.boot(self.src, "a")
        for uri in ("udp:1.2.3.4:5", "tcp:host.example:5", "tcp:127.0.0.1:0", "tcp:127.0.0.1"):
            r = self.src.request(op="migrate", name="a", uri=uri)
            self.assertEqual(r["code"], "invalid", (uri, r))
        r = self.src.request(op="migrate", name="a", uri="tcp:127.0.0.1:1", downtime_ms=0)
        self.assertEqual(r["code"], "bad_request", r)


if __name__ == "__main__":
    unittest.main()
