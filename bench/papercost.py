"""Two costs the ESX paper measured (Waldspurger, OSDI 2002), side by side
on this host:

  scanner  what content-based page sharing costs a busy guest (section 4.3:
           "from -1.6% to +1.8%", the scan's CPU against the cache benefit
           of sharing). Two monitors run at once, each pinned to a core of
           its own (taskset), each with two identical busy VMs in one share
           group: one with the page-sharing scanner on at --share-rate
           RATE, one with --sharing off.
  balloon  what ballooning a guest down costs it (section 3.2, figure 2:
           1.4% to 4.4% for a VM configured with 256 MB and ballooned to
           its size, against a VM configured with that size). Two VMs in one
           monitor (one worker each, so each has a core): one of --mem 256M
           ballooned to SIZE, one of --mem SIZE.

The busy workload (each pass timed by the guest's clock): gzip -1 of a
16 MiB file of text in tmpfs, written before the window opens. Printed:
each configuration's passes per minute over the window (median of the
runs), and the ratio. The host's other work moves both sides alike (they
run at the same time); run with a quiet host for few-percent effects.

    python3 bench/papercost.py [--runs 3] [--window 60] [--share-rate 20000] [--balloon-to 128M]
"""
import argparse
import os
import statistics
import subprocess
import threading
import time

from common import guest_dir
from idletax import append, socket_console, stop_serve
from monitor import Api, start_serve

FILL = "seq 1 2100000 > /tmp/w; echo READY; "  # ~16 MiB of text
PASS = "gzip -1 -c /tmp/w > /dev/null"
BUSY = FILL + "while :; do %s; read u x < /proc/uptime; echo OP $u; done" % PASS


def passes_per_min(con, w0, w1):
    ops = con.ops_between(w0, w1)
    if len(ops) < 2:
        return float("nan")
    # Guest time between the first and last pass ending in the window.
    return 60.0 * (len(ops) - 1) / (ops[-1][1] - ops[0][1])


def pinned_serve(cpu, *extra):
    serve, sock = start_serve(*extra)
    subprocess.run(["taskset", "-a", "-p", "-c", str(cpu), str(serve.pid)], check=True, capture_output=True)
    return serve, sock


def boot(api, sock, guest, name, mem, group=None):
    spec = dict(op="create", name=name, kernel=os.path.join(guest, "Image"),
                initrd=os.path.join(guest, "initrd.gz"), append=append(BUSY), mem=mem)
    if group:
        spec["share_group"] = group
    api(**spec)
    api(op="start", name=name)
    return socket_console(sock, name)


def scanner_side(guest, sharing, cpu, args, barrier, out):
    extra = ["--workers", "1", "--share-rate", str(args.share_rate)]
    if not sharing:
        extra += ["--sharing", "off"]
    serve, sock = pinned_serve(cpu, *extra)
    cons = []
    try:
        api = Api(sock)
        cons = [boot(api, sock, guest, "vm%d" % i, "256M", "same") for i in range(2)]
        for c in cons:
            c.wait(b"READY", 600)
        time.sleep(args.settle)  # the scanner's first sweeps (merges) happen here
        barrier.wait(timeout=900)
        w0 = time.monotonic()
        m0 = api(op="memory")
        time.sleep(args.window)
        w1 = time.monotonic()
        m1 = api(op="memory")
        out[sharing] = {"ppm": sum(passes_per_min(c, w0, w1) for c in cons),
                        "shared": m1.get("sharing", {}).get("shared_frames", 0),
                        "scan_cpu": (m1.get("sharing", {}).get("scan_cpu_ns", 0) - m0.get("sharing", {}).get("scan_cpu_ns", 0))
                        / 1e9 / (w1 - w0)}
    except BaseException:
        barrier.abort()
        raise
    finally:
        stop_serve(serve, cons)


