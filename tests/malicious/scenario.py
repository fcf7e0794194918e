"""The malicious-guests scenario, shared by tests/e2e/test_malicious.py (short,
with assertions) and bench/malicious.py (longer, prints the figures).

One `rvisor serve` runs a well-behaved VM (counter.S: CPU-bound, never exits
to the monitor) and the attackers of this directory, all with the same
shares. The well-behaved VM runs alone, then beside each attacker in turn
(the others paused), then beside all of them at once. Over each window the
monitor's own counters say how much host CPU each VM got and how many
instructions the well-behaved one ran; /proc says how much CPU the monitor
process and the rest of the host used. Meanwhile a probe thread sends
`list` requests on fresh connections and times the replies.

Fair share. With N runnable VMs of equal shares on W workers, each VM is
owed min(1, A / N) of a core, where A = min(W, CPU the monitor used + CPU
the host left idle - CPU of the page-sharing scanner and the reclaimer,
which run at a rate of their own for all VMs) is what the monitor could
have given its VMs: other jobs on the machine take their CPU from every VM
alike, but CPU the monitor burns outside any VM (device work on the event
loop, lock contention) or leaves idle while VMs wait counts against the VM
that does not get it.
"""
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

MIB = 1 << 20


class Attacker:
    """A malicious VM: how to create it and which counter proves it attacks."""

    def __init__(self, name, what, evidence, program=None, cpus=1, linux=False, settle=0, **extra):
        self.name, self.what, self.evidence = name, what, evidence
        self.program, self.cpus, self.linux, self.extra = program, cpus, linux, extra
        self.settle = settle  # seconds it needs before it attacks, on top of the phase's settling


ATTACKERS = [
    Attacker("mmio", "wild loads/stores of all sizes on every device and hole", "mmio",
             program="mmio_hammer.elf", cpus=2),
    Attacker("virtio", "virtio rings and buffers outside RAM, loops, notify storms", "mmio",
             program="virtio_abuse.elf", disk=True, nets=["user"], console="virtio"),
    Attacker("irq", "timer, IPI and PLIC interrupt storms, wfi churn", "interrupts",
             program="irq_storm.elf", cpus=2),
    Attacker("exceptions", "handler returning to the faulting instruction", "exceptions",
             program="exception_loop.elf"),
    Attacker("trap-recursion", "trap handler that traps itself", "exceptions",
             program="trap_recursion.elf"),
    Attacker("spin", "M-mode spin, interrupts off", "instructions",
             program="mmode_spin.elf", cpus=2),
    Attacker("sleeper", "idle 5 s (banking credit?), then M-mode spin", "instructions",
             program="sleeper.elf", cpus=2, settle=5),
    Attacker("linux", "Linux: page-fault/munmap/fork/mprotect/syscall storm", "instructions",
             linux=True, mem="128M"),
]

GOOD = "good"


def programs_dir(rvisor):
    """Where meson puts the programs: build/tests/malicious beside build/rvisor."""
    return os.path.join(os.path.dirname(os.path.abspath(rvisor)), "tests", "malicious")


def missing_programs(rvisor):
    names = ["counter.elf", "pfstorm"] + [a.program for a in ATTACKERS if a.program]
    return [n for n in names if not os.path.exists(os.path.join(programs_dir(rvisor), n))]


# ---- an initrd with the Linux attacker in it ----

def _cpio_entry(name, data, mode):
    name_b = name.encode() + b"\0"
    fields = [1, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name_b), 0]
    out = b"070701" + b"".join(b"%08x" % f for f in fields) + name_b
    out += b"\0" * (-len(out) % 4)
    return out + data + b"\0" * (-len(data) % 4)


def initrd_with(base, files, out):
    """Writes out: the initrd at base followed by an uncompressed cpio archive
    of files ({path in the guest: host path}, made executable). Linux unpacks
    concatenated archives, each starting at a multiple of 4 bytes."""
    with open(base, "rb") as f:
        data = f.read()
    data += b"\0" * (-len(data) % 4)
    for path, host in files.items():
        with open(host, "rb") as f:
            data += _cpio_entry(path.lstrip("/"), f.read(), 0o100755)
    data += _cpio_entry("TRAILER!!!", b"", 0)
    with open(out, "wb") as f:
        f.write(data)


# ---- the monitor ----

