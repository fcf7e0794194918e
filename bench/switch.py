"""Cost of a machine switch: guest instructions per second of busy VMs under
one `rvisor serve --workers 1`, with 1 VM (no switches) and with N VMs
taking 4 ms turns (a switch per turn: the worker saves nothing — each hart's
state lives in its own struct — but picks the next hart, accounts CPU time,
and the new VM runs with its own software TLB and code cache). The drop in
total throughput, divided by the number of switches, is the cost of one.
QEMU has no equivalent (its guests are separate processes), so this
benchmark reports rvisor alone."""
import argparse
import os
import time

from common import guest_dir
from monitor import Api, console_until, start_serve

TURN_S = 0.004  # TURN_NS in src/monitor/monitor.c


def throughput(n, guest, window):
    serve, sock = start_serve("--workers", "1")
    try:
        api = Api(sock)
        for i in range(n):
            api(op="create", name="vm%d" % i, kernel=os.path.join(guest, "Image"),
                initrd=os.path.join(guest, "initrd.gz"), mem="256M",
                append='console=ttyS0 quiet rvisor_run="echo spinning; while true; do :; done"')
            api(op="start", name="vm%d" % i)
        for i in range(n):
            console_until(sock, "vm%d" % i, b"spinning", time.monotonic() + 300)
        i0 = sum(v["instructions"] for v in api(op="list")["vms"])
        t0 = time.monotonic()
        time.sleep(window)
        i1 = sum(v["instructions"] for v in api(op="list")["vms"])
        return (i1 - i0) / (time.monotonic() - t0)
    finally:
        serve.terminate()
        serve.wait()


ap = argparse.ArgumentParser()
ap.add_argument("--vms", type=int, default=8)
ap.add_argument("--window", type=float, default=10)
args = ap.parse_args()
g = guest_dir()
one = throughput(1, g, args.window)
many = throughput(args.vms, g, args.window)
switches_per_s = 1 / TURN_S
cost_us = max(0.0, (1 - many / one)) / switches_per_s * 1e6
print("1 busy VM on 1 worker:  %.1f M guest instructions/s" % (one / 1e6))
print("%d busy VMs on 1 worker: %.1f M guest instructions/s in total (%.3fx)" % (args.vms, many / 1e6, many / one))
print("about %d machine switches/s: %.1f us per switch" % (switches_per_s, cost_us))
