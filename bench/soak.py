"""Soak: many VMs under one `rvisor serve` for a long time, busy, while a
driver keeps changing them; the monitor must not leak or lose anything.

Each VM (the default guest, a sparse raw disk of its own, user-mode
networking) runs a loop in the background from its /init: it writes 256 KiB
of random data (as base64 text) to its disk (O_DIRECT, fsync), reads it
back and compares; fetches 256 KiB from an HTTP server on the host
(10.0.2.2) and checks its md5; posts the data it wrote to the server, which
checks it; then sleeps a second. Its shell stays on the console. Meanwhile
driver threads cycle through the VMs: console attach / command / detach
(over the API, and every third time through `rvisor console` on a
pseudo-terminal), balloon target changes, pause / check that the instruction
count stands still / resume, and, in a thread of their own, destroy +
create + boot cycles. A sampler reads the monitor's resident memory, open
descriptors and threads from /proc every second, and checks through the
API that every VM is listed in the state it should be in.

Phases: boot; warm-up (the driver running); a quiet count (every guest's
loop held, the driver stopped, until the monitor's descriptors stay the
same for 10 s); the soak proper; the quiet count again; shutdown.

Every request has its own connection (the sampler keeps one open) and is
timed; one not answered within 60 s counts as unanswered. The run fails
(exit status 1) if any request is unanswered or refused, a VM disappears,
stops, stops answering on its console, stops making progress in its loop or
reads back wrong data, the monitor does not shut down cleanly, or if the
monitor grows from the first quiet count to the second: its own memory
(resident memory minus the machine memory guests hold and minus translated
code, a cache bounded by --jit-cache per hart) by more than a tolerance
(8 MiB + 1 MiB per VM), its descriptors by more than 2, its threads by more
than 1. The samples in between are reported (medians of the first and last
10%, and the maximum), not judged: they swing with the load.

    python3 bench/soak.py --vms 16 --minutes 60

`run_soak()` is the same thing as a function (tests/e2e/test_soak.py runs a
short one)."""
import argparse
import hashlib
import http.server
import json
import os
import random
import re
import select
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
MiB = 1 << 20
PROMPT = re.compile(rb"rvisor:[^\r\n]*# ")
REQUEST_TIMEOUT = 60   # a reply later than this is "unanswered"
ANSWER_TIMEOUT = 90    # a console command's answer
BOOT_TIMEOUT = 300     # a (re)created VM's shell
STALL_S = 150          # a VM whose loop made no iteration for this long is stuck
BLOB = random.Random(12).randbytes(256 * 1024)  # what the guests fetch
BLOB_MD5 = hashlib.md5(BLOB).hexdigest()
SCRIPT_BYTES = 64 * 1024  # the workload script's room at the start of each disk
DISK_BYTES = 64 * MiB


