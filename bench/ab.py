"""A/B of two rvisor binaries on bench/cpu.py's busybox workloads, run by
run alternately (A B, then B A, ...) so slow phases of a busy host hit
both: the guest's own timing (as cpu.py) and the rvisor process's CPU time
(user + system, from wait4), which other load on the host moves less.
Prints per workload the medians and B/A, then the geometric means.

Usage: python3 bench/ab.py A_BINARY B_BINARY [--runs 5] [workload ...]"""
import argparse
import math
import os
import subprocess

import common

ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
ap.add_argument("a", help="the first rvisor binary")
ap.add_argument("b", help="the second rvisor binary")
ap.add_argument("--runs", type=int, default=5)
ap.add_argument("workloads", nargs="*", default=list(common.WORKLOADS))
args = ap.parse_args()
for w in args.workloads:
    if w not in common.WORKLOADS:
        ap.error("unknown workload %s (known: %s)" % (w, ", ".join(common.WORKLOADS)))
for path in (args.a, args.b):
    if not os.access(path, os.X_OK):
        ap.error("%s is not an executable" % path)
guest = common.guest_dir()


def run(binary, workload):
    """(guest seconds, rvisor CPU seconds) of one boot running workload."""
    common.RVISOR = binary
    p = subprocess.Popen(common.command_line("rvisor", guest, common.timed(common.WORKLOADS[workload])),
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = p.stdout.read().decode(errors="replace")
    _, status, usage = os.wait4(p.pid, 0)
    t = common.guest_seconds(out, "T")
    if status != 0 or t is None:
        raise SystemExit("%s failed on %s:\n%s" % (binary, workload, out[-2000:]))
    return t, usage.ru_utime + usage.ru_stime


times = {w: {"A": [], "B": []} for w in args.workloads}
cpus = {w: {"A": [], "B": []} for w in args.workloads}
binaries = {"A": args.a, "B": args.b}
for r in range(args.runs):
    for w in args.workloads:
        for side in ("A", "B") if r % 2 == 0 else ("B", "A"):
            t, c = run(binaries[side], w)
            times[w][side].append(t)
            cpus[w][side].append(c)
log_t = log_c = 0.0
for w in args.workloads:
    ta, tb = common.median(times[w]["A"]), common.median(times[w]["B"])
    ca, cb = common.median(cpus[w]["A"]), common.median(cpus[w]["B"])
    log_t += math.log(tb / ta)
    log_c += math.log(cb / ca)
    print("%-8s guest time A %.2f s  B %.2f s  (B/A %.3f)   rvisor CPU A %.2f s  B %.2f s  (B/A %.3f)"
          % (w, ta, tb, tb / ta, ca, cb, cb / ca))
n = len(args.workloads)
print("geometric mean B/A (median of %d runs each): guest time %.3f, rvisor CPU time %.3f"
      % (args.runs, math.exp(log_t / n), math.exp(log_c / n)))
