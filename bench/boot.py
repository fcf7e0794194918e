"""Boot benchmark: time to the guest's /init and to poweroff, rvisor vs QEMU."""
import argparse
import sys

from common import guest_dir, median, run_guest

ap = argparse.ArgumentParser()
ap.add_argument("--runs", type=int, default=5)
args = ap.parse_args()
guest = guest_dir()
res = {}
for vmm in ("qemu", "rvisor"):
    inits, exits = [], []
    for _ in range(args.runs):
        t_init, t_exit, _ = run_guest(vmm, guest, "true")
        inits.append(t_init)
        exits.append(t_exit)
    res[vmm] = (median(inits), median(exits))
    print("%-7s  to /init %.3f s   to poweroff %.3f s   (median of %d)" % (vmm, res[vmm][0], res[vmm][1], args.runs))
print("ratio rvisor/qemu: to /init %.2fx, to poweroff %.2fx"
      % (res["rvisor"][0] / res["qemu"][0], res["rvisor"][1] / res["qemu"][1]))
sys.exit(0)
