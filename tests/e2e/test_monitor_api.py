"""End-to-end: `rvisor serve` with two guests, driven through the control socket
(raw JSON and the CLI client), their consoles, and bad input that must not hurt
the monitor or its other guests."""
import json
import os
import pty
import re
import select
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from guest import Guest, PROMPT  # noqa: E402

RVISOR = os.environ.get("RVISOR", "build/rvisor")
GUEST = os.environ.get("RVISOR_GUEST", os.path.expanduser("~/.cache/rvisor/default"))
KERNEL = os.path.join(GUEST, "Image")
INITRD = os.path.join(GUEST, "initrd.gz")
APPEND = "console=ttyS0 quiet"


class Monitor:
    """An `rvisor serve` process on a socket in a temporary directory."""

    def __init__(self, *args):
        self.dir = tempfile.mkdtemp(prefix="rvisor-api-")
        self.sock = os.path.join(self.dir, "ctl.sock")
        self.log = open(os.path.join(self.dir, "serve.log"), "w+b")
        self.proc = subprocess.Popen([RVISOR, "serve", "--socket", self.sock] + list(args),
                                     stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while not os.path.exists(self.sock):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("rvisor serve did not start:\n" + self.output())
            time.sleep(0.02)

    def output(self):
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(60)
        s.connect(self.sock)
        return s

    def request(self, **req):
        """One request on its own connection; returns the reply as a dict."""
        with self.connect() as s:
            s.sendall(json.dumps(req).encode() + b"\n")
            return read_reply(s)

    def cli(self, *args, check=True):
        r = subprocess.run([RVISOR] + list(args) + ["--socket", self.sock], stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=60)
        if check and r.returncode != 0:
            raise AssertionError("rvisor %s failed (%d): %s" % (" ".join(args), r.returncode, r.stderr))
        return r

    def stop(self, sig=signal.SIGTERM, timeout=60):
        """Stops the monitor; returns its exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("rvisor serve did not exit on signal %d:\n%s" % (sig, self.output()))

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def read_reply(s, buf=None):
    data = b""
    while not data.endswith(b"\n"):
        chunk = s.recv(1)
        if not chunk:
            raise AssertionError("connection closed before a reply; got %r" % data)
        data += chunk
    return json.loads(data)


class SocketConsole:
    """A VM's console over the control socket, read like guest.Guest reads a terminal."""

    def __init__(self, monitor, name, timeout=120):
        self.s = monitor.connect()
        self.s.sendall(json.dumps({"op": "console", "name": name}).encode() + b"\n")
        reply = read_reply(self.s)
        if not reply.get("ok"):
            raise AssertionError("console %s: %r" % (name, reply))
        self.output = b""
        self.timeout = timeout
        self._pos = 0
        self.eof = False

    def read_until(self, pattern, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        if isinstance(pattern, str):
            pattern = re.escape(pattern.encode())
        if isinstance(pattern, bytes):
            pattern = re.compile(pattern)
        while True:
            m = pattern.search(self.output, self._pos)
            if m:
                self._pos = m.end()
                return m
            left = deadline - time.monotonic()
            if left <= 0 or not self._read(left):
                raise AssertionError("timed out waiting for %r; last output:\n%s"
                                     % (pattern.pattern, self.output[-2000:].decode(errors="replace")))

    def _read(self, timeout):
        r, _, _ = select.select([self.s], [], [], min(timeout, 1.0))
        if not r:
            return True
        data = self.s.recv(65536)
        if not data:
            self.eof = True
            return False
        self.output += data
        return True

    def wait_eof(self, timeout=30):
        deadline = time.monotonic() + timeout
        while not self.eof and time.monotonic() < deadline:
            self._read(deadline - time.monotonic())
        return self.eof

    def send(self, text):
        self.s.sendall(text.encode() if isinstance(text, str) else text)

    def command(self, cmd, timeout=None):
        self.send(cmd + "\n")
        echo = self.read_until(re.escape(cmd.encode()) + rb"\r*\n", timeout)
        m = self.read_until(PROMPT, timeout)
        return self.output[echo.end():m.start()].decode(errors="replace").replace("\r", "")

    def close(self):
        self.s.close()


class CliConsole(Guest):
    """`rvisor console NAME` on a pseudo-terminal."""

    def __init__(self, monitor, name, timeout=120):
        self.output = b""
        self.timeout = timeout
        pid, fd = pty.fork()
        if pid == 0:
            os.execv(RVISOR, [RVISOR, "console", name, "--socket", monitor.sock])
        self.pid, self.fd = pid, fd
        self.status = None


def wait_for_shell(con):
    """Waits for the guest's shell and a command's output, as test_boot_shell.boot does."""
    con.read_until("rvisor-guest: init reached")
    con.send("echo rvisor-$((40 + 2))\n")
    con.read_until(rb"\nrvisor-42\r*\n")
    con.read_until(PROMPT)


class MonitorApi(unittest.TestCase):
    def setUp(self):
        self.mon = Monitor("--machine-mem", "1G")

    def tearDown(self):
        try:
            if self.mon.proc.poll() is None:
                self.assertEqual(self.mon.stop(), 0, self.mon.output())
            self.assertFalse(os.path.exists(self.mon.sock), "the socket file must be removed on exit")
        finally:
            self.mon.close()

    def create(self, name, mem="256M", **extra):
        return self.mon.request(op="create", name=name, kernel=KERNEL, initrd=INITRD, append=APPEND, mem=mem,
                                **extra)

    def test_socket_is_owner_only(self):
        st = os.lstat(self.mon.sock)
        self.assertTrue(stat.S_ISSOCK(st.st_mode))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)

    def test_two_guests_through_the_api_and_the_cli(self):
        mon = self.mon
        # vm1 through the CLI on the translator, vm2 through raw JSON on the interpreter.
        r = mon.cli("create", "vm1", "--kernel", KERNEL, "--initrd", INITRD, "--append", APPEND, "--mem", "256M",
                    "--engine", "jit", "--jit-cache", "16M")
        self.assertIn("vm1: created", r.stdout)
        reply = self.create("vm2", mem="192M", engine="interp")
        self.assertTrue(reply["ok"], reply)
        self.assertEqual(reply["state"], "created")
        self.assertEqual(reply["mem_size"], 192 << 20)
        self.assertEqual(reply["engine"], "interp")
        self.assertIsNone(reply["jit"])
        self.assertIn("vm1: running", mon.cli("start", "vm1").stdout)
        self.assertEqual(mon.request(op="start", name="vm2")["state"], "running")

        c1 = CliConsole(mon, "vm1")
        c2 = SocketConsole(mon, "vm2")
        try:
            wait_for_shell(c1)
            wait_for_shell(c2)
            self.assertEqual(c1.command("uname -m").strip(), "riscv64")
            self.assertEqual(c2.command("uname -m").strip(), "riscv64")
            # Each guest has its own memory and files.
            c1.command("echo one > /tmp/who")
            c2.command("echo two > /tmp/who")
            self.assertEqual(c1.command("cat /tmp/who").strip(), "one")
            self.assertEqual(c2.command("cat /tmp/who").strip(), "two")
            # And the memory size it was created with.
            kb = lambda c: int(re.search(r"MemTotal:\s+(\d+)", c.command("grep MemTotal /proc/meminfo")).group(1))
            self.assertGreater(kb(c1), 200 * 1024)
            self.assertLess(kb(c2), 192 * 1024)
            self.assertGreater(kb(c2), 140 * 1024)

            # Ctrl-A x detaches the CLI console; the guest keeps running.
            c1.send(b"\x01x")
            self.assertEqual(c1.wait(), 0)
            self.assertIn(b"detached from vm1", c1.output)
        finally:
            c1.close()

        stats = json.loads(mon.cli("stats", "vm1", "--json").stdout)
        self.assertEqual(stats["state"], "running")
        self.assertGreater(stats["instructions"], 10_000_000)
        self.assertGreater(stats["mem_backed"], 1 << 20)
        self.assertGreater(stats["cpu_ns"], 0)
        # The translator ran vm1's boot: it made blocks and code, within the 16M buffer.
        self.assertEqual(stats["engine"], "jit")
        jit = stats["jit"]
        self.assertGreater(jit["translated_blocks"], 1000, jit)
        self.assertGreaterEqual(jit["translated_instructions"], jit["translated_blocks"], jit)
        self.assertGreater(jit["code_bytes"], 0, jit)
        self.assertLessEqual(jit["code_bytes"], 16 << 20, jit)
        self.assertGreater(jit["translate_ns"], 0, jit)
        self.assertGreater(jit["dispatches"], 0, jit)
        self.assertLess(jit["dispatches"], stats["instructions"], jit)
        # A Linux boot has lui+addi, auipc+jalr, slt+bnez pairs: some were fused.
        self.assertGreater(jit["fused_pairs"], 100, jit)
        self.assertLess(jit["fused_pairs"], jit["translated_instructions"], jit)
        # Returns and calls through registers went through the jump cache, mostly hitting.
        self.assertGreater(jit["jumps"], 10000, jit)
        self.assertLess(jit["jump_cache_misses"], jit["jumps"] / 2, jit)
        stats2 = mon.request(op="stats", name="vm2")
        self.assertEqual(stats2["engine"], "interp")
        self.assertIsNone(stats2["jit"])
        self.assertGreater(stats2["instructions"], 10_000_000)
        human = mon.cli("stats", "vm1").stdout
        self.assertRegex(human, r"state:\s+running")
        self.assertRegex(human, r"memory:\s+256M")
        self.assertRegex(human, r"engine:\s+jit\n")
        self.assertRegex(human, r"translated:\s+[1-9]\d* blocks, [1-9]\d* guest instructions, \S+ of code now, "
                                r"\d+ flushes\n")
        self.assertRegex(human, r"dispatches:\s+[1-9]\d* \(\d+ per million instructions\)\n")
        self.assertRegex(human, r"jump cache:\s+[1-9]\d* jumps, [\d.]+% hits\n")
        self.assertRegex(human, r"fused pairs:\s+[1-9]\d*\n")
        human = mon.cli("stats", "vm2").stdout
        self.assertRegex(human, r"engine:\s+interp\n")
        self.assertNotIn("translated:", human)

        table = mon.cli("ls").stdout
        self.assertRegex(table, r"(?m)^NAME\s+STATE")
        self.assertRegex(table, r"(?m)^NAME\s+STATE.*\sENGINE$")
        self.assertRegex(table, r"(?m)^vm1\s+running\s+1\s+256M.*\sjit$")
        self.assertRegex(table, r"(?m)^vm2\s+running\s+1\s+192M.*\sinterp$")

        # Attach again: the old output is replayed and the shell still answers.
        c1 = CliConsole(mon, "vm1")
        try:
            c1.read_until("rvisor-guest: init reached")
            self.assertEqual(c1.command("echo $((6 * 7 + 1000))").strip(), "1042")
            c1.send(b"\x01x")
            self.assertEqual(c1.wait(), 0)
        finally:
            c1.close()

        # Pause stops vm2's clock of instructions; resume lets it go on.
        self.assertEqual(mon.request(op="pause", name="vm2")["state"], "paused")
        n = mon.request(op="stats", name="vm2")["instructions"]
        time.sleep(0.3)
        self.assertEqual(mon.request(op="stats", name="vm2")["instructions"], n)
        self.assertEqual(mon.request(op="resume", name="vm2")["state"], "running")
        self.assertEqual(c2.command("echo back").strip(), "back")

        # Stop vm1: its state stays for inspection, then it is destroyed.
        r = mon.cli("stop", "vm1")
        self.assertIn("vm1: stopped", r.stdout)
        info = mon.request(op="stats", name="vm1")
        self.assertEqual(info["state"], "stopped")
        self.assertNotEqual(info["exit_message"], "")
        self.assertIn("vm1: destroyed", mon.cli("destroy", "vm1").stdout)
        # Destroying vm2 ends its console stream.
        self.assertTrue(mon.request(op="destroy", name="vm2")["ok"])
        self.assertTrue(c2.wait_eof(), "destroying a VM must end its console stream")
        c2.close()
        self.assertEqual(mon.request(op="list")["vms"], [])
        mem = mon.request(op="memory")
        self.assertEqual(mem["used"], 0, mem)

    def test_bad_input_leaves_the_monitor_and_its_guests_alone(self):
        mon = self.mon
        self.assertTrue(self.create("steady")["ok"])
        self.assertTrue(mon.request(op="start", name="steady")["ok"])
        con = SocketConsole(mon, "steady")
        wait_for_shell(con)

        def expect_error(reply, code, part):
            self.assertFalse(reply["ok"], reply)
            self.assertEqual(reply["code"], code, reply)
            self.assertIn(part, reply["error"])

        with mon.connect() as s:
            for line, code, part in [
                (b"{\"op\": \"list\"", "bad_request", "malformed JSON"),
                (b"not json at all", "bad_request", "malformed JSON"),
                (b"[1, 2, 3]", "bad_request", "JSON object"),
                (b"{\"op\": \"teleport\"}", "bad_request", "unknown op"),
                (b"{\"op\": \"start\"}", "bad_request", "missing field \"name\""),
                (b"{\"op\": \"start\", \"name\": 12}", "bad_request", "must be a string"),
                (b"{\"op\": \"create\", \"name\": \"x\", \"kernel\": \"/k\", \"cpus\": \"many\"}", "bad_request",
                 "must be an integer"),
                (b"{\"op\": \"create\", \"name\": \"x\", \"kernel\": \"/k\", \"engine\": \"qemu\"}", "bad_request",
                 "field \"engine\" must be \"jit\" or \"interp\", not \"qemu\""),
                (b"{\"op\": \"create\", \"name\": \"x\", \"kernel\": \"/k\", \"jit_cache\": \"64K\"}", "bad_request",
                 "field \"jit_cache\" must be at least 1 MiB"),
                (b"{\"op\": \"stats\", \"name\": \"ghost\"}", "not_found", "ghost"),
                (b"{\"op\": \"destroy\", \"name\": \"ghost\"}", "not_found", "ghost"),
                (b" " * 70000 + b"{\"op\": \"list\"}", "too_large", "larger than 65536"),
            ]:
                s.sendall(line + b"\n")
                expect_error(read_reply(s), code, part)
            s.sendall(b"{\"op\": \"list\"}\n")
            self.assertEqual([v["name"] for v in read_reply(s)["vms"]], ["steady"])

        expect_error(self.create("steady"), "exists", "steady")
        expect_error(mon.request(op="create", name="nokernel", kernel="/nonexistent/Image"), "invalid", "")
        expect_error(mon.request(op="start", name="steady"), "bad_state", "")
        r = mon.cli("create", "steady", "--kernel", KERNEL, check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("exists", r.stderr)
        r = mon.cli("stats", "ghost", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("no VM named", r.stderr)
        r = mon.cli("create", "x", "--kernel", KERNEL, "--engine", "fast", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("field \"engine\" must be \"jit\" or \"interp\", not \"fast\"", r.stderr)

        # Clients that vanish in the middle of a request, or of a console.
        for _ in range(5):
            s = mon.connect()
            s.sendall(b"{\"op\": \"create\", \"name\": \"half")
            s.close()
            s = mon.connect()
            s.sendall(b"{\"op\": \"console\", \"name\": \"steady\"}\n")
            s.close()
        with mon.connect() as s:
            s.sendall(b"{\"op\": \"list\"")
            s.shutdown(socket.SHUT_WR)
            expect_error(read_reply(s), "incomplete", "connection closed")

        # The guest did not notice.
        self.assertEqual(con.command("echo still-$((1 + 1))").strip(), "still-2")
        self.assertEqual(mon.request(op="stats", name="steady")["state"], "running")
        con.close()

    def test_hostile_paths_in_create_are_refused_at_once(self):
        mon = self.mon
        d = tempfile.mkdtemp(prefix="rvisor-hostile-")
        try:
            fifo = os.path.join(d, "fifo")
            os.mkfifo(fifo)
            sparse = os.path.join(d, "sparse")
            with open(sparse, "wb") as f:
                f.truncate(64 << 30)
            for path, kind in [(fifo, "a FIFO"), ("/dev/zero", "a character device"), (d, "a directory"),
                               ("/proc/self/status", "on procfs, a pseudo file system")]:
                for fields, what in [({"kernel": path}, "kernel '%s' is not a regular file" % path),
                                     ({"kernel": KERNEL, "initrd": path}, "initrd '%s' is not a regular file" % path),
                                     ({"bios": path}, "bios '%s' is not a regular file" % path),
                                     ({"kernel": KERNEL, "drives": ["file=%s,readonly=on" % path]},
                                      "--drive 1: '%s' is not a regular file or block device" % path)]:
                    t0 = time.monotonic()
                    r = mon.request(op="create", name="hostile", mem="64M", **fields)
                    self.assertLess(time.monotonic() - t0, 5, (path, fields))
                    self.assertFalse(r["ok"], r)
                    self.assertEqual(r["code"], "invalid", r)
                    self.assertIn(what, r["error"])
                    self.assertIn("(it is %s)" % kind, r["error"])
            r = mon.request(op="create", name="hostile", mem="64M", kernel=sparse)
            self.assertEqual(r["code"], "invalid", r)
            self.assertIn("(68719476736 bytes) is larger than guest memory (64 MiB)", r["error"])
            self.assertEqual(mon.request(op="list")["vms"], [])
            self.assertEqual(mon.request(op="memory")["used"], 0)
        finally:
            shutil.rmtree(d, ignore_errors=True)

    def test_stalled_clients_leave_others_and_the_guest_alone(self):
        mon = self.mon
        self.assertTrue(self.create("steady")["ok"])
        self.assertTrue(mon.request(op="start", name="steady")["ok"])
        con = SocketConsole(mon, "steady")
        wait_for_shell(con)

        silent = mon.connect()                  # says nothing at all
        partial = mon.connect()                 # stops in the middle of a request
        partial.sendall(b"{\"op\": \"li")
        partial_since = time.monotonic()
        deaf = mon.connect()                    # asks and never reads the answers
        deaf.setblocking(False)
        sent, idle = 0, 0
        while idle < 5:
            try:
                while True:
                    deaf.send(b"{\"op\": \"list\"}\n")
                    sent += 1
                idle = 0
            except BlockingIOError:
                idle += 1
                time.sleep(0.05)
        self.assertGreater(sent, 100)

        # Everyone else is answered at once, and the guest runs on.
        for i in range(10):
            t0 = time.monotonic()
            self.assertEqual([v["name"] for v in mon.request(op="list")["vms"]], ["steady"])
            self.assertEqual(mon.cli("stats", "steady").returncode, 0)
            self.assertLess(time.monotonic() - t0, 2, "requests stalled behind misbehaving clients")
            self.assertEqual(con.command("echo alive-$((%d + 1))" % i, timeout=10).strip(), "alive-%d" % (i + 1))

        # The half-sent request runs out of time and is dropped; the silent
        # connection, between requests, may stay.
        partial.settimeout(30)
        reply = read_reply(partial)
        self.assertEqual(reply["code"], "timeout", reply)
        self.assertEqual(partial.recv(1), b"")
        self.assertGreater(time.monotonic() - partial_since, 9)
        silent.sendall(b"{\"op\": \"list\"}\n")
        self.assertTrue(read_reply(silent)["ok"])
        for s in (silent, partial, deaf):
            s.close()
        self.assertIn("dropped a control client that left a request unfinished", mon.output())
        self.assertEqual(mon.request(op="stats", name="steady")["state"], "running")
        con.close()

    @unittest.skipUnless(os.geteuid() == 0, "needs root to connect as another uid")
    def test_peer_of_another_uid_is_refused_whatever_the_mode(self):
        mon = self.mon
        # The mode alone would now let anyone connect.
        os.chmod(mon.dir, 0o711)
        os.chmod(mon.sock, 0o777)
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.setgid(65534)
                os.setuid(65534)  # before connect: the kernel records the peer's uid then
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.settimeout(10)
                s.connect(mon.sock)
                try:
                    s.sendall(b"{\"op\": \"list\"}\n")
                except OSError:
                    pass
                data = b""
                while True:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                code = 0 if b"\"denied\"" in data and b"\"ok\":true" not in data else 2
            except ConnectionResetError:
                code = 0
            except BaseException:
                code = 3
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        self.assertEqual(os.waitstatus_to_exitcode(status), 0, "uid 65534 was not refused")
        self.assertRegex(mon.output(), r"refused a connection to .* from uid 65534 \(pid \d+\)")
        self.assertTrue(mon.request(op="list")["ok"])  # the owner still is served

    def test_guest_poweroff_ends_the_console(self):
        mon = self.mon
        self.assertTrue(self.create("short")["ok"])
        self.assertTrue(mon.request(op="start", name="short")["ok"])
        c = CliConsole(mon, "short")
        try:
            wait_for_shell(c)
            c.send("poweroff -f\n")
            self.assertEqual(c.wait(), 0)
            self.assertIn(b"short stopped", c.output)
        finally:
            c.close()
        info = mon.request(op="stats", name="short")
        self.assertEqual(info["state"], "stopped")
        self.assertEqual(info["exit_status"], 0)
        # Its console can still be read, without a terminal, until the end.
        r = mon.cli("console", "short")
        self.assertIn("rvisor-guest: init reached", r.stdout)
        self.assertIn("poweroff -f", r.stdout)

    def test_shutdown_request_stops_everything(self):
        mon = self.mon
        self.assertTrue(self.create("a")["ok"])
        self.assertTrue(mon.request(op="start", name="a")["ok"])
        r = mon.cli("shutdown")
        self.assertIn("shutting down", r.stdout)
        self.assertEqual(mon.proc.wait(60), 0, mon.output())
        self.assertFalse(os.path.exists(mon.sock))
        r = mon.cli("ls", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("cannot connect to the monitor at " + mon.sock, r.stderr)


class MonitorLimits(unittest.TestCase):
    def test_exhausted_machine_memory_is_an_error_reply(self):
        mon = Monitor("--machine-mem", "4M")
        try:
            reply = mon.request(op="create", name="big", kernel=KERNEL, initrd=INITRD, append=APPEND)
            self.assertFalse(reply["ok"], reply)
            self.assertEqual(reply["code"], "no_memory", reply)
            self.assertEqual(mon.request(op="list")["vms"], [])
            self.assertEqual(mon.request(op="memory")["used"], 0)
            r = mon.cli("create", "big", "--kernel", KERNEL, "--initrd", INITRD, check=False)
            self.assertEqual(r.returncode, 1)
            self.assertIn("rvisor: ", r.stderr)
            self.assertEqual(mon.stop(signal.SIGINT), 0)
        finally:
            mon.close()

    def test_cli_without_a_monitor(self):
        sock = os.path.join(tempfile.gettempdir(), "rvisor-no-such-%d.sock" % os.getpid())
        for args in (["ls"], ["stats", "x"], ["console", "x"], ["create", "x", "--kernel", KERNEL]):
            r = subprocess.run([RVISOR] + args + ["--socket", sock], stdin=subprocess.DEVNULL,
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 1, args)
            self.assertIn("cannot connect to the monitor at " + sock, r.stderr)

    def test_second_monitor_on_the_same_socket_is_refused(self):
        mon = Monitor("--machine-mem", "64M")
        try:
            r = subprocess.run([RVISOR, "serve", "--socket", mon.sock, "--machine-mem", "64M"],
                               stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 1)
            self.assertIn("already serving", r.stderr)
            self.assertTrue(mon.request(op="list")["ok"])
            self.assertEqual(mon.stop(), 0)
        finally:
            mon.close()


if __name__ == "__main__":
    unittest.main()
