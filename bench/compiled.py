"""Compiled CPU benchmark: programs built from Debian 12 source packages
(bench/build_cpu_progs.sh: bzip2, xz, zstd, static for riscv64, -O2) run in
the default guest under QEMU TCG and under rvisor, side by side.

One read-only ext2 disk (mke2fs -d) carries the programs, the input (the
upstream tarballs of bzip2, xz-utils, zstd and lz4, unpacked: C source, text
and test files) and the script the guest runs. The guest copies everything
into tmpfs first, then times each workload itself from /proc/uptime, so
neither boot nor disk reads count. Each compressor compresses a prefix of
the input once and decompresses the result a few times. The guest checks
the round trip with cmp; the host checks that every run under every VMM
produced the same compressed bytes (md5) and that the decompressed md5 is
the input's. The host also times the whole workload span from the console
and warns if the guest's clock disagrees with it, and reads the VMM
process's CPU time (user + system, all threads, /proc/PID/stat) when each
workload starts and ends: a second measure, less moved by other load on
the host than the guest's wall-clock time.

Runs alternate between the VMMs (qemu, rvisor, qemu, rvisor, ...) so slow
phases of a busy host hit both; each figure is the median of --runs.
Ratio = QEMU time / rvisor time, i.e. rvisor's speed relative to QEMU's.

Usage: python3 bench/compiled.py [--runs 3] [--interp] [-v] [bzip2 xz zstd]
(--interp adds rvisor --engine interp; -v prints every run). Needs what
scripts/setup.sh installs (riscv64 cross compiler, e2fsprogs, QEMU);
bench/build_cpu_progs.sh fetches the sources on its first run."""
import argparse
import hashlib
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

from common import ROOT, command_line, cpu_seconds, guest_dir, median

MIB = 1 << 20
# name -> (program, compress options, decompress options, input bytes, decompress repeats)
PROGRAMS = {
    "bzip2": ("bzip2", "-9", "-d", 3 * MIB, 4),
    "xz": ("xz", "-6 -T1", "-d -T1", 3 * MIB, 12),
    "zstd": ("zstd", "-q -15", "-q -d", 3 * MIB, 20),
}

ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
ap.add_argument("--runs", type=int, default=3)
ap.add_argument("--interp", action="store_true", help="also run rvisor --engine interp")
ap.add_argument("--mem", default="512M", help="guest RAM for every VMM (default 512M)")
ap.add_argument("--scale", type=float, default=1.0, help="multiply every input size by this")
ap.add_argument("--timeout", type=int, default=1800)
ap.add_argument("--retries", type=int, default=1,
                help="runs again a VMM process that a signal from outside ended (default 1)")
ap.add_argument("-v", "--verbose", action="store_true", help="print each run's times")
ap.add_argument("programs", nargs="*", default=list(PROGRAMS), help=", ".join(PROGRAMS))
args = ap.parse_args()
for _p in args.programs:
    if _p not in PROGRAMS:
        ap.error("unknown program %s (known: %s)" % (_p, ", ".join(PROGRAMS)))


def guest_script(progs):
    """The guest's /mnt/run.sh (busybox ash)."""
    lines = [
        "set -e",
        "now() { read u i < /proc/uptime; echo $u; }",
        "timed() { n=$1; r=$2; f=$3; echo START $n; s=$(now); i=0; while [ $i -lt $r ]; do $f; i=$((i+1)); done; e=$(now);"
        " echo \"TIME $n $(awk -v a=$s -v b=$e 'BEGIN{printf \"%.2f\", b-a}')\"; }",
        "sum() { md5sum $1 | cut -d' ' -f1; }",
        "cp /mnt/bin/* /mnt/corpus.tar /tmp/",
        "cd /tmp",
        "echo BENCH-BEGIN $(now)",
    ]
    for name in progs:
        prog, copt, dopt, size, reps = PROGRAMS[name]
        lines += [
            "head -c %d corpus.tar > in" % size,
            "c_%s() { ./%s %s -c in > z; }" % (name, prog, copt),
            "d_%s() { ./%s %s -c z > out; }" % (name, prog, dopt),
            "timed %s-compress 1 c_%s" % (name, name),
            "echo \"SUM %s-compress $(sum z) $(wc -c < z)\"" % name,
            "timed %s-decompress %d d_%s" % (name, reps, name),
            "cmp in out",
            "echo \"SUM %s-decompress $(sum out) $(wc -c < out)\"" % name,
            "rm -f in z out",
        ]
    lines.append("echo BENCH-END $(now)")
    return "\n".join(lines) + "\n"


