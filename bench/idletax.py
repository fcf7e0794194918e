"""The idle memory tax, as in the ESX paper's experiment (Waldspurger, OSDI
2002, section 5.4, figure 7): two VMs with equal memory shares under one
`rvisor serve --machine-mem M`, their demand together above M. One fills a
lot of memory (random data in its tmpfs) and then sits idle; the other runs
a loop over a working set larger than half of M (a file in its tmpfs),
each pass timed inside the guest. With the tax at 0% the policy is pure
shares: each VM is given about half of machine memory, and the busy one,
whose working set does not fit in its half, has part of it swapped out by
the hypervisor on every pass. With the tax at 75% (ESX's and rvisor's
default) an idle page costs 4 times an active one, so the idle VM gives
first and its memory goes to the busy VM.

The monitors of both tax rates run at the same time, side by side, so both
see the same host load (the host may be shared), and their measuring
windows are lined up: once both VMs' active memory has been estimated (a
sampling period after they started) and a further settling time has
passed. Two busy workloads, each in its own pair of monitors:
  md5   md5sum of the file: compute per byte dominates (as an application);
  copy  dd of the file to /dev/null: memory-bound, a few instructions a byte.
Printed: the busy VM's throughput at each tax rate (MB/s of the file
processed, timed by the guest's clock; the host's count of passes agrees)
and per second of host CPU the monitor used (on a shared host the former
also depends on how much CPU the host's scheduler gave each monitor), the
ratios, the busy VM's swap-ins, and what each VM holds (backed, its policy
target, swapped, balloon; mean over the window) with the monitor's
resident set. --report JSON prints the summary of a run saved with --json.

The paper's busy VM ran dbench, whose working set is the guest's page
cache. Not here: on this host a virtio-blk read is served from the host's
page cache about as fast as from the guest's own cache (100 MiB with dd:
0.36 s cold, 0.32-0.46 s cached), so more memory buys such a guest
nothing. (Until 2026-12-07 such a read, under machine-memory pressure,
into a guest frame that could not be backed just then broke the device;
it now waits for memory: README, "Device DMA waits for memory".)

QEMU has no equivalent: no share-based allocation, no idle tax, no
hypervisor swap, so two QEMU guests cannot be run "in M" at all (a memory
cgroup of M without host swap would OOM-kill them). As reference lines the
busy guest alone, with all the memory it wants, is measured under rvisor
and QEMU (--no-reference skips them).

Usage: python3 bench/idletax.py [--runs 2] [--workloads md5,copy] [--machine-mem 192M]
       [--idle-data 150] [--busy-data 100] [--settle 30] [--window 60] [--sample-period 30]"""
import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time

from common import QEMU, cpu_seconds, guest_dir, median
from monitor import Api, rss_bytes, start_serve

MiB = 1 << 20
TAXES = (0, 75)
COPIES = 5  # dd passes over the file per timed pass of the copy workload

# The guests' /init workloads (no double quotes: they go in the kernel command line).
IDLE = "dd if=/dev/urandom of=/tmp/idle bs=1M count=%d 2>/dev/null; echo READY; exec sleep 100000"
FILL = "dd if=/dev/urandom of=/tmp/w bs=1M count=%d 2>/dev/null; echo READY; "
PASS = {
    "md5": "md5sum < /tmp/w > /dev/null",
    "copy": "for i in %s; do dd if=/tmp/w of=/dev/null bs=1M 2>/dev/null; done" % " ".join(["x"] * COPIES),
}
PASS_DATA = {"md5": 1, "copy": COPIES}  # times the file is read per pass
OP = re.compile(rb"OP ([0-9.]+)")


def busy_script(workload, data):
    return FILL % data + "while :; do %s; read u x < /proc/uptime; echo OP $u; done" % PASS[workload]


def append(script):
    return 'console=ttyS0 quiet rvisor_run="%s"' % script


class Console:
    """Collects a guest's console output in a thread, each pass's 'OP
    <guest uptime>' line with the host time it arrived."""

    def __init__(self, read):
        self.read, self.buf, self.ops = read, b"", []
        self.lock = threading.Lock()
        self.closed = False
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        pos = 0
        while not self.closed:
            try:
                chunk = self.read()
            except OSError:
                return
            if chunk is None:
                continue
            if not chunk:
                return
            now = time.monotonic()
            with self.lock:
                self.buf += chunk
                while True:
                    nl = self.buf.find(b"\n", pos)
                    if nl < 0:
                        break
                    m = OP.search(self.buf, pos, nl)
                    if m:
                        self.ops.append((now, float(m.group(1))))
                    pos = nl + 1

    def wait(self, marker, timeout):
        t0 = time.monotonic()
        while True:
            with self.lock:
                if marker in self.buf:
                    return
                tail = self.buf[-1500:]
            if time.monotonic() - t0 > timeout:
                raise RuntimeError("no %r in:\n%s" % (marker, tail.decode(errors="replace")))
            time.sleep(0.1)

    def ops_between(self, t0, t1):
        with self.lock:
            return [op for op in self.ops if t0 <= op[0] <= t1]


