"""Content-based page sharing, as in ESX's Figure 4 (Waldspurger, OSDI 2002):
N idle guests booted from one kernel and initramfs under one `rvisor serve`,
with the VMs in one share group, each in a group of its own, and with
sharing off; beside N qemu-system-riscv64 processes (no sharing: KSM is
off by default on Debian). Prints the machine memory the guests hold, what
sharing saved, the scanner's CPU cost and the copy-on-write breaks."""
import argparse
import os
import time

from common import QEMU, guest_dir, cpu_seconds
from monitor import APPEND, Api, console_until, rss_bytes, start_serve

MiB = 1024 * 1024


def rvisor_run(n, guest, mode, settle, rate):
    extra = ["--share-rate", str(rate)] + (["--sharing", "off"] if mode == "off" else [])
    serve, sock = start_serve(*extra)
    try:
        api = Api(sock)
        for i in range(n):
            spec = dict(op="create", name="vm%d" % i, kernel=os.path.join(guest, "Image"),
                        initrd=os.path.join(guest, "initrd.gz"), append=APPEND, mem="256M")
            if mode == "group":
                spec["share_group"] = "same"
            api(**spec)
        t0 = time.monotonic()
        for i in range(n):
            api(op="start", name="vm%d" % i)
        for i in range(n):
            console_until(sock, "vm%d" % i, b"init reached", t0 + 600)
        c0 = cpu_seconds(serve.pid)
        time.sleep(settle)
        mem = api(op="memory")
        idle_cpu = (cpu_seconds(serve.pid) - c0) / settle
        return {"used": mem["used"], "sharing": mem["sharing"], "rss": rss_bytes(serve.pid), "cpu": idle_cpu}
    finally:
        serve.terminate()
        serve.wait()


def qemu_run(n, guest, settle):
    import subprocess
    import tempfile
    cmd = [QEMU, "-M", "virt", "-m", "256M", "-smp", "1", "-nographic", "-no-reboot", "-kernel",
           os.path.join(guest, "Image"), "-initrd", os.path.join(guest, "initrd.gz"), "-append", APPEND]
    procs, outs = [], []
    for _ in range(n):
        out = tempfile.TemporaryFile()
        procs.append(subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=out, stderr=subprocess.STDOUT))
        outs.append(out)
    try:
        t0 = time.monotonic()
        pending = set(range(n))
        while pending and time.monotonic() - t0 < 600:
            for i in list(pending):
                outs[i].seek(0)
                if b"init reached" in outs[i].read():
                    pending.discard(i)
            time.sleep(0.05)
        time.sleep(settle)
        return sum(rss_bytes(p.pid) for p in procs)
    finally:
        for p in procs:
            p.kill()
            p.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vms", default="1,2,4,8", help="comma-separated VM counts")
    ap.add_argument("--settle", type=float, default=6, help="seconds after boot before measuring")
    ap.add_argument("--rate", type=int, default=100000, help="scanner frames per second")
    args = ap.parse_args()
    guest = guest_dir()
    print("N idle 256 MiB guests; memory the guests hold (rvisor: machine memory in use; QEMU: RSS)")
    print("%3s  %10s  %10s  %10s  %10s  %9s  %8s  %9s  %8s" % ("N", "qemu", "off", "own group", "one group",
                                                              "saved", "vs qemu", "scan CPU", "CoW"))
    for n in [int(x) for x in args.vms.split(",")]:
        q = qemu_run(n, guest, args.settle)
        off = rvisor_run(n, guest, "off", args.settle, args.rate)
        own = rvisor_run(n, guest, "own", args.settle, args.rate)
        grp = rvisor_run(n, guest, "group", args.settle, args.rate)
        sh = grp["sharing"]
        print("%3d  %7.1f MiB  %6.1f MiB  %6.1f MiB  %6.1f MiB  %5.1f MiB  %7.2fx  %7.1f ms  %8d"
              % (n, q / MiB, off["used"] / MiB, own["used"] / MiB, grp["used"] / MiB, sh["saved_bytes"] / MiB,
                 grp["used"] / q, sh["scan_cpu_ns"] / 1e6, sh["cow_breaks"]), flush=True)


if __name__ == "__main__":
    main()
