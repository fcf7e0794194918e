"""Snapshots side by side: a 256 MiB guest that has written 64 MiB of random
data into its tmpfs is saved to a file and restored, under `rvisor serve`
(ops snapshot / restore) and under qemu-system-riscv64 (QMP `stop` +
`migrate` to "exec:cat > FILE", then a new QEMU with `-incoming
"exec:cat FILE"` and `cont`). Measured: the time to save and the file's
size; the same with --direct (rvisor only: memory written with O_DIRECT);
how long the VM was stopped; the time from the restore request to a
running VM, and to a shell that answers a command, with the file in the
host's page cache (just written) and with it dropped from the cache.

Usage: python3 bench/snapshot.py [--runs N]"""
import argparse
import json
import os
import socket
import tempfile
import time

from common import QemuQmp, guest_dir, median
from monitor import Api, start_serve

MiB = 1 << 20
SCRIPT = "dd if=/dev/urandom of=/tmp/r bs=1M count=64 2>/dev/null; echo READY; exec sh"
APPEND = 'console=ttyS0 quiet rvisor_run="%s"' % SCRIPT


def wait_for(read, buf, marker, timeout=300):
    t0 = time.monotonic()
    while marker not in buf:
        if time.monotonic() - t0 > timeout:
            raise RuntimeError("no %r in:\n%s" % (marker, buf[-2000:].decode(errors="replace")))
        buf += read()
    return buf


class SocketConsole:
    def __init__(self, sock, name):
        self.s = socket.socket(socket.AF_UNIX)
        self.s.connect(sock)
        self.s.sendall((json.dumps({"op": "console", "name": name}) + "\n").encode())
        self.buf = b""
        self.buf = wait_for(lambda: self.s.recv(65536), self.buf, b"\n")

    def wait(self, marker):
        self.buf = wait_for(lambda: self.s.recv(65536), self.buf, marker)

    def send(self, text):
        self.s.sendall(text.encode())


def evict(path):
    """Drops path's pages from the host's page cache: a restore of it then
    reads the disk, as one of a snapshot written long ago would."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def rvisor_restore(api, sock, name, path):
    t0 = time.monotonic()
    api(op="restore", name=name, file=path)
    running = time.monotonic() - t0
    con = SocketConsole(sock, name)
    con.send("echo hi-$((6*7))\n")
    con.wait(b"hi-42")
    shell = time.monotonic() - t0
    api(op="destroy", name=name)
    return running, shell


def rvisor(guest, d, run):
    serve, sock = start_serve("--machine-mem", "2G", "--sharing", "off")
    try:
        api = Api(sock)
        api(op="create", name="a", kernel=os.path.join(guest, "Image"), initrd=os.path.join(guest, "initrd.gz"),
            append=APPEND, mem="256M")
        api(op="start", name="a")
        con = SocketConsole(sock, "a")
        con.wait(b"READY")
        time.sleep(0.5)
        paths = {False: os.path.join(d, "rvisor.snap"), True: os.path.join(d, "rvisor-direct.snap")}
        save, paused = {}, None
        # Both saves of one stopped VM, in turn first: whichever goes
        # second finds the host's memory as the first left it.
        for direct in ((False, True) if run % 2 == 0 else (True, False)):
            t0 = time.monotonic()
            r = api(op="snapshot", name="a", file=paths[direct], stop=True, direct=direct)
            save[direct] = time.monotonic() - t0
            if not direct:
                paused = r["snapshot"]["pause_ns"] / 1e9
        api(op="destroy", name="a")
        running, shell = rvisor_restore(api, sock, "b", paths[False])
        evict(paths[True])
        cold_running, cold_shell = rvisor_restore(api, sock, "c", paths[True])
        size = os.path.getsize(paths[False])
        for p in paths.values():
            os.unlink(p)
        return save[False], save[True], paused, size, running, shell, cold_running, cold_shell
    finally:
        serve.terminate()
        serve.wait()


def qemu(guest, d):
    path = os.path.join(d, "qemu.snap")
    a = QemuQmp(guest, d, APPEND)
    try:
        a.wait(b"READY")
        time.sleep(0.5)
        t0 = time.monotonic()
        a.qmp("stop")
        a.qmp("migrate", uri="exec:cat > %s" % path)
        while a.qmp("query-migrate").get("status") not in ("completed", "failed"):
            time.sleep(0.001)
        save = time.monotonic() - t0
        if a.qmp("query-migrate")["status"] != "completed":
            raise RuntimeError("QEMU's migration to a file failed")
    finally:
        a.close()
    running, shell = qemu_restore(guest, d, path)
    evict(path)
    cold_running, cold_shell = qemu_restore(guest, d, path)
    size = os.path.getsize(path)
    os.unlink(path)
    return save, None, save, size, running, shell, cold_running, cold_shell


def qemu_restore(guest, d, path):
    t0 = time.monotonic()
    b = QemuQmp(guest, d, APPEND, "-incoming", "exec:cat %s" % path)
    try:
        while b.qmp("query-status")["status"] == "inmigrate":
            time.sleep(0.001)
        if b.qmp("query-status")["status"] != "running":
            b.qmp("cont")
        running = time.monotonic() - t0
        b.p.stdin.write(b"echo hi-$((6*7))\n")
        b.p.stdin.flush()
        b.wait(b"hi-42")
        shell = time.monotonic() - t0
    finally:
        b.close()
    return running, shell


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    guest = guest_dir()
    d = tempfile.mkdtemp(prefix="rvisor-snapbench-")
    runs = {"qemu": [], "rvisor": []}
    for run in range(args.runs):
        runs["qemu"].append(qemu(guest, d))
        runs["rvisor"].append(rvisor(guest, d, run))
    rows = ["time to save", "time to save, --direct (O_DIRECT)", "VM paused for", "file size",
            "restore: request to running VM", "restore: request to shell answer",
            "restore, file not in page cache: to running VM", "restore, file not in page cache: to shell answer"]
    print("256 MiB guest with 64 MiB of random data in tmpfs; median of %d runs" % args.runs)
    print("| measure | qemu-system-riscv64 | rvisor | rvisor / qemu |")
    print("|---|---|---|---|")
    for i, row in enumerate(rows):
        v = median([r[i] for r in runs["rvisor"]])
        fmt = (lambda x: "%.1f MiB" % (x / MiB)) if row == "file size" else (lambda x: "%.1f ms" % (x * 1000))
        if runs["qemu"][0][i] is None:  # QEMU 7.2 has no direct-io for migration to a file
            print("| %s | — | %s | — |" % (row, fmt(v)))
            continue
        q = median([r[i] for r in runs["qemu"]])
        print("| %s | %s | %s | %.2fx |" % (row, fmt(q), fmt(v), v / q if q else 0))
    for i, row in enumerate(rows[:2]):
        print("rvisor %s, run by run: %s" % (row, ", ".join("%.1f ms" % (r[i] * 1000) for r in runs["rvisor"])))


if __name__ == "__main__":
    main()