# The guest's workload, stored at the start of its disk and started by /init
# (rvisor_run below). It counts iterations (i), disk round trips that read
# back what was written (d) or not (e), and network round trips that worked
# (n) or not (f), in /tmp/c (renamed into place: a reader never sees it
# empty).
WORKLOAD = r"""# rvisor soak workload for {name} (bench/soak.py); /tmp/w is text (256 KiB
# of base64): busybox wget --post-file stops at a NUL byte.
ip link set eth0 up
udhcpc -i eth0 -q -n -t 10 >/dev/null 2>&1
i=0; d=0; e=0; n=0; f=0
U=http://10.0.2.2:{port}
while :; do
  while [ -e /tmp/hold ]; do sleep 1; done
  i=$((i+1))
  s=$((16 + i % 240 * 4))
  dd if=/dev/urandom bs=48k count=4 2>/dev/null | base64 -w 0 >/tmp/w
  a=$(md5sum </tmp/w)
  dd if=/tmp/w of=/dev/vda bs=64k seek=$s oflag=direct conv=fsync 2>/dev/null
  b=$(dd if=/dev/vda bs=64k skip=$s count=4 iflag=direct 2>/dev/null | md5sum)
  if [ "$a" = "$b" ]; then d=$((d+1)); else e=$((e+1)); fi
  g=$(wget -q -T 20 -O - $U/get/{name}/$i | md5sum)
  if [ "$g" = "{md5}  -" ] && wget -q -T 20 -O /dev/null --post-file /tmp/w $U/put/{name}/$i/${{a%% *}}; then
    n=$((n+1))
  else
    f=$((f+1))
  fi
  echo "$i $d $e $n $f" >/tmp/c.new
  mv /tmp/c.new /tmp/c
  sleep {sleep}
done
"""
RUN = ("dd if=/dev/vda of=/tmp/s bs=4k count=%d 2>/dev/null; sh /tmp/s </dev/null >/dev/null 2>&1 & "
       "setsid cttyhack sh" % (SCRIPT_BYTES // 4096))


def guest_dir():
    out = subprocess.run([os.path.join(ROOT, "guests", "build.sh")], check=True, capture_output=True, text=True)
    return out.stdout.strip().splitlines()[-1]


class Unanswered(Exception):
    pass


class Refused(Exception):
    pass


class Ledger:
    """What happened, from every thread: operations by kind, requests by op
    (count, refused, unanswered, worst latency), problems (the run fails)
    and notes (reported only)."""

    def __init__(self, log):
        self.lock = threading.Lock()
        self.ops = {}
        self.requests = {}
        self.problems = []
        self.notes = []
        self.log = log
        self.t0 = time.monotonic()

    def op(self, kind, n=1):
        with self.lock:
            self.ops[kind] = self.ops.get(kind, 0) + n

    def request(self, op, seconds, outcome):
        with self.lock:
            r = self.requests.setdefault(op, {"count": 0, "refused": 0, "unanswered": 0, "max_s": 0.0,
                                              "total_s": 0.0, "over_1s": 0})
            r["count"] += 1
            if outcome != "ok":
                r[outcome] += 1
            r["max_s"] = max(r["max_s"], seconds)
            r["total_s"] += seconds
            r["over_1s"] += seconds > 1

    def problem(self, msg):
        with self.lock:
            self.problems.append("%7.1fs %s" % (time.monotonic() - self.t0, msg))
        self.log("PROBLEM: " + msg)

    def note(self, msg):
        with self.lock:
            self.notes.append("%7.1fs %s" % (time.monotonic() - self.t0, msg))
        self.log("note: " + msg)


def read_line(s, buf=b""):
    """Reads one line from a socket; returns (line, what followed it)."""
    while b"\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            raise Unanswered("connection closed before a reply (got %r)" % buf[:200])
        buf += chunk
    line, rest = buf.split(b"\n", 1)
    return line, rest


class Api:
    """Requests to the monitor: each on a new connection unless keep=True.
    Every request is timed and accounted in the ledger."""

    def __init__(self, path, ledger, keep=False):
        self.path, self.ledger, self.keep = path, ledger, keep
        self.s = None

    def _connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(REQUEST_TIMEOUT)
        s.connect(self.path)
        return s

    def __call__(self, **req):
        t0 = time.monotonic()
        try:
            if self.s is None:
                self.s = self._connect()
            self.s.sendall(json.dumps(req).encode() + b"\n")
            line, _ = read_line(self.s)
            reply = json.loads(line)
        except (OSError, Unanswered, ValueError) as e:
            self.ledger.request(req["op"], time.monotonic() - t0, "unanswered")
            self.close()
            raise Unanswered("%s: %s" % (req, e))
        finally:
            if not self.keep:
                self.close()
        dt = time.monotonic() - t0
        if not reply.get("ok"):
            self.ledger.request(req["op"], dt, "refused")
            raise Refused("%s: %s" % (req, reply))
        self.ledger.request(req["op"], dt, "ok")
        return reply

    def close(self):
        if self.s is not None:
            self.s.close()
            self.s = None


class Stream:
    """Output read from a descriptor as it comes; subclasses give fd()
    and recv() (b"" or None: the stream ended)."""

    def read_until(self, pattern, timeout):
        deadline = time.monotonic() + timeout
        while True:
            m = pattern.search(self.out, self.pos)
            if m:
                self.pos = m.end()
                return m
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            r, _, _ = select.select([self.fd()], [], [], min(left, 1.0))
            if r:
                chunk = self.recv()
                if not chunk:
                    return None
                self.out += chunk


class Console(Stream):
    """A VM's console stream over the API."""

    def __init__(self, path, ledger, name):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(REQUEST_TIMEOUT)
        t0 = time.monotonic()
        try:
            self.s.connect(path)
            self.s.sendall(json.dumps({"op": "console", "name": name}).encode() + b"\n")
            line, self.out = read_line(self.s)
            reply = json.loads(line)
        except (OSError, Unanswered, ValueError) as e:
            ledger.request("console", time.monotonic() - t0, "unanswered")
            self.s.close()
            raise Unanswered("console %s: %s" % (name, e))
        if not reply.get("ok"):
            ledger.request("console", time.monotonic() - t0, "refused")
            self.s.close()
            raise Refused("console %s: %s" % (name, reply))
        ledger.request("console", time.monotonic() - t0, "ok")
        self.pos = 0

    def fd(self):
        return self.s

    def recv(self):
        return self.s.recv(65536)

    def send(self, data):
        self.s.sendall(data)

    def close(self):
        self.s.close()


class CliConsole(Stream):
    """`rvisor console NAME` on a pseudo-terminal; Ctrl-A x detaches."""

    def __init__(self, rvisor, path, name):
        import pty
        self.master, slave = pty.openpty()
        self.p = subprocess.Popen([rvisor, "console", name, "--socket", path], stdin=slave, stdout=slave,
                                  stderr=slave, start_new_session=True)
        os.close(slave)
        self.out, self.pos = b"", 0
        # Typed before the client put the terminal in raw mode, input would be flushed.
        self.attached = self.read_until(re.compile(rb"attached to"), REQUEST_TIMEOUT) is not None

    def fd(self):
        return self.master

    def recv(self):
        try:
            return os.read(self.master, 65536)
        except OSError:
            return None  # the client closed the terminal

    def send(self, data):
        os.write(self.master, data)

    def detach(self, timeout=30):
        """Ctrl-A x; returns the client's exit status (None: it did not exit)."""
        self.send(b"\x01x")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.p.poll() is not None:
                self.read_until(re.compile(rb"(?!)"), 0.2)  # what it wrote last
                return self.p.returncode
            self.read_until(re.compile(rb"(?!)"), 0.2)
        return None

    def close(self):
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait()
        os.close(self.master)


class HostServer:
    """The HTTP server the guests talk to (10.0.2.2 is the host's loopback):
    GET /get/NAME/I sends BLOB; POST /put/NAME/I/MD5 checks the body's md5."""

    def __init__(self):
        self.lock = threading.Lock()
        self.counts = {}  # name -> [gets, puts ok, puts bad, bytes, puts cut short]
        srv = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def count(self, name, k, nbytes):
                with srv.lock:
                    c = srv.counts.setdefault(name, [0, 0, 0, 0, 0])
                    c[k] += 1
                    c[3] += nbytes

            def do_GET(self):
                parts = self.path.split("/")
                if len(parts) != 4 or parts[1] != "get":
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(BLOB)))
                self.end_headers()
                self.wfile.write(BLOB)
                self.count(parts[2], 0, len(BLOB))

            def do_POST(self):
                parts = self.path.split("/")
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                if len(parts) != 5 or parts[1] != "put":
                    self.send_error(404)
                    return
                good = hashlib.md5(body).hexdigest() == parts[4]
                # A body cut short is a VM destroyed in the middle of sending it.
                self.count(parts[2], 1 if good else 2 if len(body) == n else 4, len(body))
                self.send_response(200 if good else 400)
                self.send_header("Content-Length", "0")
                self.end_headers()

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass  # a guest destroyed in the middle of a transfer

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def totals(self):
        with self.lock:
            c = [0, 0, 0, 0, 0]
            for v in self.counts.values():
                c = [a + b for a, b in zip(c, v)]
            return c

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class Vm:
    def __init__(self, index, workdir, port, sleep):
        self.name = "soak%02d" % index
        self.console = "virtio" if index % 2 else "uart"
        self.disk = os.path.join(workdir, self.name + ".img")
        script = WORKLOAD.format(name=self.name, port=port, md5=BLOB_MD5, sleep=sleep).encode()
        assert len(script) < SCRIPT_BYTES
        with open(self.disk, "wb") as f:
            f.write(script + b"\n" * (SCRIPT_BYTES - len(script)))
            f.truncate(DISK_BYTES)
        self.lock = threading.Lock()   # held by whoever acts on the VM
        self.pause_gen = 0             # odd while a pause is in progress
        self.recreate_gen = 0          # odd between destroy and create
        self.instance = 0              # bumped by each create
        self.born = 0.0                # when this instance was created
        self.last = None               # (time, instance, iterations) at the last console answer
        self.balloon = None            # (target bytes, when set, instance)
        self.lost = False
        self.counters = None           # last "i d e n f" read
        self.counters_instance = 0
        self.past = [0] * 5            # counters of the instances destroyed

    def spec(self, kernel, initrd, mem):
        dev = "hvc0" if self.console == "virtio" else "ttyS0"
        return dict(op="create", name=self.name, kernel=kernel, initrd=initrd, mem=mem,
                    append='console=%s quiet rvisor_run="%s"' % (dev, RUN), drives=["file=" + self.disk],
                    nets=["user"], console=self.console)


