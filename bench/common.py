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
