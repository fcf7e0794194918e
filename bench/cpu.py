"""CPU-bound busybox workloads inside the guest, rvisor vs QEMU. Each
workload is timed by the guest itself (/proc/uptime before and after), so
boot time does not count."""
import argparse

from common import WORKLOADS, guest_dir, guest_seconds, median, run_guest, timed

ap = argparse.ArgumentParser()
ap.add_argument("--runs", type=int, default=3)
ap.add_argument("workloads", nargs="*", default=list(WORKLOADS))
args = ap.parse_args()
guest = guest_dir()
ratios = []
for name in args.workloads:
    t = {}
    for vmm in ("qemu", "rvisor"):
        xs = []
        for _ in range(args.runs):
            _, _, out = run_guest(vmm, guest, timed(WORKLOADS[name]))
            s = guest_seconds(out, "T")
            if s is None:
                raise SystemExit("%s: no timing in output:\n%s" % (vmm, out[-1500:]))
            xs.append(s)
        t[vmm] = median(xs)
    ratios.append(t["rvisor"] / t["qemu"])
    print("%-8s qemu %.2f s   rvisor %.2f s   ratio %.2fx" % (name, t["qemu"], t["rvisor"], t["rvisor"] / t["qemu"]))
geo = 1.0
for r in ratios:
    geo *= r
print("geometric mean of rvisor/qemu time: %.2fx" % geo ** (1.0 / len(ratios)))