def socket_inodes():
    """inode -> kind for this network namespace's sockets."""
    kinds = {}
    for kind in ("tcp", "tcp6", "udp", "udp6", "unix"):
        try:
            with open("/proc/net/" + kind) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    inode = fields[6] if kind == "unix" else fields[9]
                    kinds[inode] = kind.rstrip("6")
        except OSError:
            pass
    return kinds


def fd_kinds(pid):
    """A process's open descriptors by kind: unix / tcp / udp sockets,
    eventfd, pipe, file, ..."""
    socks = socket_inodes()
    out = {}
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            t = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if t.startswith("socket:["):
            k = "socket-" + socks.get(t[8:-1], "other")
        elif t.startswith("anon_inode:"):
            k = t[11:].strip("[]")
        elif t.startswith("pipe:"):
            k = "pipe"
        elif t.startswith("/dev/"):
            k = t
        else:
            k = "file"
        out[k] = out.get(k, 0) + 1
    return out


def proc_status(pid):
    """(VmRSS bytes, open descriptors, threads) of a process."""
    rss = threads = 0
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
    return rss, len(os.listdir("/proc/%d/fd" % pid)), threads


class Soak:
    def __init__(self, rvisor, guest, vms=16, seconds=3600, warmup=None, mem="256M", sleep=1, threads=2,
                 recreate_every=None, sample_s=1.0, rss_tolerance_mib=None, fd_tolerance=2, thread_tolerance=1,
                 workdir=None, log=None, smaps_dir=None):
        self.rvisor, self.guest = rvisor, guest
        self.nvms, self.seconds, self.mem, self.sleep = vms, seconds, mem, sleep
        self.mem_bytes = int(mem[:-1]) * MiB if mem.endswith("M") else int(mem) * MiB
        self.warmup = warmup if warmup is not None else min(300.0, max(30.0, 0.1 * seconds))
        self.nthreads = threads
        # By default a VM is destroyed and made again every 240/N s: each VM
        # about every 4 minutes.
        self.recreate_every = recreate_every if recreate_every is not None else max(10.0, 240.0 / vms)
        self.sample_s = sample_s
        self.rss_tolerance = (rss_tolerance_mib if rss_tolerance_mib is not None else 8 + vms) * MiB
        self.fd_tolerance, self.thread_tolerance = fd_tolerance, thread_tolerance
        self.smaps_dir = smaps_dir
        self.own_dir = workdir is None
        self.workdir = workdir or tempfile.mkdtemp(prefix="rvisor-soak-")
        self.log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
        self.ledger = Ledger(self._log)
        self.stop = threading.Event()
        self.samples = []  # (t, rss, used, fds, threads, code bytes)
        self.fd_samples = []  # the descriptors by kind, at each sample
        self.console_latency = 0.0
        self.boot_latency = 0.0
        self.vms = []
        self.recreated = 0
        self.quiet = {}

    def _log(self, msg):
        self.log("[%7.1fs] %s" % (time.monotonic() - self.ledger.t0, msg))

    # --- acting on VMs -------------------------------------------------------------------------

    def api(self, **req):
        return Api(self.sock, self.ledger)(**req)

    def console_check(self, vm, boot=False, cli=False, prefix=""):
        """Attaches to vm's console, has its shell run prefix and compute
        something, reads the answer and the loop's counters, detaches. Returns
        True if it answered."""
        t0 = time.monotonic()
        con = CliConsole(self.rvisor, self.sock, vm.name) if cli else Console(self.sock, self.ledger, vm.name)
        try:
            if boot:
                if not con.read_until(re.compile(rb"init reached"), BOOT_TIMEOUT) or \
                        not con.read_until(PROMPT, 60):
                    self.ledger.problem("%s did not boot to its shell within %ds (instance %d)"
                                        % (vm.name, BOOT_TIMEOUT, vm.instance))
                    return False
                self.boot_latency = max(self.boot_latency, time.monotonic() - t0)
            if cli and not con.attached:
                self.ledger.problem("rvisor console %s did not attach: %r" % (vm.name, con.out[-200:]))
                return False
            t1 = time.monotonic()
            nonce, a, b = random.randrange(10 ** 6), random.randrange(1000), random.randrange(1000)
            con.send(b"%secho soak-%d-$((%d+%d)) $(cat /tmp/c 2>/dev/null)\n" % (prefix.encode(), nonce, a, b))
            m = con.read_until(re.compile(rb"soak-%d-%d ?([0-9 ]*)\r*\n" % (nonce, a + b)), ANSWER_TIMEOUT)
            if not m:
                self.ledger.problem("%s did not answer on its console within %ds%s" %
                                    (vm.name, ANSWER_TIMEOUT, " (rvisor console)" if cli else ""))
                return False
            now = time.monotonic()
            self.console_latency = max(self.console_latency, now - t1)
            trouble = self._progress(vm, now, m.group(1).decode().split())
            if trouble:
                self.ledger.problem(trouble + self._diagnose(con))
            if cli:
                rc = con.detach()
                if rc != 0 or b"detached" not in con.out:
                    self.ledger.problem("rvisor console %s: exit status %s on Ctrl-A x" % (vm.name, rc))
            self.ledger.op("console_cli" if cli else "console")
            return True
        finally:
            con.close()

    def _diagnose(self, con):
        """What the guest runs (for a loop that seems stuck)."""
        nonce = random.randrange(10 ** 6)
        con.send(b"ps | grep -v ']$'; echo diag-%d-$((1+1))\n" % nonce)
        start = con.pos
        m = con.read_until(re.compile(rb"diag-%d-2" % nonce), 30)
        if not m:
            return " (no answer to ps)"
        text = con.out[start:m.start()]
        echo = text.rfind(b"diag-%d-$((1+1))" % nonce)  # what the shell printed follows the command's echo
        text = text[echo:].decode(errors="replace").replace("\r", "")
        return "; in the guest: " + " | ".join(line.strip() for line in text.split("\n")[1:] if line.strip())

    def _progress(self, vm, now, fields):
        """Checks the loop's counters (iterations, disk ok, disk bad, net ok,
        net failed); returns what is wrong with them, if anything."""
        if len(fields) != 5:
            if now - vm.born > STALL_S:
                return "%s: no workload counters %.0fs after boot" % (vm.name, now - vm.born)
            return None
        i, d, e, n, f = map(int, fields)
        if e and (not vm.counters or vm.counters[2] != e or vm.counters_instance != vm.instance):
            self.ledger.problem("%s read back different data from its disk (%d of %d round trips)"
                                % (vm.name, e, d + e))
        trouble = None
        if vm.last and vm.last[1] == vm.instance:
            if i <= vm.last[2] and now - vm.last[0] > STALL_S:
                trouble = "%s: its loop made no iteration in %.0fs (at %d)" % (vm.name, now - vm.last[0], i)
        if not vm.last or vm.last[1] != vm.instance or i > vm.last[2]:
            vm.last = (now, vm.instance, i)
        vm.counters, vm.counters_instance = (i, d, e, n, f), vm.instance
        return trouble

    def pause_check(self, vm):
        vm.pause_gen += 1
        try:
            r = self.api(op="pause", name=vm.name)
            if r["state"] != "paused":
                self.ledger.problem("%s: pause left it %s" % (vm.name, r["state"]))
            time.sleep(0.5)
            n1 = self.api(op="stats", name=vm.name)["instructions"]
            time.sleep(0.5)
            n2 = self.api(op="stats", name=vm.name)["instructions"]
            if n1 != n2:
                self.ledger.problem("%s ran %d instructions while paused" % (vm.name, n2 - n1))
        finally:
            try:
                r = self.api(op="resume", name=vm.name)
                if r["state"] != "running":
                    self.ledger.problem("%s: resume left it %s" % (vm.name, r["state"]))
            finally:
                vm.pause_gen += 1
        self.ledger.op("pause_resume")

    def balloon_change(self, vm):
        now = time.monotonic()
        if vm.balloon and vm.balloon[2] == vm.instance and now - vm.balloon[1] > 30:
            info = self.api(op="stats", name=vm.name)
            actual = info["balloon"]["actual"]
            if actual != vm.balloon[0]:
                self.ledger.note("%s: balloon at %d MiB, %.0fs after a target of %d MiB"
                                 % (vm.name, actual // MiB, now - vm.balloon[1], vm.balloon[0] // MiB))
                self.ledger.op("balloon_late")
        targets = [self.mem_bytes * 3 // 4, self.mem_bytes // 2, self.mem_bytes]
        cur = vm.balloon[0] if vm.balloon and vm.balloon[2] == vm.instance else self.mem_bytes
        target = targets[(targets.index(cur) + 1) % len(targets)] if cur in targets else targets[0]
        r = self.api(op="balloon", name=vm.name, target=target)
        if r["balloon"]["target"] != target:
            self.ledger.problem("%s: balloon target %r, asked %d" % (vm.name, r["balloon"]["target"], target))
        vm.balloon = (target, time.monotonic(), vm.instance)
        self.ledger.op("balloon")

    def create(self, vm):
        spec = vm.spec(os.path.join(self.guest, "Image"), os.path.join(self.guest, "initrd.gz"), self.mem)
        self.api(**spec)
        vm.instance += 1
        vm.born = time.monotonic()
        vm.balloon = None
        self.api(op="start", name=vm.name)

    def recreate(self, vm):
        # It answers before it goes; keep what its loop did.
        self.console_check(vm)
        if vm.counters and vm.counters_instance == vm.instance:
            vm.past = [a + b for a, b in zip(vm.past, vm.counters)]
        vm.counters = None
        vm.recreate_gen += 1
        try:
            self.api(op="destroy", name=vm.name)
            self.create(vm)
        finally:
            vm.recreate_gen += 1
        if self.console_check(vm, boot=True):
            self.ledger.op("destroy_create")

    # --- threads -------------------------------------------------------------------------------

    def _guard(self, what, fn, *args):
        try:
            fn(*args)
        except (Unanswered, Refused) as e:
            self.ledger.problem("%s: %s" % (what, e))
        except Exception as e:  # a bug here must not look like a clean run
            self.ledger.problem("%s: %s: %s" % (what, type(e).__name__, e))

    def _usable(self):
        return [vm for vm in self.vms if not vm.lost]

    def _ops_thread(self, k, stop):
        actions = ["console", "balloon", "pause", "console", "balloon", "console_cli"]
        step = 0
        cursor = {}  # each kind of action goes round the VMs on its own
        while not stop.is_set():
            vms = self._usable()
            if not vms:
                return
            action = actions[step % len(actions)]
            step += 1
            c = cursor[action] = cursor.get(action, -1) + 1
            vm = vms[(c + k * (len(vms) // max(1, self.nthreads))) % len(vms)]
            if not vm.lock.acquire(blocking=False):
                continue
            try:
                if action == "console":
                    self._guard("console " + vm.name, self.console_check, vm)
                elif action == "console_cli":
                    self._guard("rvisor console " + vm.name, self.console_check, vm, False, True)
                elif action == "balloon":
                    self._guard("balloon " + vm.name, self.balloon_change, vm)
                else:
                    self._guard("pause " + vm.name, self.pause_check, vm)
            finally:
                vm.lock.release()
            stop.wait(0.2)

    def _recreate_thread(self, stop):
        while not stop.wait(self.recreate_every):
            vms = self._usable()
            if not vms:
                return
            vm = vms[self.recreated % len(vms)]
            self.recreated += 1
            with vm.lock:
                self._guard("destroy/create " + vm.name, self.recreate, vm)

    def _sample(self, conn):
        rss, fds, threads = proc_status(self.serve.pid)
        before = [(vm.pause_gen, vm.recreate_gen) for vm in self.vms]
        used = conn(op="memory")["used"]
        listing = conn(op="list")["vms"]
        after = [(vm.pause_gen, vm.recreate_gen) for vm in self.vms]
        self.ledger.op("sample")
        code = sum((v.get("jit") or {}).get("code_bytes", 0) for v in listing)
        self.samples.append((time.monotonic(), rss, used, fds, threads, code))
        self.fd_samples.append(fd_kinds(self.serve.pid))
        by_name = {v["name"]: v for v in listing}
        for vm, (p0, r0), (p1, r1) in zip(self.vms, before, after):
            if vm.lost:
                continue
            v = by_name.get(vm.name)
            if v is None:
                if not (r0 % 2 or r0 != r1):
                    vm.lost = True
                    self.ledger.problem("%s is no longer listed" % vm.name)
            elif v["state"] == "stopped":
                if not (r0 % 2 or r0 != r1):
                    vm.lost = True
                    self.ledger.problem("%s stopped: exit status %s, %s" % (vm.name, v.get("exit_status"),
                                                                          v.get("exit_message")))
            elif v["state"] == "paused" and not (p0 % 2 or p0 != p1):
                self.ledger.problem("%s is paused though nobody paused it" % vm.name)

    def _sampler_thread(self):
        conn = Api(self.sock, self.ledger, keep=True)
        next_t = time.monotonic()
        while not self.stop.is_set():
            if self.serve.poll() is not None:
                self.ledger.problem("rvisor serve exited with status %d" % self.serve.returncode)
                self.stop.set()
                return
            self._guard("sample", self._sample, conn)
            next_t = max(next_t + self.sample_s, time.monotonic())
            self.stop.wait(next_t - time.monotonic())
        conn.close()

    # --- the run -------------------------------------------------------------------------------

    def run(self):
        # Its own copy: the checkout's binary may be rebuilt during a long run.
        copy = os.path.join(self.workdir, "rvisor")
        shutil.copy2(self.rvisor, copy)
        self.rvisor = copy
        self.server = HostServer()
        self.sock = os.path.join(self.workdir, "rv.sock")
        self.serve_log = open(os.path.join(self.workdir, "serve.log"), "w+b")
        machine = self.nvms * self.mem_bytes + 1024 * MiB
        self.serve = subprocess.Popen([self.rvisor, "serve", "--socket", self.sock,
                                       "--machine-mem", "%dM" % (machine // MiB)],
                                      stdin=subprocess.DEVNULL, stdout=self.serve_log, stderr=subprocess.STDOUT)
        try:
            return self._run()
        finally:
            self.stop.set()
            if self.serve.poll() is None:
                self.serve.kill()
                self.serve.wait()
            self.server.close()
            self.serve_log.close()
            if self.own_dir:
                shutil.rmtree(self.workdir, ignore_errors=True)

    def _run(self):
        deadline = time.monotonic() + 20
        while not os.path.exists(self.sock):
            if self.serve.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("rvisor serve did not start")
            time.sleep(0.02)
        self.vms = [Vm(i, self.workdir, self.server.port, self.sleep) for i in range(self.nvms)]
        self._log("%d VMs of %s, %d driver threads, a VM remade every %.0fs, %.0fs of soak after boot "
                  "(warm-up %.0fs)" % (self.nvms, self.mem, self.nthreads, self.recreate_every, self.seconds,
                                       self.warmup))
        t_boot = time.monotonic()
        for vm in self.vms:
            self.create(vm)
        for vm in self.vms:
            if not self.console_check(vm, boot=True):
                vm.lost = True
        self._log("all booted in %.1fs" % (time.monotonic() - t_boot))

        self.t_start = time.monotonic()
        sampler = threading.Thread(target=self._sampler_thread, daemon=True)
        sampler.start()
        # Warm-up, then a quiet count of what the monitor holds; the soak
        # proper, then the same count again.
        self._drive(self.warmup, "warm-up")
        self.quiesce("start")
        self.t_measure = time.monotonic()
        self._drive(max(0.0, self.seconds - self.warmup), "soak")
        self.t_measure_end = time.monotonic()
        self.quiesce("end", release=False)  # also the final check: every VM answers
        self.stop.set()
        sampler.join(REQUEST_TIMEOUT + 10)

        final = {}
        try:
            for v in self.api(op="list")["vms"]:
                final[v["name"]] = v
        except (Unanswered, Refused) as e:
            self.ledger.problem("final list: %s" % e)
        for vm in self.vms:
            state = final.get(vm.name, {}).get("state")
            if not vm.lost and state != "running":
                vm.lost = True
                self.ledger.problem("%s is %s at the end" % (vm.name, state or "not listed"))
        lost = [vm.name for vm in self.vms if vm.lost]
        for vm in self.vms:
            c = vm.counters
            if vm.lost or time.monotonic() - vm.born < STALL_S:  # just remade: it may not have got far
                continue
            if not c or c[0] == 0 or c[3] == 0:
                self.ledger.problem("%s: no completed iteration with network I/O (counters %s)" % (vm.name, c))
        # The monitor must stop cleanly, every VM with it.
        t0 = time.monotonic()
        try:
            self.api(op="shutdown")
            rc = self.serve.wait(120)
            if rc != 0:
                self.ledger.problem("rvisor serve exited with status %d on shutdown" % rc)
        except subprocess.TimeoutExpired:
            self.ledger.problem("rvisor serve did not exit within 120s of shutdown")
        except (Unanswered, Refused) as e:
            self.ledger.problem("shutdown: %s" % e)
        shutdown_s = time.monotonic() - t0
        res = self._summary(self.t_measure_end - self.t_start, lost, shutdown_s)
        self.serve_log.seek(0)
        res["serve_log"] = self.serve_log.read()[-3000:].decode(errors="replace")
        return res

    def _drive(self, seconds, phase):
        """Runs the driver threads for this long."""
        stop = threading.Event()
        threads = [threading.Thread(target=self._recreate_thread, args=(stop,), daemon=True, name="recreate")]
        threads += [threading.Thread(target=self._ops_thread, args=(k, stop), daemon=True, name="ops%d" % k)
                    for k in range(self.nthreads)]
        for t in threads:
            t.start()
        t0 = last_report = time.monotonic()
        self._log("%s: %.0fs" % (phase, seconds))
        while not self.stop.wait(1.0):
            now = time.monotonic()
            if now - t0 >= seconds:
                break
            if now - last_report >= 60:
                last_report = now
                s = self.samples[-1] if self.samples else None
                if s:
                    self._log("rss %.1f MiB (own %.1f), %d fds, %d threads; ops %s; problems %d"
                              % (s[1] / MiB, (s[1] - s[2]) / MiB, s[3], s[4], self._ops_brief(),
                                 len(self.ledger.problems)))
        stop.set()
        for t in threads:
            t.join(BOOT_TIMEOUT + ANSWER_TIMEOUT + 60)
            if t.is_alive():
                self.ledger.problem("driver thread %s is stuck" % t.name)

    def quiesce(self, label, release=True, settle=10, limit=120):
        """Holds every VM's loop (and the driver is stopped), waits until the
        monitor's descriptors stay the same for `settle` s (libslirp keeps a
        closed connection's socket through TCP's TIME_WAIT, 10 s), and records
        what the monitor holds then. Then lets the loops go on."""
        for vm in self._usable():
            with vm.lock:
                self._guard("hold " + vm.name, self.console_check, vm, False, False, "touch /tmp/hold; ")
        t0 = time.monotonic()
        last, since = None, t0
        while time.monotonic() - t0 < limit and self.serve.poll() is None:
            cur = proc_status(self.serve.pid)[1]
            if cur != last:
                last, since = cur, time.monotonic()
            elif time.monotonic() - since >= settle:
                break
            time.sleep(0.5)
        rss, fds, threads = proc_status(self.serve.pid)
        used = code = 0
        try:
            used = self.api(op="memory")["used"]
            code = sum((v.get("jit") or {}).get("code_bytes", 0) for v in self.api(op="list")["vms"])
        except (Unanswered, Refused) as e:
            self.ledger.problem("memory: %s" % e)
        q = {"fds": fds, "threads": threads, "rss": rss, "own": rss - used, "code": code, "rest": rss - used - code,
             "kinds": fd_kinds(self.serve.pid), "settled": time.monotonic() - since >= settle,
             "wait_s": time.monotonic() - t0}
        self.quiet[label] = q
        if self.smaps_dir:  # where the memory is, for a diff of the two quiet points
            shutil.copyfile("/proc/%d/smaps" % self.serve.pid, os.path.join(self.smaps_dir, "smaps." + label))
        self._log("quiet (%s): %d fds, %d threads, rss %.1f MiB (own %.1f) after %.0fs%s; %s"
                  % (label, fds, threads, rss / MiB, q["own"] / MiB, q["wait_s"], "" if q["settled"] else
                     " (never settled)", ", ".join("%s %d" % kv for kv in sorted(q["kinds"].items()))))
        if release:
            for vm in self._usable():
                with vm.lock:
                    vm.last = None
                    self._guard("release " + vm.name, self.console_check, vm, False, False, "rm -f /tmp/hold; ")
        self.ledger.op("quiesce")

    def _ops_brief(self):
        with self.ledger.lock:
            return ", ".join("%s %d" % kv for kv in sorted(self.ledger.ops.items()) if kv[0] != "sample")

    def _summary(self, duration, lost, shutdown_s):
        n = min(len(self.samples), len(self.fd_samples))
        # The first samples after the quiet count see the guests' loops and
        # libslirp's connections starting up again: not compared.
        t0 = self.t_measure + min(30.0, 0.25 * (self.t_measure_end - self.t_measure))
        pairs = [(s, k) for s, k in zip(self.samples[:n], self.fd_samples[:n]) if t0 <= s[0] <= self.t_measure_end]
        samples = [s for s, _ in pairs]
        kinds = [k for _, k in pairs]
        res = {"vms": self.nvms, "mem": self.mem, "duration_s": duration, "warmup_s": self.warmup,
               "measured_s": self.t_measure_end - self.t_measure,
               "ops": dict(self.ledger.ops), "requests": self.ledger.requests, "lost": lost,
               "console_answer_max_s": self.console_latency, "boot_max_s": self.boot_latency,
               "shutdown_s": shutdown_s, "samples": len(samples), "quiet": self.quiet}
        tot = self.server.totals()
        res["http"] = {"gets": tot[0], "puts_ok": tot[1], "puts_bad": tot[2], "bytes": tot[3], "puts_cut": tot[4]}
        if tot[2]:
            self.ledger.problem("%d posts from guests arrived with the wrong md5" % tot[2])
        totals = [0] * 5
        for vm in self.vms:
            totals = [a + b for a, b in zip(totals, vm.past)]
            if vm.counters and vm.counters_instance == vm.instance:
                totals = [a + b for a, b in zip(totals, vm.counters)]
        res["iterations"], res["disk_round_trips"] = totals[0], totals[1]
        res["net_failures_seen"] = totals[4]
        if len(samples) < 10:
            self.ledger.problem("only %d samples after the warm-up" % len(samples))
        else:
            # Memory: the median of the first and of the last 10% of the
            # samples of the soak proper (after warm-up), robust to the moment.
            k = max(5, len(samples) // 10)

            def fig(vals, f):
                return {"start": f(vals[:k]), "end": f(vals[-k:]), "max": max(vals), "min": min(vals)}
            res["rss"] = fig([s[1] for s in samples], statistics.median)
            res["guest_mem"] = fig([s[2] for s in samples], statistics.median)
            res["own"] = fig([s[1] - s[2] for s in samples], statistics.median)
            res["code"] = fig([s[5] for s in samples], statistics.median)
            res["rest"] = fig([s[1] - s[2] - s[5] for s in samples], statistics.median)
            res["fds"] = fig([s[3] for s in samples], min)
            res["threads"] = fig([s[4] for s in samples], min)
            res["window_samples"] = k
            names = sorted(set().union(*kinds))
            res["fd_kinds"] = {name: [min(x.get(name, 0) for x in kinds[:k]), min(x.get(name, 0) for x in kinds[-k:]),
                                      max(x.get(name, 0) for x in kinds)] for name in names}
        # What is checked is counted with every loop held and the driver
        # stopped, at the start of the soak proper and at its end (the
        # samples in between show the load's swings: libslirp holds a closed
        # connection's buffers through TIME_WAIT, for one). Memory: resident
        # memory minus what guests hold and minus translated code, a cache
        # bounded by --jit-cache per hart (emptied when full).
        q0, q1 = self.quiet.get("start"), self.quiet.get("end")
        if q0 and q1:
            if q1["rest"] - q0["rest"] > self.rss_tolerance:
                self.ledger.problem("the monitor's own memory (RSS - guest memory - translated code, quiet) grew "
                                    "from %.1f to %.1f MiB (tolerance %.0f MiB)"
                                    % (q0["rest"] / MiB, q1["rest"] / MiB, self.rss_tolerance / MiB))
            for q in (q0, q1):
                if not q["settled"]:
                    self.ledger.note("descriptors still changing after %.0fs of quiet" % q["wait_s"])
            if q1["fds"] - q0["fds"] > self.fd_tolerance:
                diff = {k: (q0["kinds"].get(k, 0), q1["kinds"].get(k, 0)) for k in set(q0["kinds"]) | set(q1["kinds"])
                        if q0["kinds"].get(k, 0) != q1["kinds"].get(k, 0)}
                self.ledger.problem("open descriptors grew from %d to %d (quiet counts; %s)"
                                    % (q0["fds"], q1["fds"], ", ".join("%s %d -> %d" % (k, *v)
                                                                       for k, v in sorted(diff.items()))))
            if q1["threads"] - q0["threads"] > self.thread_tolerance:
                self.ledger.problem("threads grew from %d to %d (quiet counts)" % (q0["threads"], q1["threads"]))
        req = self.ledger.requests
        res["requests_total"] = sum(r["count"] for r in req.values())
        res["unanswered"] = sum(r["unanswered"] for r in req.values())
        res["refused"] = sum(r["refused"] for r in req.values())
        res["latency_max_s"] = max((r["max_s"] for r in req.values()), default=0.0)
        res["problems"] = list(self.ledger.problems)
        res["notes"] = list(self.ledger.notes)
        return res


def format_summary(res):
    out = []
    p = out.append
    p("soak: %d VMs of %s for %.1f min after boot (warm-up %.0f s, then %.1f min compared: the first and last "
      "%s samples)" % (res["vms"], res["mem"], res["duration_s"] / 60, res["warmup_s"], res["measured_s"] / 60,
                       res.get("window_samples", "-")))
    ops = res["ops"]
    p("operations: " + ", ".join("%s %d" % (k, ops[k]) for k in sorted(ops)))
    p("requests: %d, unanswered %d, refused %d, worst latency %.3f s"
      % (res["requests_total"], res["unanswered"], res["refused"], res["latency_max_s"]))
    for op, r in sorted(res["requests"].items()):
        p("  %-8s %6d  mean %7.1f ms  max %7.1f ms  >1s %d  unanswered %d  refused %d"
          % (op, r["count"], 1000 * r["total_s"] / max(1, r["count"]), 1000 * r["max_s"], r["over_1s"],
             r["unanswered"], r["refused"]))
    p("console: worst answer %.2f s; worst boot to shell %.1f s" % (res["console_answer_max_s"], res["boot_max_s"]))
    h = res["http"]
    p("guest I/O: %d iterations, %d disk round trips checked, %d fetches and %d posts checked (%.0f MiB), "
      "%d network failures seen by guests" % (res["iterations"], res["disk_round_trips"], h["gets"], h["puts_ok"],
                                              h["bytes"] / MiB, res["net_failures_seen"]))
    if "rss" in res:
        for key, label, scale, unit in (("rss", "monitor RSS", MiB, "MiB"), ("guest_mem", "guest memory", MiB, "MiB"),
                                        ("own", "RSS - guest memory", MiB, "MiB"),
                                        ("code", "translated code", MiB, "MiB"),
                                        ("rest", "RSS - guest - code", MiB, "MiB"),
                                        ("fds", "open fds (min)", 1, ""),
                                        ("threads", "threads (min)", 1, "")):
            f = res[key]
            p("  %-20s start %8.1f  end %8.1f  max %8.1f %s" % (label, f["start"] / scale, f["end"] / scale,
                                                                 f["max"] / scale, unit))
    for label in ("start", "end"):
        q = res["quiet"].get(label)
        if q:
            p("  quiet, %-5s        %d fds, %d threads, RSS %.1f MiB, - guest memory %.1f, - code %.1f MiB%s"
              % (label, q["fds"], q["threads"], q["rss"] / MiB, q["own"] / MiB, q["rest"] / MiB,
                 "" if q["settled"] else " (not settled)"))
    if "fd_kinds" in res:
        p("  descriptors by kind (min start, min end, max): " +
          ", ".join("%s %d/%d/%d" % (k, *v) for k, v in sorted(res["fd_kinds"].items())))
    p("shutdown: %.1f s; VMs lost: %s" % (res["shutdown_s"], ", ".join(res["lost"]) or "none"))
    for n in res["notes"][:20]:
        p("note: " + n)
    if res["problems"]:
        p("PROBLEMS (%d):" % len(res["problems"]))
        for x in res["problems"][:50]:
            p("  " + x)
        p("the monitor's output (end):\n" + res.get("serve_log", ""))
    else:
        p("no problems")
    return "\n".join(out)


def run_soak(rvisor, guest, **kw):
    return Soak(rvisor, guest, **kw).run()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--vms", type=int, default=16, help="VMs at once (default 16)")
    ap.add_argument("--minutes", type=float, default=60, help="driving time after boot, warm-up included (default 60)")
    ap.add_argument("--warmup", type=float, default=None,
                    help="seconds of driving before the first quiet count (default 10%%, 30 to 300 s)")
    ap.add_argument("--mem", default="256M", help="each VM's RAM, in MiB with an M (default 256M)")
    ap.add_argument("--sleep", type=float, default=1, help="seconds each guest sleeps between iterations")
    ap.add_argument("--threads", type=int, default=2, help="driver threads (console, balloon, pause)")
    ap.add_argument("--recreate-every", type=float, default=None, help="seconds between destroy/create cycles")
    ap.add_argument("--rss-tolerance", type=float, default=None, help="MiB (default 8 + 1 per VM)")
    ap.add_argument("--fd-tolerance", type=int, default=2, help="descriptors (default 2)")
    ap.add_argument("--json", help="also write the summary here")
    ap.add_argument("--smaps", help="copy the monitor's /proc/PID/smaps into this directory at both quiet counts")
    ap.add_argument("--samples", help="write every sample here (CSV: seconds, RSS, guest memory, fds, threads, code)")
    args = ap.parse_args()
    rvisor = os.environ.get("RVISOR", os.path.join(ROOT, "build", "rvisor"))
    guest = os.environ.get("RVISOR_GUEST") or guest_dir()
    soak = Soak(rvisor, guest, vms=args.vms, seconds=args.minutes * 60, warmup=args.warmup, mem=args.mem,
                sleep=args.sleep, threads=args.threads, recreate_every=args.recreate_every,
                rss_tolerance_mib=args.rss_tolerance, fd_tolerance=args.fd_tolerance, smaps_dir=args.smaps)
    res = soak.run()
    if args.samples:
        with open(args.samples, "w") as f:
            f.write("t,rss,guest_mem,fds,threads,code\n")
            for s in soak.samples:
                f.write("%.1f,%d,%d,%d,%d,%d\n" % ((s[0] - soak.t_start,) + s[1:]))
    print(format_summary(res), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)
    sys.exit(1 if res["problems"] else 0)


if __name__ == "__main__":
    main()
