"""Parallel guests: the same CPU-bound work split over N busy processes in
an N-hart guest, rvisor beside QEMU (MTTCG), for N = 1 and N = 2. Timed by
the guest (/proc/uptime); the speedup is the 1-hart time over the N-hart
time for the same total work."""
import argparse

from common import guest_dir, guest_seconds, median, run_guest


def workload(procs, total):
    each = total // procs
    loop = "(i=0; while [ $i -lt %d ]; do i=$((i+1)); done) &" % each
    return ("read a b < /proc/uptime; for k in $(seq %d); do %s done; wait; read c d < /proc/uptime; "
            "echo T $(awk -v a=$a -v c=$c 'BEGIN{print c-a}')" % (procs, loop))


ap = argparse.ArgumentParser()
ap.add_argument("--runs", type=int, default=3)
ap.add_argument("--iterations", type=int, default=200000, help="sh loop iterations in total")
ap.add_argument("--cpus", type=int, default=2)
args = ap.parse_args()
guest = guest_dir()
t = {}
for vmm in ("qemu", "rvisor"):
    for n in (1, args.cpus):
        xs = []
        for _ in range(args.runs):
            _, _, out = run_guest(vmm, guest, workload(n, args.iterations), cpus=n)
            s = guest_seconds(out, "T")
            if s is None:
                raise SystemExit("%s: no timing in output:\n%s" % (vmm, out[-1500:]))
            xs.append(s)
        t[vmm, n] = median(xs)
for n in (1, args.cpus):
    print("%d hart(s), %d process(es): qemu %.2f s   rvisor %.2f s   ratio %.2fx"
          % (n, n, t["qemu", n], t["rvisor", n], t["rvisor", n] / t["qemu", n]))
for vmm in ("qemu", "rvisor"):
    print("%-7s speedup with %d harts: %.2fx" % (vmm, args.cpus, t[vmm, 1] / t[vmm, args.cpus]))
