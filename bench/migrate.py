"""Live migration side by side, on loopback: a 256 MiB guest moves, running,
from one rvisor monitor to another (`rvisor serve --incoming`, op
migrate) and from one qemu-system-riscv64 to another (`-incoming tcp:`,
QMP migrate), both with a 300 ms downtime limit and no bandwidth cap
(QEMU's default cap, 128 MiB/s, is lifted to match). Two guests: one idle
at its shell after writing 64 MiB of random data into tmpfs, and one that
keeps rewriting 16 MiB (dd from /dev/zero, then 0.1 s of sleep: about
100 MiB/s at most). Measured: total time, downtime as each VMM reports it
(rvisor: VM stopped here until the target says it runs; QEMU: its
"downtime" figure), bytes sent, rounds.

Usage: python3 bench/migrate.py [--runs N]"""
import argparse
import os
import socket
import tempfile
import time

from common import QemuQmp, guest_dir, median
from monitor import Api, start_serve

MiB = 1 << 20
IDLE = "dd if=/dev/urandom of=/tmp/r bs=1M count=64 2>/dev/null; echo READY; exec sh"
DIRTY = ("dd if=/dev/urandom of=/tmp/r bs=1M count=64 2>/dev/null; echo READY; "
         "while :; do dd if=/dev/zero of=/tmp/d bs=1M count=16 2>/dev/null; sleep 0.1; done")


def append(script):
    return 'console=ttyS0 quiet rvisor_run="%s"' % script


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(read, marker, timeout=300):
    buf, t0 = b"", time.monotonic()
    while marker not in buf:
        if time.monotonic() - t0 > timeout:
            raise RuntimeError("no %r in:\n%s" % (marker, buf[-2000:].decode(errors="replace")))
        buf += read()
    return buf


def rvisor(guest, script):
    port = free_port()
    src, sock = start_serve("--sharing", "off")
    dst, _ = start_serve("--sharing", "off", "--incoming", "tcp:127.0.0.1:%d" % port)
    try:
        api = Api(sock)
        api(op="create", name="m", kernel=os.path.join(guest, "Image"), initrd=os.path.join(guest, "initrd.gz"),
            append=append(script), mem="256M")
        api(op="start", name="m")
        s = socket.socket(socket.AF_UNIX)
        s.connect(sock)
        s.sendall(b'{"op":"console","name":"m"}\n')
        wait_for(lambda: s.recv(65536), b"READY")
        time.sleep(1)
        r = api(op="migrate", name="m", uri="tcp:127.0.0.1:%d" % port)["migration"]
        return r["total_ns"] / 1e9, r["downtime_ns"] / 1e9, r["bytes"], r["rounds"]
    finally:
        for p in (src, dst):
            p.terminate()
            p.wait()


def qemu(guest, script):
    d = tempfile.mkdtemp(prefix="rvisor-migbench-")
    port = free_port()
    a = QemuQmp(guest, d, append(script))
    b = QemuQmp(guest, d, append(script), "-incoming", "tcp:127.0.0.1:%d" % port)
    try:
        a.wait(b"READY")
        time.sleep(1)
        a.qmp("migrate-set-parameters", **{"max-bandwidth": 10 << 30, "downtime-limit": 300})
        a.qmp("migrate", uri="tcp:127.0.0.1:%d" % port)
        while True:
            st = a.qmp("query-migrate")
            if st.get("status") in ("completed", "failed"):
                break
            time.sleep(0.005)
        if st["status"] != "completed":
            raise RuntimeError("QEMU's migration failed: %s" % st)
        return st["total-time"] / 1e3, st["downtime"] / 1e3, st["ram"]["total"] and st["ram"]["transferred"], \
            st["ram"].get("dirty-sync-count", 0)
    finally:
        a.close()
        b.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    guest = guest_dir()
    print("256 MiB guest, loopback, downtime limit 300 ms; median of %d runs" % args.runs)
    print("| guest | measure | qemu-system-riscv64 | rvisor | rvisor / qemu |")
    print("|---|---|---|---|---|")
    for label, script in (("idle, 64 MiB written", IDLE), ("rewriting 16 MiB", DIRTY)):
        runs = {"qemu": [], "rvisor": []}
        for _ in range(args.runs):
            runs["qemu"].append(qemu(guest, script))
            runs["rvisor"].append(rvisor(guest, script))
        for i, row in enumerate(("total time", "downtime", "bytes sent", "rounds")):
            q = median([r[i] for r in runs["qemu"]])
            v = median([r[i] for r in runs["rvisor"]])
            fmt = ((lambda x: "%.1f ms" % (x * 1000)) if i < 2 else
                   (lambda x: "%.1f MiB" % (x / MiB)) if i == 2 else (lambda x: "%d" % x))
            print("| %s | %s | %s | %s | %.2fx |" % (label, row, fmt(q), fmt(v), v / q if q else 0))


if __name__ == "__main__":
    main()