def socket_console(sock, name):
    s = socket.socket(socket.AF_UNIX)
    s.connect(sock)
    s.sendall(b'{"op":"console","name":"%s"}\n' % name.encode())
    s.settimeout(0.5)

    def read():
        try:
            return s.recv(65536)
        except socket.timeout:
            return None
    return Console(read)


def stop_serve(serve, consoles):
    """Stops reading the consoles, then the monitor (the runs' cleanup)."""
    for c in consoles:
        c.closed = True
    serve.terminate()
    serve.wait()


def pass_mb(workload, args):
    return args.busy_data * MiB / 1e6 * PASS_DATA[workload]


def throughput(ops, t0, t1, mb_per_pass, cpu):
    """Passes per second over the window: timed inside the guest (its
    uptime at the first and last pass that ended in the window) and, as a
    check, by the host (passes ended in the window / its length). Also the
    work per second of host CPU the VMM used meanwhile (cpu seconds): on a
    shared host the wall-clock figure depends on how much CPU the host
    scheduler gave each process."""
    guest = (len(ops) - 1) / (ops[-1][1] - ops[0][1]) if len(ops) >= 2 else float("nan")
    return {"ops": len(ops), "guest_ops_s": guest, "host_ops_s": len(ops) / (t1 - t0), "mb_s": guest * mb_per_pass,
            "cores": cpu / (t1 - t0), "mb_cpu_s": len(ops) * mb_per_pass / cpu if cpu > 0 else float("nan")}


def vm_memory(st):
    pages, alloc, bal = st["pages"], st["alloc"], st.get("balloon") or {}
    return {"backed": pages["backed"] * 4096, "swapped": pages["swapped"] * 4096, "swap_ins": pages["swap_ins"],
            "target": alloc["target"], "active": alloc["active_percent"], "balloon": bal.get("size", 0) or 0}


def mean_of(samples, key):
    return sum(s[key] for s in samples) / len(samples)


def rvisor_run(guest, workload, tax, args, barrier):
    """One monitor at one tax rate; barrier lines its window up with the
    other monitor's."""
    swapdir = tempfile.mkdtemp(prefix="rvisor-idletax-")
    serve, sock = start_serve("--machine-mem", args.machine_mem, "--idle-tax", str(tax), "--sharing", args.sharing,
                              "--sample-period", str(args.sample_period), "--swap-dir", swapdir)
    cons = []
    try:
        api = Api(sock)
        t_start = time.monotonic()
        kernel, initrd = os.path.join(guest, "Image"), os.path.join(guest, "initrd.gz")
        # The idle VM first, as in the paper: it fills its memory and goes
        # idle; then the busy one writes its working set and loops over it.
        for name, script in (("idle", IDLE % args.idle_data), ("busy", busy_script(workload, args.busy_data))):
            api(op="create", name=name, kernel=kernel, initrd=initrd, append=append(script), mem=args.mem)
            api(op="start", name=name)
            cons.append(socket_console(sock, name))
            cons[-1].wait(b"READY", 600)
        busy = cons[1]
        t_ready = time.monotonic()
        trace = []

        def sample():
            raw = {n: api(op="stats", name=n) for n in ("idle", "busy")}
            st = {n: vm_memory(raw[n]) for n in raw}
            sw = api(op="memory")["swap"]
            st.update(t=time.monotonic() - t_start, rss=rss_bytes(serve.pid), cpu=cpu_seconds(serve.pid),
                      state=sw["state"], reclaim_cpu=sw["cpu_ns"] / 1e9)
            trace.append(st)
            return st

        # Settle: until both VMs' active memory is estimated, then args.settle seconds more.
        while True:
            st = sample()
            if st["idle"]["active"] >= 0 and st["busy"]["active"] >= 0:
                break
            if time.monotonic() - t_ready > 10 * args.sample_period + 120:
                raise RuntimeError("no active-memory estimate: %r" % st)
            time.sleep(2)
        t_est = time.monotonic()
        while time.monotonic() - t_est < args.settle:
            sample()
            time.sleep(2)
        barrier.wait(timeout=900)
        load0 = os.getloadavg()[0]
        w0 = time.monotonic()
        win = [sample()]
        while time.monotonic() - w0 < args.window:
            time.sleep(2)
            win.append(sample())
        w1 = time.monotonic()
        s0, s1 = win[0], win[-1]
        tp = throughput(busy.ops_between(w0, w1), w0, w1, pass_mb(workload, args), s1["cpu"] - s0["cpu"])
        res = {"workload": workload, "tax": tax, "tp": tp, "load": (load0, os.getloadavg()[0]), "trace": trace,
               "estimated_at": t_est - t_start, "window": (w0 - t_start, w1 - t_start),
               "busy_swap_ins_s": (s1["busy"]["swap_ins"] - s0["busy"]["swap_ins"]) / (w1 - w0),
               # Host CPU of the whole monitor (harts, swapping, policy) per pass, and in all.
               "cpu_per_pass": (s1["cpu"] - s0["cpu"]) / tp["ops"] if tp["ops"] else float("nan"),
               "reclaim_cores": (s1["reclaim_cpu"] - s0["reclaim_cpu"]) / (w1 - w0),
               "rss": mean_of(win, "rss")}
        for n in ("idle", "busy"):
            res[n] = {k: mean_of([s[n] for s in win], k) for k in ("backed", "swapped", "target", "balloon", "active")}
        return res
    except BaseException:
        barrier.abort()
        raise
    finally:
        stop_serve(serve, cons)
        shutil.rmtree(swapdir, ignore_errors=True)


