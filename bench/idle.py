"""Idle cost: host CPU used by a guest sitting at its shell prompt, rvisor
beside QEMU. Each guest boots with its console on a pipe that stays open,
gets a few seconds to settle, then its CPU time is read from /proc over a
measuring window."""
import argparse
import os
import subprocess
import time

from common import QEMU, RVISOR, cpu_seconds, guest_dir


def idle_share(cmd, settle, window):
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(settle)
        c0, t0 = cpu_seconds(p.pid), time.monotonic()
        time.sleep(window)
        c1, t1 = cpu_seconds(p.pid), time.monotonic()
        return (c1 - c0) / (t1 - t0)
    finally:
        p.kill()
        p.wait()


ap = argparse.ArgumentParser()
ap.add_argument("--settle", type=float, default=6)
ap.add_argument("--window", type=float, default=10)
args = ap.parse_args()
g = guest_dir()
k, i = os.path.join(g, "Image"), os.path.join(g, "initrd.gz")
append = "console=ttyS0 quiet"
cmds = {
    "qemu": [QEMU, "-M", "virt", "-m", "256M", "-smp", "1", "-nographic", "-no-reboot", "-kernel", k, "-initrd", i,
             "-append", append],
    "rvisor": [RVISOR, "run", "--kernel", k, "--initrd", i, "--append", append, "--mem", "256M"],
}
share = {name: idle_share(cmd, args.settle, args.window) for name, cmd in cmds.items()}
for name, s in share.items():
    print("%-7s idle guest uses %.2f%% of a host core" % (name, 100 * s))
if share["qemu"] > 0:
    print("ratio rvisor/qemu: %.2fx" % (share["rvisor"] / share["qemu"]))
