"""Builds the programs of tests/e2e/test_jit.py: the guest programs (static
riscv64 Linux binaries) on a small ext2 image the guest mounts, the same
sources built for the host (they print the values the guest must print),
and a bare-metal program for `rvisor run --bios`.

Everything goes to build/e2e-progs/<hash of the inputs>/ (or under
$RVISOR_E2E_BUILD), so a change to a source or to this script makes a new
build and an unchanged tree reuses the last one. Needs riscv64-linux-gnu-gcc,
gcc and mke2fs (scripts/setup.sh installs them).

    python3 tests/e2e/progs/build.py     # builds, prints the directory
"""
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
ISA = os.path.join(ROOT, "tests", "isa")

CROSS = os.environ.get("CROSS_COMPILE", "riscv64-linux-gnu-") + "gcc"
HOST_CC = os.environ.get("CC", "gcc")
GUEST_PROGS = ["smc", "atomics", "hostile", "fpu"]  # <name>.c -> guest binary <name>
HOST_MODELS = ["smc", "hostile", "fpu"]             # <name>.c -> host binary <name>-model
GUEST_CFLAGS = ["-static", "-O2", "-pthread", "-Wall", "-Wextra", "-ffp-contract=off"]
HOST_CFLAGS = ["-O2", "-pthread", "-Wall", "-Wno-unused-function", "-Wno-unused-variable", "-ffp-contract=off"]
BARE_CFLAGS = ["-march=rv64gc", "-mabi=lp64d", "-mcmodel=medany", "-fno-pic", "-no-pie", "-nostdlib",
               "-nostartfiles", "-static", "-Wl,--build-id=none", "-Wl,--no-warn-rwx-segments",
               "-T", os.path.join(ISA, "link.ld"), "-I", ISA]


def tool(name):
    for d in ("/usr/sbin", "/sbin"):
        if os.path.exists(os.path.join(d, name)):
            return os.path.join(d, name)
    return shutil.which(name)


def missing_tools():
    return [t for t in (CROSS, HOST_CC, "mke2fs") if not tool(t)]


def _inputs_hash():
    h = hashlib.sha256()
    files = sorted(f for f in os.listdir(HERE) if f.endswith((".c", ".h", ".S", ".py")))
    files = [os.path.join(HERE, f) for f in files] + [os.path.join(ISA, "common.h"), os.path.join(ISA, "vm.h"),
                                                       os.path.join(ISA, "link.ld")]
    for path in files:
        h.update(path.encode())
        with open(path, "rb") as f:
            h.update(f.read())
    for cc in (CROSS, HOST_CC):
        h.update(subprocess.run([cc, "--version"], capture_output=True).stdout)
    h.update(repr((GUEST_CFLAGS, HOST_CFLAGS, BARE_CFLAGS)).encode())
    return h.hexdigest()[:16]


def _cc(args):
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("build failed: %s\n%s" % (" ".join(args), r.stdout + r.stderr))


def build():
    """Builds what is missing; returns a dict of paths: 'dir', 'image' (ext2
    with the guest programs at its root), '<name>-model' per host model,
    'mmio_fetch' (bare-metal ELF)."""
    top = os.environ.get("RVISOR_E2E_BUILD", os.path.join(ROOT, "build", "e2e-progs"))
    out = os.path.join(top, _inputs_hash())
    paths = {"dir": out, "image": os.path.join(out, "progs.img"), "mmio_fetch": os.path.join(out, "mmio_fetch.elf")}
    for m in HOST_MODELS:
        paths[m + "-model"] = os.path.join(out, m + "-model")
    if os.path.exists(os.path.join(out, "done")):
        return paths
    os.makedirs(top, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="tmp-", dir=top)
    try:
        guest = os.path.join(tmp, "guest")
        os.mkdir(guest)
        for p in GUEST_PROGS:
            _cc([CROSS] + GUEST_CFLAGS + ["-o", os.path.join(guest, p), os.path.join(HERE, p + ".c"), "-lm"])
        for m in HOST_MODELS:
            _cc([HOST_CC] + HOST_CFLAGS + ["-o", os.path.join(tmp, m + "-model"), os.path.join(HERE, m + ".c"), "-lm"])
        _cc([CROSS] + BARE_CFLAGS + ["-o", os.path.join(tmp, "mmio_fetch.elf"), os.path.join(HERE, "mmio_fetch.S")])
        _cc([tool("mke2fs"), "-q", "-F", "-t", "ext2", "-d", guest, os.path.join(tmp, "progs.img"), "16M"])
        with open(os.path.join(tmp, "done"), "w"):
            pass
        os.chmod(tmp, 0o755)
        try:
            os.rename(tmp, out)
        except OSError:  # another run built it meanwhile
            if not os.path.exists(os.path.join(out, "done")):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    # Older builds of changed sources are of no further use.
    for d in os.listdir(top):
        if d != os.path.basename(out) and not d.startswith("tmp-"):
            shutil.rmtree(os.path.join(top, d), ignore_errors=True)
    return paths


if __name__ == "__main__":
    if missing_tools():
        sys.exit("missing: " + ", ".join(missing_tools()))
    print(build()["dir"])