def reference_rvisor(guest, workload, args, barrier):
    """The busy guest alone, with all the machine memory it wants."""
    serve, sock = start_serve("--sharing", args.sharing)
    con = None
    try:
        api = Api(sock)
        api(op="create", name="busy", kernel=os.path.join(guest, "Image"), initrd=os.path.join(guest, "initrd.gz"),
            append=append(busy_script(workload, args.busy_data)), mem=args.mem)
        api(op="start", name="busy")
        con = socket_console(sock, "busy")
        con.wait(b"READY", 600)
        time.sleep(5)
        barrier.wait(timeout=900)
        w0, c0 = time.monotonic(), cpu_seconds(serve.pid)
        time.sleep(args.ref_window)
        w1 = time.monotonic()
        tp = throughput(con.ops_between(w0, w1), w0, w1, pass_mb(workload, args), cpu_seconds(serve.pid) - c0)
        tp["held"] = api(op="stats", name="busy")["pages"]["backed"] * 4096
        return tp
    except BaseException:
        barrier.abort()
        raise
    finally:
        stop_serve(serve, [con] if con else [])


def reference_qemu(guest, workload, args, barrier):
    cmd = [QEMU, "-M", "virt", "-m", args.mem, "-smp", "1", "-nographic", "-no-reboot", "-kernel",
           os.path.join(guest, "Image"), "-initrd", os.path.join(guest, "initrd.gz"),
           "-append", append(busy_script(workload, args.busy_data))]
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    fd = p.stdout.fileno()
    os.set_blocking(fd, False)

    def read():
        try:
            return os.read(fd, 65536)
        except BlockingIOError:
            time.sleep(0.05)
            return None
    con = Console(read)
    try:
        con.wait(b"READY", 600)
        time.sleep(5)
        barrier.wait(timeout=900)
        w0, c0 = time.monotonic(), cpu_seconds(p.pid)
        time.sleep(args.ref_window)
        w1 = time.monotonic()
        tp = throughput(con.ops_between(w0, w1), w0, w1, pass_mb(workload, args), cpu_seconds(p.pid) - c0)
        tp["held"] = rss_bytes(p.pid)
        return tp
    except BaseException:
        barrier.abort()
        raise
    finally:
        con.closed = True
        p.kill()
        p.wait()


