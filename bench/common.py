"""Shared helpers for the benchmarks: run a guest under rvisor or QEMU with a
command for its /init, and time what it prints."""
import os
import re
import statistics
import subprocess
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RVISOR = os.environ.get("RVISOR", os.path.join(ROOT, "build", "rvisor"))
QEMU = os.environ.get("QEMU", "qemu-system-riscv64")

# CPU-bound busybox workloads (bench/cpu.py, bench/ab.py), each timed by the
# guest itself from /proc/uptime.
WORKLOADS = {
    "sh-loop": "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done",
    "gzip": "seq 1 400000 > /tmp/s; gzip -9 -c /tmp/s > /dev/null",
    "sort": "seq 1 400000 > /tmp/s; sort -r /tmp/s > /dev/null",
    "bzip2": "seq 1 200000 > /tmp/s; bzip2 -9 -c /tmp/s > /dev/null",
    "md5sum": "seq 1 400000 > /tmp/s; cat /tmp/s /tmp/s /tmp/s /tmp/s > /tmp/t; md5sum /tmp/t > /dev/null",
}


def timed(cmd):
    return ("read a b < /proc/uptime; %s; read c d < /proc/uptime; "
            "echo T $(awk -v a=$a -v c=$c 'BEGIN{print c-a}')" % cmd)


def guest_dir():
    out = subprocess.run([os.path.join(ROOT, "guests", "build.sh")], check=True, capture_output=True, text=True)
    return out.stdout.strip().splitlines()[-1]


def command_line(vmm, guest, run, mem="256M", cpus=1):
    append = 'console=ttyS0 quiet rvisor_run="%s"' % run
    kernel, initrd = os.path.join(guest, "Image"), os.path.join(guest, "initrd.gz")
    if vmm == "rvisor":
        return [RVISOR, "run", "--kernel", kernel, "--initrd", initrd, "--append", append,
                "--mem", mem, "--cpus", str(cpus)]
    return [QEMU, "-M", "virt", "-m", mem, "-smp", str(cpus), "-nographic", "-no-reboot",
            "-kernel", kernel, "-initrd", initrd, "-append", append]


def run_guest(vmm, guest, run, timeout=600, **kw):
    """Runs one guest to poweroff. Returns (seconds to the /init banner,
    seconds to exit, output)."""
    start = time.monotonic()
    p = subprocess.Popen(command_line(vmm, guest, run, **kw), stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out, t_init = b"", None
    fd = p.stdout.fileno()
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        out += chunk
        if t_init is None and b"init reached" in out:
            t_init = time.monotonic() - start
        if time.monotonic() - start > timeout:
            p.kill()
            raise RuntimeError("%s timed out" % vmm)
    p.wait()
    t_exit = time.monotonic() - start
    if p.returncode != 0 or t_init is None:
        raise RuntimeError("%s failed (exit %d):\n%s" % (vmm, p.returncode, out[-2000:].decode(errors="replace")))
    return t_init, t_exit, out.decode(errors="replace")


def guest_seconds(output, tag):
    """Reads 'TAG <seconds>' lines the workload printed from /proc/uptime."""
    m = re.search(r"%s ([0-9.]+)" % re.escape(tag), output)
    return float(m.group(1)) if m else None


def cpu_seconds(pid):
    """User plus system CPU time a process has used so far."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def median(xs):
    return statistics.median(xs)


class QemuQmp:
    """qemu-system-riscv64 with the default guest and a QMP socket (for the
    benchmarks that drive QEMU's monitor: snapshots, migration)."""

    def __init__(self, guest, workdir, append, *extra, mem="256M"):
        import json
        import socket
        self._json = json
        path = os.path.join(workdir, "qmp-%d.sock" % time.monotonic_ns())
        self.p = subprocess.Popen([QEMU, "-M", "virt", "-m", mem, "-smp", "1", "-nographic", "-no-reboot",
                                   "-kernel", os.path.join(guest, "Image"), "-initrd",
                                   os.path.join(guest, "initrd.gz"), "-append", append,
                                   "-qmp", "unix:%s,server=on,wait=off" % path] + list(extra),
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        t0 = time.monotonic()
        while True:  # the socket file appears before QEMU listens on it
            try:
                q = socket.socket(socket.AF_UNIX)
                q.connect(path)
                break
            except OSError:
                q.close()
                if time.monotonic() - t0 > 20:
                    raise RuntimeError("QEMU did not start")
                time.sleep(0.005)
        self.f = q.makefile("rwb")
        self.f.readline()
        self.qmp("qmp_capabilities")
        self.buf = b""

    def qmp(self, cmd, **args):
        self.f.write((self._json.dumps({"execute": cmd, "arguments": args}) + "\n").encode())
        self.f.flush()
        while True:
            r = self._json.loads(self.f.readline())
            if "error" in r:
                raise RuntimeError("%s: %s" % (cmd, r["error"]))
            if "return" in r:
                return r["return"]

    def wait(self, marker, timeout=300):
        """Reads the guest's console until marker appears."""
        t0 = time.monotonic()
        while marker not in self.buf:
            if time.monotonic() - t0 > timeout:
                raise RuntimeError("no %r in:\n%s" % (marker, self.buf[-2000:].decode(errors="replace")))
            self.buf += os.read(self.p.stdout.fileno(), 65536)

    def close(self):
        self.p.kill()
        self.p.wait()
