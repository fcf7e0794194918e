"""Malicious guests: how much CPU a well-behaved VM keeps, and how quickly
the monitor answers, while other VMs in the same `rvisor serve` attack it
(tests/malicious: MMIO hammering, virtio abuse, interrupt storms, exception
loops, a trap handler that traps, M-mode spinning, a Linux page-fault and
syscall storm). The scenario is tests/malicious/scenario.py, the one
tests/e2e/test_malicious.py runs briefly.

Prints, per phase (the well-behaved VM alone, beside each attacker, beside
all of them): its host CPU in cores against its fair share, its guest MIPS
(absolute, and per core of CPU it got), the monitor's CPU and of that the
page-sharing scanner's and reclaimer's, the host CPU left idle, each VM's
CPU, and the latency of `list` requests sent every
0.2 s (p50, p99, max); then the monitor's resident memory.

    python3 bench/malicious.py [--alone S] [--each S] [--all S] [--workers N] [--engine jit|interp]

Needs the programs built by `ninja -C build` (build/tests/malicious).
"""
import argparse
import os
import sys

from common import RVISOR, guest_dir

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "malicious"))
import scenario  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--alone", type=float, default=10, help="seconds measured alone")
    ap.add_argument("--each", type=float, default=10, help="seconds measured beside each attacker")
    ap.add_argument("--all", type=float, default=30, help="seconds measured beside all attackers")
    ap.add_argument("--settle", type=float, default=1)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--engine", choices=["jit", "interp"], default=None)
    args = ap.parse_args()
    missing = scenario.missing_programs(RVISOR)
    if missing:
        sys.exit("missing %s in %s: run ninja -C build" % (", ".join(missing), scenario.programs_dir(RVISOR)))

    mon = scenario.Monitor(RVISOR, args.workers)
    probe = scenario.LatencyProbe(mon)
    try:
        sc = scenario.Scenario(mon, RVISOR, guest_dir(), engine=args.engine)
        rss0 = mon.rss()
        sc.boot_linux()
        probe.start()
        print("rvisor serve --workers %d, engine %s; every VM 1000 shares; the well-behaved VM: counter.S"
              % (args.workers, args.engine or "default"))
        for a in sc.attackers:
            print("  %-15s %d hart%s: %s" % (a.name, a.cpus, "s" if a.cpus > 1 else "", a.what))
        print("%-15s %5s %6s %6s %6s %8s %9s %6s %6s %6s  %-22s %s"
              % ("phase", "VMs", "good", "fair", "ratio", "MIPS", "MIPS/core", "mon", "scan", "idle",
                 "list ms p50/p99/max", "attackers' CPU (cores) and evidence"))
        alone = {}

        def report(label, names, r):
            if label == "alone":
                alone.update(r)
            lat = [x for x in probe.latencies(label) if x is not None]
            failed = sum(1 for x in probe.latencies(label) if x is None)
            att = ", ".join("%s %.2f %s+%d%s" % (n, r["vms"][n]["cpu"], a.evidence, r["vms"][n]["counts"][a.evidence],
                                                  "" if r["vms"][n]["state"] == "running" else " " + r["vms"][n]["state"])
                            for n in names for a in sc.attackers if a.name == n)
            print("%-15s %5d %6.2f %6.2f %6.2f %8.1f %9.1f %6.2f %6.2f %6.2f  %6.1f/%6.1f/%6.1f%s  %s"
                  % (label, r["contenders"], r["good_cores"], r["fair"], r["good_cores"] / r["fair"], r["good_mips"],
                     r["good_mips_per_core"], r["monitor_cores"], r["housekeeping_cores"], r["idle_cores"],
                     1e3 * scenario.percentile(lat, 0.5), 1e3 * scenario.percentile(lat, 0.99),
                     1e3 * max(lat) if lat else float("nan"), " (%d failed)" % failed if failed else "", att),
                  flush=True)

        results = sc.phases(args.alone, args.each, args.all, args.settle, probe=probe, report=report)
        probe.stop()
        lat = [x for x in probe.latencies() if x is not None]
        rss1 = mon.rss()
        alive = mon.alive()
        status = mon.stop()
        allr = results[-1][2]
        print()
        print("all attackers at once: the well-behaved VM got %.2f cores (fair share %.2f: %.0f%%), %.0f MIPS "
              "(alone %.0f MIPS on %.2f cores); per core of CPU %.0f MIPS (alone %.0f)"
              % (allr["good_cores"], allr["fair"], 100 * allr["good_cores"] / allr["fair"], allr["good_mips"],
                 alone["good_mips"], alone["good_cores"], allr["good_mips_per_core"], alone["good_mips_per_core"]))
        print("list requests: %d answered, p50 %.1f ms, p99 %.1f ms, max %.1f ms, %d failed"
              % (len(lat), 1e3 * scenario.percentile(lat, 0.5), 1e3 * scenario.percentile(lat, 0.99),
                 1e3 * max(lat), sum(1 for x in probe.latencies() if x is None)))
        print("monitor RSS: %.1f MiB after creating the VMs, %.1f MiB at the end; alive to the end: %s; "
              "exit status on SIGTERM: %s" % (rss0 / 2**20, rss1 / 2**20, alive, status))
    finally:
        try:
            if probe.is_alive():
                probe.stop()
        finally:
            mon.close()


if __name__ == "__main__":
    main()