def side_by_side(jobs):
    """Runs the functions at the same time; returns their results in order."""
    out = [None] * len(jobs)

    def run(i, f):
        try:
            out[i] = f()
        except BaseException as e:
            out[i] = e
    threads = [threading.Thread(target=run, args=(i, f)) for i, f in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in out:
        if isinstance(r, BaseException):
            raise r
    return out


def mib(x):
    return x / MiB


def log(r):
    b, d, tp = r["busy"], r["idle"], r["tp"]
    print("  %-4s tax %2d%%: busy %6.1f MB/s (%.3f passes/s, host-timed %.3f, %d passes), %.2f cores, "
          "%5.0f MB/CPU-s, %5.0f swap-ins/s; busy holds %.0f MiB (target %.0f, swapped %.0f, balloon %.0f, "
          "active %.0f%%), idle %.0f MiB (target %.0f, swapped %.0f, balloon %.0f, active %.0f%%); load %.1f-%.1f"
          % (r["workload"], r["tax"], tp["mb_s"], tp["guest_ops_s"], tp["host_ops_s"], tp["ops"], tp["cores"],
             tp["mb_cpu_s"], r["busy_swap_ins_s"], mib(b["backed"]), mib(b["target"]), mib(b["swapped"]),
             mib(b["balloon"]), b["active"], mib(d["backed"]), mib(d["target"]), mib(d["swapped"]),
             mib(d["balloon"]), d["active"], r["load"][0], r["load"][1]), flush=True)


def print_trace(r):
    print("trace, %s, tax %d%% (MiB; t: seconds since serve started; window %.0f-%.0f):"
          % (r["workload"], r["tax"], r["window"][0], r["window"][1]))
    print("  %5s | %6s %6s %6s %6s | %6s %6s %6s %6s | %s"
          % ("t", "busy", "target", "swap", "ball.", "idle", "target", "swap", "ball.", "state"))
    for s in r["trace"][::3]:
        b, d = s["busy"], s["idle"]
        print("  %5.0f | %6.0f %6.0f %6.0f %6.0f | %6.0f %6.0f %6.0f %6.0f | %s"
              % (s["t"], mib(b["backed"]), mib(b["target"]), mib(b["swapped"]), mib(b["balloon"]),
                 mib(d["backed"]), mib(d["target"]), mib(d["swapped"]), mib(d["balloon"]), s["state"]))


def report(results, refs, args, loads, elapsed):
    workloads = list(results)
    print("Idle memory tax: two VMs of %s with equal memory shares in `rvisor serve --machine-mem %s` "
          "(--sharing %s, --sample-period %g)." % (args["mem"], args["machine_mem"], args["sharing"],
                                                   args["sample_period"]))
    print("Idle VM: %d MiB of random data in its tmpfs, then idle. Busy VM: a loop over %d MiB in its tmpfs: "
          "md5 = md5sum of it, copy = %d x dd of it to /dev/null." % (args["idle_data"], args["busy_data"], COPIES))
    print("Both tax rates run at once (same host load); window %g s, from %g s after both VMs' active memory "
          "was estimated." % (args["window"], args["settle"]))
    print("MB/s: the file read per second, timed in the guest. MB/CPU-s: per second of host CPU the monitor "
          "used (harts, swapping, policy), which depends much less on the host's load; cores: the monitor's "
          "CPU, of which reclaim: its reclaimer's (swap-outs). Memory: mean over the window.")
    print()
    print("%-5s %-4s | %-25s %6s | %-20s %6s | %5s %7s %10s"
          % ("work", "tax", "busy MB/s: median (runs)", "ratio", "MB/CPU-s: median", "ratio", "cores",
             "reclaim", "swap-ins/s"))
    for w in workloads:
        med, eff = {}, {}
        for t in TAXES:
            rs = results[w][t]
            med[t] = median([r["tp"]["mb_s"] for r in rs])
            eff[t] = median([r["tp"]["mb_cpu_s"] for r in rs])
            print("%-5s %3d%% | %-25s %6s | %-20s %6s | %5.2f %7.3f %10.0f"
                  % (w, t, "%.1f (%s)" % (med[t], ", ".join("%.0f" % r["tp"]["mb_s"] for r in rs)),
                     "" if t == TAXES[0] else "%.2fx" % (med[t] / med[TAXES[0]]),
                     "%.0f (%s)" % (eff[t], ", ".join("%.0f" % r["tp"]["mb_cpu_s"] for r in rs)),
                     "" if t == TAXES[0] else "%.2fx" % (eff[t] / eff[TAXES[0]]),
                     median([r["tp"]["cores"] for r in rs]), median([r.get("reclaim_cores", float("nan")) for r in rs]),
                     median([r["busy_swap_ins_s"] for r in rs])))
        print("%-5s tax 75%% / 0%%, run by run: MB/s %s; MB/CPU-s %s" % (
            w, ", ".join("%.2fx" % (b["tp"]["mb_s"] / a["tp"]["mb_s"]) for a, b in zip(results[w][0], results[w][75])),
            ", ".join("%.2fx" % (b["tp"]["mb_cpu_s"] / a["tp"]["mb_cpu_s"])
                      for a, b in zip(results[w][0], results[w][75]))))
    print()
    print("%-5s %-4s | %-29s | %-29s | %s" % ("work", "tax", "busy MiB: held target swap bal",
                                              "idle MiB: held target swap bal", "monitor RSS MiB"))
    for w in workloads:
        for t in TAXES:
            rs = results[w][t]

            def m(vm, k):
                return median([mib(r[vm][k]) for r in rs])
            print("%-5s %3d%% | %9.0f %6.0f %5.0f %5.0f | %9.0f %6.0f %5.0f %5.0f | %5.0f"
                  % (w, t, m("busy", "backed"), m("busy", "target"), m("busy", "swapped"), m("busy", "balloon"),
                     m("idle", "backed"), m("idle", "target"), m("idle", "swapped"), m("idle", "balloon"),
                     median([mib(r["rss"]) for r in rs])))
    print("(target %s: the policy takes nothing from that VM, it may grow to its full size)" % args["mem"])
    print()
    for w in workloads:
        for name, r in refs.get(w, {}).items():
            print("%-5s reference, the busy guest alone with all its memory, %-6s: %6.1f MB/s, %5.0f MB/CPU-s, "
                  "%.2f cores, holds %.0f MiB%s" % (w, name, r["mb_s"], r["mb_cpu_s"], r["cores"], mib(r["held"]),
                                                   " (RSS)" if name == "qemu" else " (backed)"))
    print("ESX (paper, fig. 7; dbench in the busy VM): throughput +30% (\"over 30%\") with the tax at 75% vs 0%.")
    print("QEMU has no idle tax, no share-based allocation and no hypervisor swap: the two guests cannot run in %s "
          "under it." % args["machine_mem"])
    print("host: %d cores shared with other jobs; load average (1 min) %.1f-%.1f during the runs; total %.0f s"
          % (os.cpu_count(), min(loads), max(loads), elapsed))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=2, help="runs of each workload (each run: both tax rates at once)")
    ap.add_argument("--workloads", default="md5,copy")
    ap.add_argument("--machine-mem", default="192M")
    ap.add_argument("--mem", default="256M", help="each VM's RAM")
    ap.add_argument("--idle-data", type=int, default=150, help="MiB the idle VM writes, then never touches")
    ap.add_argument("--busy-data", type=int, default=100, help="MiB the busy VM's loop reads (its working set)")
    ap.add_argument("--sample-period", type=float, default=30, help="rvisor serve --sample-period (its default: 30)")
    ap.add_argument("--settle", type=float, default=30, help="seconds after both VMs' memory was estimated")
    ap.add_argument("--window", type=float, default=60)
    ap.add_argument("--ref-window", type=float, default=30)
    ap.add_argument("--sharing", default="off", help="rvisor serve --sharing (off: the tax alone moves memory)")
    ap.add_argument("--no-reference", action="store_true", help="skip the busy-guest-alone reference lines")
    ap.add_argument("--trace", action="store_true", help="print each run's memory over time")
    ap.add_argument("--json", help="write all results to this file")
    ap.add_argument("--report", metavar="JSON", help="print the summary of a run saved with --json, run nothing")
    args = ap.parse_args()
    if args.report:
        with open(args.report) as f:
            d = json.load(f)
        results = {w: {int(t): rs for t, rs in by.items()} for w, by in d["results"].items()}
        report(results, d["references"], d["args"], d["loads"], d["elapsed"])
        return
    workloads = args.workloads.split(",")
    for w in workloads:
        if w not in PASS:
            ap.error("unknown workload %r (md5, copy)" % w)
    guest = guest_dir()
    t_all = time.monotonic()
    loads = [os.getloadavg()[0]]
    results = {w: {t: [] for t in TAXES} for w in workloads}
    refs = {w: {} for w in workloads}
    for i in range(args.runs):
        for w in workloads:
            barrier = threading.Barrier(len(TAXES))
            out = side_by_side([lambda t=t: rvisor_run(guest, w, t, args, barrier) for t in TAXES])
            for r in out:
                log(r)
                results[w][r["tax"]].append(r)
                loads += r["load"]
    if not args.no_reference:
        for w in workloads:
            barrier = threading.Barrier(2)
            refs[w]["rvisor"], refs[w]["qemu"] = side_by_side([lambda: reference_rvisor(guest, w, args, barrier),
                                                               lambda: reference_qemu(guest, w, args, barrier)])
    loads.append(os.getloadavg()[0])
    elapsed = time.monotonic() - t_all
    if args.trace:
        for w in workloads:
            for t in TAXES:
                for r in results[w][t]:
                    print_trace(r)
    print()
    report(results, refs, vars(args), loads, elapsed)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "results": results, "references": refs, "loads": loads,
                       "elapsed": elapsed}, f, indent=1)


if __name__ == "__main__":
    main()
