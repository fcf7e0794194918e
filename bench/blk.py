"""Disk benchmark: virtio-blk under rvisor vs QEMU, same kernel and initramfs.

Each guest gets a 256 MiB raw image (the disk under test) and a small second
image holding bench/blkio.c built static for riscv64; the guest copies the
tool out of that disk and runs it on the big one: sequential 1 MiB writes
and reads, then random 4 KiB reads and writes, all O_DIRECT at queue depth
one, timed inside the guest. Both VMMs back the disk with the host page
cache (QEMU's default cache=writeback; rvisor always) and honour flushes.
Needs riscv64-linux-gnu-gcc (in scripts/setup.sh's packages)."""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

from common import ROOT, command_line, guest_dir, median

ap = argparse.ArgumentParser()
ap.add_argument("--runs", type=int, default=3)
ap.add_argument("--seq-mib", type=int, default=128)
ap.add_argument("--ops", type=int, default=4000)
args = ap.parse_args()

DISK_MIB = 256
TOOL_MAX_SECTORS = 65536  # the tool disk is told apart from the big one by its size
METRICS = [("seq-write", "MB/s"), ("seq-read", "MB/s"), ("rand-read", "IOPS"), ("rand-write", "IOPS")]


def build_tool(work):
    exe = os.path.join(work, "blkio")
    subprocess.run(["riscv64-linux-gnu-gcc", "-O2", "-static", "-s", "-o", exe,
                    os.path.join(ROOT, "bench", "blkio.c")], check=True)
    img = os.path.join(work, "tool.img")
    shutil.copy(exe, img)
    size = os.path.getsize(img)
    with open(img, "r+b") as f:
        f.truncate((size + 511) // 512 * 512)
    assert os.path.getsize(img) // 512 < TOOL_MAX_SECTORS
    return img


def make_disk(path):
    with open(path, "wb") as f:
        for _ in range(DISK_MIB):
            f.write(os.urandom(1 << 20))


def drive_args(vmm, disk, tool):
    if vmm == "rvisor":
        return ["--drive", "file=" + disk, "--drive", "file=%s,readonly=on" % tool]
    # QEMU's virtio-mmio is legacy (version 1) unless told otherwise; rvisor's is modern.
    return ["-global", "virtio-mmio.force-legacy=false",
            "-drive", "file=%s,format=raw,if=none,id=d0" % disk, "-device", "virtio-blk-device,drive=d0",
            "-drive", "file=%s,format=raw,if=none,id=d1,readonly=on" % tool, "-device", "virtio-blk-device,drive=d1"]


# Runs as the guest's /init workload: no double quotes allowed.
WORKLOAD = ("for d in vda vdb; do if [ $(cat /sys/block/$d/size) -lt %d ]; then T=$d; else D=$d; fi; done; "
            "dd if=/dev/$T of=/tmp/blkio bs=4096 2>/dev/null; chmod +x /tmp/blkio; "
            "/tmp/blkio /dev/$D %d %d" % (TOOL_MAX_SECTORS, args.seq_mib, args.ops))


def run_once(vmm, guest, disk, tool):
    make_disk(disk)
    cmd = command_line(vmm, guest, WORKLOAD) + drive_args(vmm, disk, tool)
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=1800)
    out = p.stdout.decode(errors="replace")
    res = {}
    for name, unit in METRICS:
        m = re.search(r"%s ([0-9.]+) %s" % (name, re.escape(unit)), out)
        if not m:
            raise RuntimeError("%s: no %s figure (exit %d):\n%s" % (vmm, name, p.returncode, out[-2000:]))
        res[name] = float(m.group(1))
    return res


def main():
    guest = guest_dir()
    work = tempfile.mkdtemp(prefix="rvisor-bench-blk-")
    try:
        tool = build_tool(work)
        disk = os.path.join(work, "disk.img")
        results = {}
        for vmm in ("qemu", "rvisor"):
            runs = [run_once(vmm, guest, disk, tool) for _ in range(args.runs)]
            results[vmm] = {name: median([r[name] for r in runs]) for name, _ in METRICS}
            print("%-7s " % vmm + "   ".join("%s %.1f %s" % (n, results[vmm][n], u) for n, u in METRICS)
                  + "   (median of %d)" % args.runs, flush=True)
        print("ratio rvisor/qemu: " + ", ".join("%s %.2fx" % (n, results["rvisor"][n] / results["qemu"][n])
                                               for n, _ in METRICS))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


sys.exit(main())
