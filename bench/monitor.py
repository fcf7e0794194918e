"""Many VMs at once: N idle guests under one `rvisor serve` beside N
qemu-system-riscv64 processes. Prints the time until every guest reached
its /init when all start together, the host CPU the idle guests then use,
and the host memory they hold (rvisor: machine memory backed; QEMU: the
processes' resident memory)."""
import argparse
import json
import os
import socket
import subprocess
import tempfile
import time

from common import QEMU, RVISOR, cpu_seconds, guest_dir

APPEND = "console=ttyS0 quiet"


def rss_bytes(pid):
    with open("/proc/%d/statm" % pid) as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class Api:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX)
        self.s.connect(path)
        self.f = self.s.makefile("rwb")

    def __call__(self, **req):
        self.f.write((json.dumps(req) + "\n").encode())
        self.f.flush()
        reply = json.loads(self.f.readline())
        if not reply.get("ok"):
            raise RuntimeError("%s: %s" % (req, reply))
        return reply


def console_until(path, name, text, deadline):
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    s.sendall((json.dumps({"op": "console", "name": name}) + "\n").encode())
    buf = b""
    s.settimeout(1)
    while time.monotonic() < deadline:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            continue
        if not chunk:
            break
        buf += chunk
        if text in buf:
            s.close()
            return time.monotonic()
    raise RuntimeError("%s never printed %r" % (name, text))


def start_serve(*extra):
    """Starts `rvisor serve` on a fresh socket; returns (process, socket path)."""
    sock = os.path.join(tempfile.mkdtemp(), "rv.sock")
    serve = subprocess.Popen([RVISOR, "serve", "--socket", sock] + list(extra),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        if os.path.exists(sock):
            break
        time.sleep(0.05)
    return serve, sock


def rvisor_run(n, guest, settle, window):
    serve, sock = start_serve()
    try:
        api = Api(sock)
        for i in range(n):
            api(op="create", name="vm%d" % i, kernel=os.path.join(guest, "Image"),
                initrd=os.path.join(guest, "initrd.gz"), append=APPEND, mem="256M")
        t0 = time.monotonic()
        for i in range(n):
            api(op="start", name="vm%d" % i)
        done = max(console_until(sock, "vm%d" % i, b"init reached", t0 + 600) for i in range(n))
        boot = done - t0
        time.sleep(settle)
        c0, w0 = cpu_seconds(serve.pid), time.monotonic()
        time.sleep(window)
        idle = (cpu_seconds(serve.pid) - c0) / (time.monotonic() - w0)
        backed = sum(vm["mem_backed"] for vm in api(op="list")["vms"])
        return boot, idle, backed
    finally:
        serve.terminate()
        serve.wait()


def qemu_run(n, guest, settle, window):
    cmd = [QEMU, "-M", "virt", "-m", "256M", "-smp", "1", "-nographic", "-no-reboot", "-kernel",
           os.path.join(guest, "Image"), "-initrd", os.path.join(guest, "initrd.gz"), "-append", APPEND]
    procs, outs = [], []
    t0 = time.monotonic()
    for _ in range(n):
        out = tempfile.TemporaryFile()
        procs.append(subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=out, stderr=subprocess.STDOUT))
        outs.append(out)
    try:
        pending = set(range(n))
        while pending and time.monotonic() - t0 < 600:
            for i in list(pending):
                outs[i].seek(0)
                if b"init reached" in outs[i].read():
                    pending.discard(i)
            time.sleep(0.05)
        if pending:
            raise RuntimeError("qemu guests %s never reached /init" % sorted(pending))
        boot = time.monotonic() - t0
        time.sleep(settle)
        c0, w0 = sum(cpu_seconds(p.pid) for p in procs), time.monotonic()
        time.sleep(window)
        idle = (sum(cpu_seconds(p.pid) for p in procs) - c0) / (time.monotonic() - w0)
        rss = sum(rss_bytes(p.pid) for p in procs)
        return boot, idle, rss
    finally:
        for p in procs:
            p.kill()
            p.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vms", type=int, default=16)
    ap.add_argument("--settle", type=float, default=8)
    ap.add_argument("--window", type=float, default=10)
    args = ap.parse_args()
    guest = guest_dir()
    q = qemu_run(args.vms, guest, args.settle, args.window)
    r = rvisor_run(args.vms, guest, args.settle, args.window)
    MiB = 1024 * 1024
    print("%d VMs of 256 MiB started at once, then idle at their shell prompt" % args.vms)
    print("qemu    all at /init after %6.2f s   idle host CPU %5.1f%% of a core   memory %6.0f MiB (RSS)"
          % (q[0], 100 * q[1], q[2] / MiB))
    print("rvisor  all at /init after %6.2f s   idle host CPU %5.1f%% of a core   memory %6.0f MiB (backed)"
          % (r[0], 100 * r[1], r[2] / MiB))
    print("ratio rvisor/qemu: boot %.2fx, idle CPU %.2fx, memory %.2fx" % (r[0] / q[0], r[1] / q[1] if q[1] else float("nan"),
                                                                          r[2] / q[2]))


if __name__ == "__main__":
    main()