def _die_with_parent():
    """A monitor full of spinning VMs must not outlive a killed test or benchmark."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class Monitor:
    """`rvisor serve` on a socket in a temporary directory."""

    def __init__(self, rvisor, workers, *extra):
        self.rvisor = rvisor
        self.dir = tempfile.mkdtemp(prefix="rvisor-malicious-")
        self.sock = os.path.join(self.dir, "ctl.sock")
        self.log = open(os.path.join(self.dir, "serve.log"), "w+b")
        self.workers = workers
        self.proc = subprocess.Popen([rvisor, "serve", "--socket", self.sock, "--workers", str(workers)] + list(extra),
                                     stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT,
                                     preexec_fn=_die_with_parent)
        deadline = time.monotonic() + 20
        while not os.path.exists(self.sock):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("rvisor serve did not start:\n" + self.output())
            time.sleep(0.02)

    def output(self):
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def alive(self):
        return self.proc.poll() is None

    def connect(self, timeout=30):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(self.sock)
        return s

    def request(self, timeout=30, **req):
        """One request on its own connection; returns the reply."""
        with self.connect(timeout) as s:
            s.sendall(json.dumps(req).encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = s.recv(65536)
                if not chunk:
                    raise RuntimeError("connection closed before a reply to %r; got %r" % (req, data))
                data += chunk
        return json.loads(data)

    def ok(self, **req):
        reply = self.request(**req)
        if not reply.get("ok"):
            raise RuntimeError("%r: %r" % (req, reply))
        return reply

    def vms(self):
        return {vm["name"]: vm for vm in self.ok(op="list")["vms"]}

    def console_until(self, name, text, timeout):
        """Reads the VM's console until text appears; returns what was read."""
        with self.connect(timeout) as s:
            s.sendall(json.dumps({"op": "console", "name": name}).encode() + b"\n")
            out = b""
            deadline = time.monotonic() + timeout
            while text not in out:
                s.settimeout(max(0.1, deadline - time.monotonic()))
                try:
                    chunk = s.recv(65536)
                except socket.timeout:
                    chunk = None
                if not chunk or time.monotonic() > deadline:
                    raise RuntimeError("%s never printed %r; its console:\n%s"
                                       % (name, text, out[-3000:].decode(errors="replace")))
                out += chunk
        return out

    def cpu_seconds(self):
        with open("/proc/%d/stat" % self.proc.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0

    def stop(self, timeout=60):
        """SIGTERM; returns the exit status (None if it had to be killed)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class LatencyProbe(threading.Thread):
    """Sends {"op":"list"} on a fresh connection every `interval` seconds and
    records (start time, seconds to the reply or None on failure, phase)."""

    def __init__(self, monitor, interval=0.2, timeout=30):
        super().__init__(daemon=True)
        self.monitor, self.interval, self.timeout = monitor, interval, timeout
        self.samples, self.phase = [], "setup"
        self._halt = threading.Event()

    def run(self):
        while not self._halt.is_set():
            t0 = time.monotonic()
            try:
                ok = self.monitor.request(timeout=self.timeout, op="list").get("ok")
                dt = time.monotonic() - t0 if ok else None
            except (OSError, ValueError, RuntimeError):
                dt = None
            self.samples.append((t0, dt, self.phase))
            self._halt.wait(self.interval)

    def stop(self):
        self._halt.set()
        self.join(self.timeout + 5)

    def latencies(self, phase=None):
        return [dt for _, dt, p in self.samples if phase is None or p == phase]


def percentile(xs, q):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


# ---- measuring a window ----

def host_idle_seconds():
    """CPU seconds the whole host spent idle so far (idle + iowait, all CPUs)."""
    with open("/proc/stat") as f:
        fields = f.readline().split()
    return (int(fields[4]) + int(fields[5])) / os.sysconf("SC_CLK_TCK")


def _sample(monitor):
    mem = monitor.ok(op="memory")
    housekeeping = (mem["sharing"]["scan_cpu_ns"] + mem["swap"]["cpu_ns"]) / 1e9
    return {"wall": time.monotonic(), "vms": monitor.vms(), "cpu": monitor.cpu_seconds(),
            "idle": host_idle_seconds(), "housekeeping": housekeeping}


def measure(monitor, seconds, running):
    """Measures a window of `seconds` in which the VMs named in `running`
    should run. Returns a dict of figures (see the keys)."""
    a = _sample(monitor)
    time.sleep(seconds)
    b = _sample(monitor)
    wall = b["wall"] - a["wall"]
    monitor_cores = (b["cpu"] - a["cpu"]) / wall
    idle_cores = (b["idle"] - a["idle"]) / wall
    # The page-sharing scanner and the reclaimer work for every VM at a
    # rate of their own (--share-rate): not CPU any VM is owed.
    housekeeping_cores = (b["housekeeping"] - a["housekeeping"]) / wall
    per_vm = {}
    for name in b["vms"]:
        va, vb = a["vms"].get(name), b["vms"][name]
        if not va:
            continue
        counts = {k: vb["counts"][k] - va["counts"][k] for k in vb["counts"]}
        counts["instructions"] = vb["instructions"] - va["instructions"]
        per_vm[name] = {"cpu": (vb["cpu_ns"] - va["cpu_ns"]) / 1e9 / wall, "counts": counts,
                        "state": vb["state"], "exit_status": vb.get("exit_status"),
                        "exit_message": vb.get("exit_message")}
    # What the workers could have given the VMs: what they did give, plus
    # host idle. Device work on the event loop (virtio notify storms) is
    # not charged to any VM yet, so it is not counted as owed to them.
    vm_cores = sum(v["cpu"] for v in per_vm.values())
    available = min(float(monitor.workers), vm_cores + idle_cores)
    good = per_vm[GOOD]
    contenders = [n for n in running if per_vm.get(n, {}).get("state") == "running"]
    fair = min(1.0, available / max(1, len(contenders)))
    insns = good["counts"]["instructions"]
    return {
        "wall": wall, "monitor_cores": monitor_cores, "idle_cores": idle_cores, "available": available,
        "housekeeping_cores": housekeeping_cores,
        "contenders": len(contenders), "fair": fair, "vms": per_vm,
        "good_cores": good["cpu"], "good_mips": insns / wall / 1e6,
        # instructions per second of the CPU it got: what an attack could
        # spoil besides the CPU itself (shared locks, caches, flushes)
        "good_mips_per_core": insns / wall / 1e6 / good["cpu"] if good["cpu"] > 0 else 0.0,
        "rss": monitor.rss(),
    }


# ---- the scenario ----

class Scenario:
    """Creates the VMs of the scenario in a monitor; runs its phases."""

    def __init__(self, monitor, rvisor, guest, engine=None, attackers=ATTACKERS):
        self.monitor, self.attackers = monitor, list(attackers)
        progs = programs_dir(rvisor)
        self.started = set()
        common = {"mem": "64M", "shares": 1000}
        if engine:
            common["engine"] = engine
        monitor.ok(op="create", name=GOOD, bios=os.path.join(progs, "counter.elf"), **common)
        for a in self.attackers:
            req = dict(common, op="create", name=a.name, cpus=a.cpus)
            if a.linux:
                initrd = os.path.join(monitor.dir, "initrd-pfstorm")
                initrd_with(os.path.join(guest, "initrd.gz"), {"/pfstorm": os.path.join(progs, "pfstorm")}, initrd)
                req.update(kernel=os.path.join(guest, "Image"), initrd=initrd,
                           append='console=ttyS0 quiet rvisor_run="/pfstorm 32"')
            else:
                req["bios"] = os.path.join(progs, a.program)
            for k, v in a.extra.items():
                if k == "disk":
                    disk = os.path.join(monitor.dir, a.name + ".img")
                    with open(disk, "wb") as f:
                        f.truncate(8 * MIB)
                    req["drives"] = ["file=" + disk]
                else:
                    req[k] = v
            monitor.ok(**req)

    def boot_linux(self, timeout=120):
        """Starts the Linux attackers, waits until they attack, pauses them
        (so that they do not disturb the measurement of the VM alone)."""
        for a in self.attackers:
            if a.linux:
                self.monitor.ok(op="start", name=a.name)
                self.started.add(a.name)
                self.monitor.console_until(a.name, b"pfstorm: attacking", timeout)
                self.monitor.ok(op="pause", name=a.name)

    def unleash(self, names):
        states = {n: vm["state"] for n, vm in self.monitor.vms().items()}
        for n in names:
            if states[n] == "stopped":
                continue  # an attacked VM may fail; the others go on
            if n in self.started:
                self.monitor.ok(op="resume", name=n)
            else:
                self.monitor.ok(op="start", name=n)
                self.started.add(n)

    def hold(self, names):
        for n in names:
            if self.monitor.vms()[n]["state"] == "running":
                self.monitor.ok(op="pause", name=n)

    def phases(self, alone_s, each_s, all_s, settle_s, probe=None, report=None):
        """Runs the phases; returns [(phase name, [attackers], figures)]."""
        results = []

        def phase(label, names, seconds, extra_settle=0):
            if probe:
                probe.phase = label
            self.unleash(names)
            time.sleep(settle_s + extra_settle)
            r = measure(self.monitor, seconds, [GOOD] + names)
            self.hold(names)
            results.append((label, names, r))
            if report:
                report(label, names, r)

        self.monitor.ok(op="start", name=GOOD)
        time.sleep(settle_s)
        phase("alone", [], alone_s)
        for a in self.attackers:
            phase(a.name, [a.name], each_s, a.settle)
        phase("all", [a.name for a in self.attackers], all_s)
        if probe:
            probe.phase = "teardown"
        return results
