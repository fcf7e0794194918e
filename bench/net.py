"""Network throughput through user-mode networking, rvisor vs QEMU (both
virtio-net on virtio-mmio, both libslirp), same kernel and initramfs.

guest -> host: the guest pipes dd from /dev/zero into nc towards a TCP sink
on the host's 127.0.0.1 (10.0.2.2 inside); the sink times the bytes from
first to last.
host -> guest: a host source sends zeros to the guest's nc, which pipes
them into dd (not wc: busybox wc reads a byte at a time, which would
measure the guest's CPU); the guest times it with /proc/uptime (its clock
follows the host's in both VMMs)."""
import argparse
import os
import re
import socket
import subprocess
import threading
import time

from common import QEMU, RVISOR, guest_dir, median

NET = {
    "rvisor": ["--net", "user"],
    "qemu": ["-netdev", "user,id=n0", "-device", "virtio-net-device,netdev=n0"],
}


def command(vmm, guest, run):
    append = 'console=ttyS0 quiet rvisor_run="%s"' % run
    k, i = os.path.join(guest, "Image"), os.path.join(guest, "initrd.gz")
    if vmm == "rvisor":
        return [RVISOR, "run", "--kernel", k, "--initrd", i, "--append", append, "--mem", "256M"] + NET[vmm]
    return [QEMU, "-M", "virt", "-m", "256M", "-smp", "1", "-nographic", "-no-reboot", "-kernel", k, "-initrd", i,
            "-append", append] + NET[vmm]


class Sink:
    """Accepts one connection and counts its bytes, timing first to last."""

    def __init__(self):
        self.s = socket.socket()
        self.s.bind(("127.0.0.1", 0))
        self.s.listen(1)
        self.port = self.s.getsockname()[1]
        self.bytes, self.first, self.last = 0, None, None
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        c, _ = self.s.accept()
        while True:
            b = c.recv(1 << 20)
            if not b:
                break
            now = time.monotonic()
            if self.first is None:
                self.first = now
            self.last = now
            self.bytes += len(b)
        c.close()
        self.s.close()

    def rate(self):
        return self.bytes / (self.last - self.first)


class Source:
    """Accepts one connection and sends n zero bytes."""

    def __init__(self, n):
        self.s = socket.socket()
        self.s.bind(("127.0.0.1", 0))
        self.s.listen(1)
        self.port = self.s.getsockname()[1]
        self.n = n
        threading.Thread(target=self.run, daemon=True).start()

    def run(self):
        c, _ = self.s.accept()
        buf = bytes(1 << 16)
        left = self.n
        while left > 0:
            left -= c.send(buf[:min(left, len(buf))])
        c.close()
        self.s.close()


def run_guest(cmd, timeout=300):
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
    out = p.stdout.decode(errors="replace")
    if p.returncode != 0 or "rvisor-guest: done" not in out:
        raise RuntimeError("%s failed (exit %d):\n%s" % (cmd[0], p.returncode, out[-2000:]))
    return out


DHCP = "ip link set eth0 up; udhcpc -i eth0 -q -n -t 5 >/dev/null 2>&1"


def guest_to_host(vmm, guest, mib):
    sink = Sink()
    run_guest(command(vmm, guest, "%s; dd if=/dev/zero bs=64k count=%d 2>/dev/null | nc 10.0.2.2 %d"
                      % (DHCP, mib * 16, sink.port)))
    sink.t.join(30)
    if sink.bytes != mib << 20:
        raise RuntimeError("%s: the sink got %d bytes, not %d" % (vmm, sink.bytes, mib << 20))
    return sink.rate()


def host_to_guest(vmm, guest, mib):
    src = Source(mib << 20)
    # nc reads its stdin too and would wait on the console after the
    # transfer without the redirection.
    out = run_guest(command(vmm, guest, "%s; cat /proc/uptime; nc 10.0.2.2 %d </dev/null | dd of=/dev/null bs=64k; "
                            "cat /proc/uptime" % (DHCP, src.port)))
    m = re.search(r"^([0-9.]+) [0-9.]+\s*\n(?:.*\n)*?(\d+) bytes .*\n([0-9.]+) [0-9.]+\s*$", out.replace("\r", ""), re.M)
    if not m or int(m.group(2)) != mib << 20:
        raise RuntimeError("%s: bad host->guest output:\n%s" % (vmm, out[-1000:]))
    return (mib << 20) / (float(m.group(3)) - float(m.group(1)))


ap = argparse.ArgumentParser()
ap.add_argument("--runs", type=int, default=3)
ap.add_argument("--mib", type=int, default=32, help="MiB sent each way per run")
args = ap.parse_args()
guest = guest_dir()
res = {}
for vmm in ("qemu", "rvisor"):
    up = median([guest_to_host(vmm, guest, args.mib) for _ in range(args.runs)])
    down = median([host_to_guest(vmm, guest, args.mib) for _ in range(args.runs)])
    res[vmm] = (up, down)
    print("%-7s guest->host %6.1f MB/s   host->guest %6.1f MB/s   (median of %d, %d MiB each)"
          % (vmm, up / 1e6, down / 1e6, args.runs, args.mib))
print("ratio rvisor/qemu: guest->host %.2fx, host->guest %.2fx"
      % (res["rvisor"][0] / res["qemu"][0], res["rvisor"][1] / res["qemu"][1]))