def make_image(work, progs_dir, progs):
    root = os.path.join(work, "root")
    os.makedirs(os.path.join(root, "bin"))
    for name in progs:
        shutil.copy(os.path.join(progs_dir, "bin", PROGRAMS[name][0]), os.path.join(root, "bin"))
    shutil.copy(os.path.join(progs_dir, "corpus.tar"), root)
    with open(os.path.join(root, "run.sh"), "w") as f:
        f.write(guest_script(progs))
    used = sum(os.path.getsize(os.path.join(d, n)) for d, _, ns in os.walk(root) for n in ns)
    img = os.path.join(work, "progs.img")
    subprocess.run(["mke2fs", "-q", "-F", "-t", "ext2", "-m", "0", "-d", root, img,
                    "%dk" % (used // 1024 + 8192)], check=True, stdout=subprocess.DEVNULL)
    return img


def vmm_command(vmm, guest, img):
    run = "mount -t ext2 -o ro /dev/vda /mnt && sh /mnt/run.sh"
    if vmm == "qemu":
        return command_line("qemu", guest, run, mem=args.mem) + [
            "-global", "virtio-mmio.force-legacy=false",
            "-drive", "file=%s,format=raw,if=none,id=d0,readonly=on" % img, "-device", "virtio-blk-device,drive=d0"]
    cmd = command_line("rvisor", guest, run, mem=args.mem) + ["--drive", "file=%s,readonly=on" % img]
    if vmm == "rvisor-interp":
        cmd += ["--engine", "interp"]
    return cmd


class Killed(RuntimeError):
    pass


def run_once(vmm, guest, img):
    """Boots one guest through all workloads. Returns ({workload: guest
    seconds}, {workload: host CPU seconds of the VMM process}, {workload:
    (md5, bytes)}, (guest, host) seconds from BENCH-BEGIN to BENCH-END)."""
    start = time.monotonic()
    p = subprocess.Popen(vmm_command(vmm, guest, img), stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out, pending, t_begin, t_end = b"", b"", None, None
    cpu_start, cpu = {}, {}
    fd = p.stdout.fileno()
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        now = time.monotonic()
        out += chunk
        pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            m = re.match(rb"(START|TIME|BENCH-BEGIN|BENCH-END) ?(\S*)", line.strip())
            if not m:
                continue
            if m.group(1) == b"BENCH-BEGIN":
                t_begin = now
            elif m.group(1) == b"BENCH-END":
                t_end = now
            elif m.group(1) == b"START":
                cpu_start[m.group(2).decode()] = cpu_seconds(p.pid)
            else:
                cpu[m.group(2).decode()] = cpu_seconds(p.pid) - cpu_start[m.group(2).decode()]
        if now - start > args.timeout:
            p.kill()
            raise RuntimeError("%s timed out" % vmm)
    p.wait()
    text = out.decode(errors="replace")
    if t_end is None or t_begin is None:
        if p.returncode < 0:
            raise Killed("%s ended by signal %d" % (vmm, -p.returncode))
        raise RuntimeError("%s failed (exit %d):\n%s" % (vmm, p.returncode, text[-3000:]))
    m = re.search(r"BENCH-BEGIN ([0-9.]+).*BENCH-END ([0-9.]+)", text, re.S)
    guest_span = float(m.group(2)) - float(m.group(1))
    times = {m.group(1): float(m.group(2)) for m in re.finditer(r"TIME (\S+) ([0-9.]+)", text)}
    sums = {m.group(1): (m.group(2), int(m.group(3))) for m in re.finditer(r"SUM (\S+) ([0-9a-f]{32}) (\d+)", text)}
    return times, cpu, sums, (guest_span, t_end - t_begin)


def geomean(xs):
    return math.exp(sum(math.log(x) for x in xs) / len(xs))


def main():
    for name in PROGRAMS:
        p = PROGRAMS[name]
        PROGRAMS[name] = (p[0], p[1], p[2], int(p[3] * args.scale), p[4])
    progs_dir = subprocess.run(["bash", os.path.join(ROOT, "bench", "build_cpu_progs.sh")], check=True,
                               capture_output=True, text=True).stdout.strip().splitlines()[-1]
    with open(os.path.join(progs_dir, "VERSIONS")) as f:
        print("programs: " + "; ".join(l.strip() for l in f if l.strip()), flush=True)
    guest = guest_dir()
    with open(os.path.join(progs_dir, "corpus.tar"), "rb") as f:
        corpus = f.read()
    expect = {}
    for name in args.programs:
        size = PROGRAMS[name][3]
        expect[name + "-decompress"] = (hashlib.md5(corpus[:size]).hexdigest(), size)
    workloads = [n + s for n in args.programs for s in ("-compress", "-decompress")]
    vmms = ["qemu", "rvisor"] + (["rvisor-interp"] if args.interp else [])

    work = tempfile.mkdtemp(prefix="rvisor-bench-compiled-")
    try:
        img = make_image(work, progs_dir, args.programs)
        times = {v: {w: [] for w in workloads} for v in vmms}
        cpus = {v: {w: [] for w in workloads} for v in vmms}
        sums = {}
        for r in range(args.runs):
            for vmm in vmms:
                for attempt in range(args.retries + 1):
                    try:
                        t, c, s, (guest_span, host_span) = run_once(vmm, guest, img)
                        break
                    except Killed as e:
                        if attempt == args.retries:
                            raise
                        print("note: run %d: %s; running it again" % (r + 1, e), flush=True)
                for w in workloads:
                    if w not in t or w not in c or w not in s:
                        raise SystemExit("%s: no result for %s" % (vmm, w))
                    times[vmm][w].append(t[w])
                    cpus[vmm][w].append(c[w])
                    if w in expect and s[w] != expect[w]:
                        raise SystemExit("%s: %s output %s differs from the input %s" % (vmm, w, s[w], expect[w]))
                    if sums.setdefault(w, (s[w], vmm))[0] != s[w]:
                        raise SystemExit("%s: %s output %s differs from %s's %s" % (vmm, w, s[w], sums[w][1], sums[w][0]))
                if args.verbose:
                    print("  run %d %-13s " % (r + 1, vmm) + " ".join("%s %.2f (cpu %.2f)" % (w, t[w], c[w]) for w in workloads)
                          + "  (whole span: guest clock %.2f s, host %.2f s)" % (guest_span, host_span), flush=True)
                # The guest's clock must keep up with the host's, or its timings flatter the VMM.
                if abs(guest_span - host_span) > 0.5 + 0.02 * host_span:
                    print("warning: %s run %d: the guest's clock measured %.2f s where the host's measured %.2f s"
                          % (vmm, r + 1, guest_span, host_span), flush=True)
        others = vmms[1:]
        for title, data in (("time inside the guest", times), ("host CPU time of the VMM process", cpus)):
            print("\n%s, seconds (median of %d)" % (title, args.runs))
            print("%-17s %-16s" % ("workload", "input") + "".join("%14s" % v for v in vmms)
                  + "".join("%14s" % ("qemu/" + v.replace("rvisor-", "")) for v in others))
            ratios = {v: [] for v in others}
            for w in workloads:
                name = w.rsplit("-", 1)[0]
                prog, copt, dopt, size, reps = PROGRAMS[name]
                if w.endswith("-compress"):
                    what = "%.1f MiB %s" % (size / MIB, copt.replace("-q ", ""))
                else:
                    what = "%d x %.1f MiB" % (reps, size / MIB)
                med = {v: median(data[v][w]) for v in vmms}
                for v in others:
                    ratios[v].append(med["qemu"] / med[v])
                print("%-17s %-16s" % (w, what) + "".join("%14.2f" % med[v] for v in vmms)
                      + "".join("%13.2fx" % ratios[v][-1] for v in others))
            print("%-17s %-16s" % ("geometric mean", "") + " " * 14 * len(vmms)
                  + "".join("%13.2fx" % geomean(ratios[v]) for v in others))
        print("\nratio = QEMU's / rvisor's, i.e. rvisor's speed relative to QEMU's (>1: rvisor is faster); "
              "outputs identical in every run")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


sys.exit(main())