def scanner_run(guest, args, k):
    # The two cores need not be alike (the host's interrupts, its other
    # work): the sides swap cores from one run to the next.
    out, barrier = {}, threading.Barrier(2)
    threads = [threading.Thread(target=scanner_side, args=(guest, s, (k + (0 if s else 1)) % 2, args, barrier, out))
               for s in (True, False)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if len(out) != 2:
        raise RuntimeError("a side failed")
    return out


def balloon_run(guest, args, k):
    serve, sock = start_serve("--workers", "2", "--sharing", "off")
    cons = []
    try:
        api = Api(sock)
        # The VM made first ran ~10% faster whichever it was (the workers
        # are not alike): the order alternates from run to run.
        if k % 2:
            small = boot(api, sock, guest, "sized", args.balloon_to)
        big = boot(api, sock, guest, "ballooned", "256M")
        api(op="balloon", name="ballooned", target=args.balloon_to)
        if k % 2 == 0:
            small = boot(api, sock, guest, "sized", args.balloon_to)
        cons = [big, small]
        for c in cons:
            c.wait(b"READY", 600)
        deadline = time.monotonic() + 120
        want = 256 * 2**20 - parse_size(args.balloon_to)
        while api(op="stats", name="ballooned").get("balloon", {}).get("actual", 0) < want * 0.95:
            if time.monotonic() > deadline:
                raise RuntimeError("the balloon did not inflate: %r" % api(op="stats", name="ballooned"))
            time.sleep(1)
        time.sleep(args.settle)
        c0 = {n: api(op="stats", name=n)["cpu_ns"] for n in ("ballooned", "sized")}
        w0 = time.monotonic()
        time.sleep(args.window)
        w1 = time.monotonic()
        c1 = {n: api(op="stats", name=n)["cpu_ns"] for n in ("ballooned", "sized")}
        # Host CPU each VM got in the window, in cores: the two share one
        # monitor's workers, so throughput per CPU is the fairer figure.
        cores = {n: (c1[n] - c0[n]) / 1e9 / (w1 - w0) for n in c0}
        return {"ballooned": passes_per_min(big, w0, w1), "sized": passes_per_min(small, w0, w1),
                "cores": cores, "actual": api(op="stats", name="ballooned")["balloon"]["actual"]}
    finally:
        stop_serve(serve, cons)


def parse_size(s):
    units = {"K": 2**10, "M": 2**20, "G": 2**30}
    return int(s[:-1]) * units[s[-1].upper()] if s[-1].upper() in units else int(s)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--window", type=float, default=60)
    ap.add_argument("--settle", type=float, default=20)
    ap.add_argument("--share-rate", type=int, default=20000, help="frames/s of the scanner (serve's default)")
    ap.add_argument("--balloon-to", default="128M")
    ap.add_argument("--only", choices=("scanner", "balloon"))
    args = ap.parse_args()
    guest = guest_dir()
    if args.only != "balloon":
        runs = [scanner_run(guest, args, k) for k in range(args.runs)]
        on = statistics.median(r[True]["ppm"] for r in runs)
        off = statistics.median(r[False]["ppm"] for r in runs)
        print("scanner: 2 busy VMs in one share group per monitor, each monitor on a core of its own, %d runs" % args.runs)
        for r in runs:
            print("  run: sharing on %.2f passes/min (scanner %.1f%% of a core, %d frames shared), off %.2f"
                  % (r[True]["ppm"], 100 * r[True]["scan_cpu"], r[True]["shared"], r[False]["ppm"]))
        print("  median: on %.2f, off %.2f passes/min: throughput with the scanner %+.1f%% (ESX: -1.6%% to +1.8%%)"
              % (on, off, 100 * (on / off - 1)))
    if args.only != "scanner":
        runs = [balloon_run(guest, args, k) for k in range(args.runs)]
        b = statistics.median(r["ballooned"] for r in runs)
        s = statistics.median(r["sized"] for r in runs)
        print("balloon: a 256M VM ballooned to %s beside a %s VM, one monitor, a core each, %d runs"
              % (args.balloon_to, args.balloon_to, args.runs))
        for r in runs:
            print("  run: ballooned %.2f passes/min on %.2f cores (balloon %d MiB), sized %.2f on %.2f cores"
                  % (r["ballooned"], r["cores"]["ballooned"], r["actual"] >> 20, r["sized"], r["cores"]["sized"]))
        bc = statistics.median(r["ballooned"] / r["cores"]["ballooned"] for r in runs)
        sc = statistics.median(r["sized"] / r["cores"]["sized"] for r in runs)
        print("  median: ballooned %.2f, sized %.2f passes/min: ballooning costs %.1f%%; per CPU %.1f%% "
              "(ESX: 1.4%% to 4.4%%)" % (b, s, 100 * (1 - b / s), 100 * (1 - bc / sc)))


if __name__ == "__main__":
    main()
