"""Overcommit, as in the ESX paper's experiment: 16 VMs of 512 MiB under
one `rvisor serve --machine-mem 2G`, each guest writing 180 MiB of random
data into its tmpfs (their demand together, with what each kernel holds,
is about 1.5x the machine memory). Page sharing, share-based allocation
with the idle tax, ballooning and hypervisor swap make room; every guest
must then answer on its console and read its data back intact. Beside it,
the same 16 guests as qemu-system-riscv64 processes, which cannot
overcommit: their resident memory is what the host must have.

Usage: python3 bench/overcommit.py [--vms 16] [--data 180] [--machine-mem 2G]"""
import argparse
import os
import socket
import subprocess
import tempfile
import time

from common import QEMU, guest_dir
from monitor import Api, rss_bytes, start_serve

MiB = 1 << 20
CHECK = b'[ "$(md5sum < /tmp/r)" = "$(cat /tmp/s)" ] && echo SAME-$((6*7))\n'


def script(data):
    return ("dd if=/dev/urandom of=/tmp/r bs=1M count=%d 2>/dev/null; md5sum < /tmp/r > /tmp/s; "
            "echo READY; exec sh" % data)


def append(data):
    return 'console=ttyS0 quiet rvisor_run="%s"' % script(data)


class Reader:
    def __init__(self, read):
        self.read, self.buf = read, b""

    def wait(self, marker, deadline):
        while marker not in self.buf:
            if time.monotonic() > deadline:
                raise RuntimeError("no %r in:\n%s" % (marker, self.buf[-1500:].decode(errors="replace")))
            self.buf += self.read()


def rvisor(guest, n, data, machine_mem):
    serve, sock = start_serve("--machine-mem", machine_mem)
    try:
        api = Api(sock)
        cons = []
        t0 = time.monotonic()
        for i in range(n):
            name = "vm%d" % i
            api(op="create", name=name, kernel=os.path.join(guest, "Image"),
                initrd=os.path.join(guest, "initrd.gz"), append=append(data), mem="512M")
            api(op="start", name=name)
            s = socket.socket(socket.AF_UNIX)
            s.connect(sock)
            s.sendall(b'{"op":"console","name":"%s"}\n' % name.encode())
            s.settimeout(1)
            cons.append((s, Reader(lambda s=s: _recv(s))))
        deadline = t0 + 3600
        for s, r in cons:
            r.wait(b"READY", deadline)
        written = time.monotonic() - t0
        peak_rss = rss_bytes(serve.pid)
        mem = api(op="memory")
        for s, r in cons:
            s.sendall(CHECK)
        ok = 0
        for s, r in cons:
            r.wait(b"SAME-42", deadline)
            ok += 1
        checked = time.monotonic() - t0 - written
        mem2 = api(op="memory")
        return {"written": written, "checked": checked, "ok": ok, "rss": max(peak_rss, rss_bytes(serve.pid)),
                "used": mem["used"], "total": mem["total"], "swap": mem2["swap"], "sharing": mem2["sharing"]}
    finally:
        serve.terminate()
        serve.wait()


def _recv(s):
    try:
        return s.recv(65536)
    except socket.timeout:
        return b""


def qemu(guest, n, data):
    cmd = [QEMU, "-M", "virt", "-m", "512M", "-smp", "1", "-nographic", "-no-reboot", "-kernel",
           os.path.join(guest, "Image"), "-initrd", os.path.join(guest, "initrd.gz"), "-append", append(data)]
    procs, outs = [], []
    t0 = time.monotonic()
    for _ in range(n):
        out = tempfile.TemporaryFile()
        procs.append(subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=out, stderr=subprocess.STDOUT))
        outs.append(out)

    def output(i):
        outs[i].seek(0)
        return outs[i].read()
    try:
        deadline = t0 + 3600
        for i in range(n):
            while b"READY" not in output(i):
                if time.monotonic() > deadline:
                    raise RuntimeError("qemu guest %d did not finish writing" % i)
                time.sleep(0.2)
        written = time.monotonic() - t0
        rss = sum(rss_bytes(p.pid) for p in procs)
        for p in procs:
            p.stdin.write(CHECK)
            p.stdin.flush()
        ok = 0
        for i in range(n):
            while b"SAME-42" not in output(i):
                if time.monotonic() > deadline:
                    raise RuntimeError("qemu guest %d did not read its data back" % i)
                time.sleep(0.2)
            ok += 1
        return {"written": written, "checked": time.monotonic() - t0 - written, "ok": ok, "rss": rss}
    finally:
        for p in procs:
            p.kill()
            p.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vms", type=int, default=16)
    ap.add_argument("--data", type=int, default=180, help="MiB of random data each guest writes")
    ap.add_argument("--machine-mem", default="2G")
    args = ap.parse_args()
    guest = guest_dir()
    q = qemu(guest, args.vms, args.data)
    r = rvisor(guest, args.vms, args.data, args.machine_mem)
    print("%d VMs of 512 MiB, each writing %d MiB of random data, then reading it back" % (args.vms, args.data))
    print("qemu    %2d/%d intact; written after %6.1f s, read back in %6.1f s; host memory %6.0f MiB (RSS, all)"
          % (q["ok"], args.vms, q["written"], q["checked"], q["rss"] / MiB))
    sw, sh = r["swap"], r["sharing"]
    print("rvisor  %2d/%d intact; written after %6.1f s, read back in %6.1f s; host memory %6.0f MiB (RSS) "
          "in %s of machine memory" % (r["ok"], args.vms, r["written"], r["checked"], r["rss"] / MiB, args.machine_mem))
    print("        swapped out %d frames, read back %d, errors %d; sharing saved %.0f MiB"
          % (sw["swap_outs"], sw["swap_ins"], sw["errors"], sh["saved_bytes"] / MiB))
    print("ratio rvisor/qemu: host memory %.2fx, time to write %.2fx, time to read back %.2fx"
          % (r["rss"] / q["rss"], r["written"] / q["written"], r["checked"] / q["checked"]))


if __name__ == "__main__":
    main()
