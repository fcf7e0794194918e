"""End-to-end: the binary translator (`--engine jit`) against the programs
that are hardest on one, every test under both engines (the interpreter,
`--engine interp`, is the reference).

The guest programs are in progs/ (smc.c, atomics.c, fpu.c, hostile.c,
mmio_fetch.S); progs/build.py cross-compiles them (static riscv64) onto a
small ext2 image that the guest mounts read-only from /dev/vda, and builds
smc.c, fpu.c and hostile.c for the host too, where they print the checksums
the guest must print (the expected values never come from rvisor itself). Each
program checks its own results and ends with "<name> <mode>: PASS" or FAIL.

  - self-modifying code on one hart: functions rewritten in place (new
    constants, lengths and 2-byte offsets), a hot loop patched one word at a
    time, a W^X double mapping, compressed/uncompressed boundaries moving, an
    instruction straddling two pages rewritten half by half, remapping and
    mprotect, copy-on-write after fork;
  - across harts: a writer publishes new code with riscv_flush_icache and a
    release store, readers pinned to other harts run it; once with the
    readers waiting, once with them running the code in a tight loop while
    it is rewritten;
  - atomics on 4 harts: AMOs, LR/SC loops, an amoswap spin lock, release/
    acquire message passing, Peterson's lock: exact counts;
  - floating-point registers kept across context switches and signal
    handlers (the kernel saves them only when sstatus.FS says dirty);
  - hostile code: a loop patching its own body, code rewritten without
    synchronisation under a reader on another hart, jumps to unmapped,
    kernel, non-canonical, non-executable and past-EOF addresses and faults
    in mid-block (signals handled in the guest, exact pc/address/registers),
    jumps into MMIO (bare metal, M and S mode), a fence.i/clear_cache flood,
    and lots of distinct generated code with --jit-cache 1M (results right,
    the buffer flushed many times, rvisor's RSS bounded).
"""
import contextlib
import importlib.util
import os
import re
import subprocess
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from guest import Guest, PROMPT  # noqa: E402


def _load_progs_build():
    """progs/build.py, under a name of its own (no __pycache__ in the tree)."""
    spec = importlib.util.spec_from_file_location("e2e_jit_progs_build", os.path.join(HERE, "progs", "build.py"))
    module = importlib.util.module_from_spec(spec)
    saved, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        spec.loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = saved
    return module


progs = _load_progs_build()

RVISOR = os.environ.get("RVISOR", "build/rvisor")
GUEST = os.environ.get("RVISOR_GUEST", os.path.expanduser("~/.cache/rvisor/default"))
KERNEL = os.path.join(GUEST, "Image")
INITRD = os.path.join(GUEST, "initrd.gz")
APPEND = "console=ttyS0 quiet"
# Both by default; RVISOR_E2E_ENGINES=jit (say) runs one.
ENGINES = tuple(os.environ.get("RVISOR_E2E_ENGINES", "jit,interp").split(","))


def wait_for_rvisor():
    """The build directory may be relinked by someone else right now."""
    for _ in range(60):
        if os.access(RVISOR, os.X_OK):
            return
        time.sleep(1)
    raise AssertionError("no rvisor binary at %s" % RVISOR)


def rss_mib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class RssPeak:
    """Samples a process's VmRSS every 0.1 s while in the with block."""

    def __init__(self, pid):
        self.pid, self.peak, self._stop = pid, rss_mib(pid), threading.Event()

    def _run(self):
        while not self._stop.wait(0.1):
            try:
                self.peak = max(self.peak, rss_mib(self.pid))
            except OSError:
                return

    def __enter__(self):
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def checks(out):
    return re.findall(r"^CHECK \S+ 0x[0-9a-f]+$", out, re.M)


def tail(g, n=3000):
    return g.output[-n:].decode(errors="replace")


@unittest.skipUnless(not progs.missing_tools(), "needs %s" % ", ".join(progs.missing_tools()))
class Translator(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.progs = progs.build()
        cls.models = {}

    def model(self, prog, *args):
        """The CHECK lines the host build of prog prints for these arguments."""
        key = (prog,) + args
        if key not in self.models:
            r = subprocess.run([self.progs[prog + "-model"], "model"] + list(args), capture_output=True, text=True,
                               timeout=120)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.models[key] = checks(r.stdout)
            self.assertTrue(self.models[key], r.stdout)
        return self.models[key]

    @contextlib.contextmanager
    def guest(self, engine, cpus=1, extra=()):
        """Boots the default guest with the programs' disk mounted on /mnt;
        powers it off at the end of the block (exit status 0 expected)."""
        wait_for_rvisor()
        args = ["--engine", engine, "--kernel", KERNEL, "--initrd", INITRD, "--append", APPEND, "--mem", "256M",
                "--cpus", str(cpus), "--drive", "file=%s,readonly=on" % self.progs["image"]] + list(extra)
        g = Guest(RVISOR, args, timeout=120)
        try:
            g.read_until("rvisor-guest: init reached")
            g.send("echo rvisor-$((40 + 2))\n")
            g.read_until(rb"\nrvisor-42\r*\n")
            g.read_until(PROMPT)
            out = g.command("mkdir -p /mnt && mount -t ext2 -o ro /dev/vda /mnt && echo mounted")
            self.assertIn("mounted", out)
            yield g
            g.send("poweroff -f\n")
            status = g.wait(120)
            self.assertEqual(status, 0, "rvisor's exit status; the end of its output:\n" + tail(g))
        finally:
            g.close()

    def run_prog(self, g, cmd, timeout=300):
        """Runs /mnt/<cmd> in the guest; returns (its output, its exit status)."""
        try:
            out = g.command("/mnt/%s; echo exit=$?" % cmd, timeout)
        except AssertionError as e:
            for _ in range(20):  # did rvisor die (its terminal closed)?
                pid, status = os.waitpid(g.pid, os.WNOHANG)
                if pid:
                    g.status = os.waitstatus_to_exitcode(status)
                    raise AssertionError("rvisor exited with status %d during '%s'; the end of its output:\n%s"
                                         % (g.status, cmd, tail(g))) from e
                time.sleep(0.1)
            raise
        m = re.search(r"exit=(\d+)\s*$", out)
        self.assertIsNotNone(m, out)
        return out[:m.start()], int(m.group(1))

    def assert_pass(self, out, rc, banner, want_checks=None):
        if banner + ": PASS" not in out or rc != 0:
            self.fail("no '%s: PASS' (exit status %d); the program printed:\n%s" % (banner, rc, out))
        if want_checks is not None:
            self.assertEqual(checks(out), want_checks, "checksums differ from the host's:\n" + out)

    # ---- self-modifying code ----

    def test_smc_one_hart(self):
        want = self.model("smc", "single")
        for engine in ENGINES:
            with self.subTest(engine=engine), self.guest(engine) as g:
                out, rc = self.run_prog(g, "smc single", 300)
                self.assert_pass(out, rc, "smc single", want)

    def test_smc_across_harts_published(self):
        # The readers wait for each publication: every round's new code must run.
        want = self.model("smc", "cross", "3", "300")
        for engine in ENGINES:
            with self.subTest(engine=engine), self.guest(engine, cpus=4) as g:
                out, rc = self.run_prog(g, "smc cross 3 300", 600)
                self.assert_pass(out, rc, "smc cross", want)

    def test_smc_across_harts_while_running(self):
        # The readers run the code while the writer rewrites it; after the
        # writer's flush and release they must run exactly the new code.
        for engine in ENGINES:
            with self.subTest(engine=engine), self.guest(engine, cpus=4) as g:
                for readers, rounds in (("1", "3000"), ("3", "300")):
                    with self.subTest(readers=readers):
                        out, rc = self.run_prog(g, "smc crosshot %s %s" % (readers, rounds), 600)
                        self.assert_pass(out, rc, "smc crosshot", self.model("smc", "crosshot", readers, rounds))

    # ---- atomics ----

    def test_atomics_four_harts(self):
        threads, iters, msgs, peterson = 4, 200000, 200000, 200000
        xor = 0
        for i in range(57):
            count = len(range(i, iters, 57))
            if count % 2:
                for t in range(threads):
                    xor ^= (t + 1) << i
        total = threads * iters
        want = {
            "amoadd.d": str(total),
            "amoadd.w": str(total % (1 << 32)),
            "amomax": str(max(t * iters + iters - 1 for t in range(threads) if t % 2 == 0)),
            "amominu": "7",
            "amoor": "0x%016x" % ((1 << 64) - 1),
            "amoxor": "0x%016x" % xor,
            "cas": str(total),
            "lrsc": str(total % (1 << 32)),
            "lock": "%d %d %d torn 0" % (total, total, total),
            "messages": "%d bad 0" % (threads // 2 * msgs),
            "peterson": str(2 * peterson),
        }
        for engine in ENGINES:
            with self.subTest(engine=engine), self.guest(engine, cpus=4) as g:
                out, rc = self.run_prog(g, "atomics %d %d %d %d" % (threads, iters, msgs, peterson), 600)
                self.assertEqual(rc, 0, out)
                got = dict(re.findall(r"^(amo\S+|cas|lrsc|lock|messages|peterson) (.*?)(?: \(.*\))?$", out, re.M))
                self.assertEqual(got, want, out)

    # ---- floating-point state ----

    def test_fp_state_across_context_switches_and_signals(self):
        # More processes than harts, all keeping values in f registers across
        # sched_yield and a 1 kHz signal whose handler uses floating point.
        want = self.model("fpu", "6", "500000")
        for engine in ENGINES:
            with self.subTest(engine=engine), self.guest(engine, cpus=2) as g:
                out, rc = self.run_prog(g, "fpu 6 500000", 600)
                self.assert_pass(out, rc, "fpu", want)

    # ---- hostile code ----

    def test_hostile_loop_patching_its_own_body(self):
        want = self.model("hostile", "loopwrite", "100000")
        for engine in ENGINES:
            with self.subTest(engine=engine), self.guest(engine) as g:
                out, rc = self.run_prog(g, "hostile loopwrite 100000", 300)
                self.assert_pass(out, rc, "hostile loopwrite", want)

    def test_hostile_code_rewritten_under_a_running_hart(self):
        # One hart flips an instruction between two versions (aligned 32-bit
        # stores, no synchronisation) until the other, running it in a tight
        # loop, has made a million calls: only the two versions may ever run.
        for engine in ENGINES:
            with self.subTest(engine=engine), self.guest(engine, cpus=2) as g:
                out, rc = self.run_prog(g, "hostile crosswrite 1000000", 300)
                self.assert_pass(out, rc, "hostile crosswrite")

    def test_hostile_bad_jumps_and_faults_in_blocks(self):
        cases = {}
        for engine in ENGINES:
            with self.subTest(engine=engine), self.guest(engine) as g:
                out, rc = self.run_prog(g, "hostile badjump 20", 300)
                self.assert_pass(out, rc, "hostile badjump")
                # Every case's signal, pc, address and a0, relative to the jump target.
                cases[engine] = [re.sub(r"addr=target[-+]\d+", "", c) if c.startswith("case load_fault") else c
                                 for c in re.findall(r"^case .*$", out, re.M)]
                self.assertEqual(len(cases[engine]), 16, out)
        if len(cases) == 2:
            self.assertEqual(cases["jit"], cases["interp"], "the engines differ")

    def test_hostile_jump_into_mmio_bare_metal(self):
        for engine in ENGINES:
            with self.subTest(engine=engine):
                wait_for_rvisor()
                r = subprocess.run([RVISOR, "run", "--engine", engine, "--mem", "256M", "--bios",
                                    self.progs["mmio_fetch"]], stdin=subprocess.DEVNULL, capture_output=True,
                                   text=True, timeout=120)
                self.assertEqual(r.returncode, 0,
                                 "mmio_fetch.S ('code N': its case N failed):\n" + r.stdout + r.stderr)

    def test_hostile_fence_i_flood(self):
        want = self.model("hostile", "fencei", "100000", "4")
        for engine in ENGINES:
            with self.subTest(engine=engine), self.guest(engine, cpus=4) as g:
                out, rc = self.run_prog(g, "hostile fencei 100000 4", 600)
                self.assert_pass(out, rc, "hostile fencei", want)

    def test_hostile_code_spray_fills_the_code_cache(self):
        # Two processes on two harts, 48 MiB of distinct code each: one
        # maps a fresh 1 MiB region every pass, one rewrites the same one.
        want = self.model("hostile", "spray", "48", "1024", "0")
        for engine in ENGINES:
            with self.subTest(engine=engine):
                with self.guest(engine, cpus=2, extra=("--jit-cache", "1M", "--stats")) as g:
                    g.command('S="/mnt/hostile spray 48 1024"')  # the shell's line editor wraps long lines
                    before = rss_mib(g.pid)
                    with RssPeak(g.pid) as rss:
                        out = g.command("$S 0 >/tmp/a & $S 1; echo exit=$?; wait $!; echo exit=$?", timeout=900)
                    out += g.command("cat /tmp/a")
                    self.assertEqual(out.count("hostile spray: PASS"), 2, out)
                    self.assertEqual(re.findall(r"^exit=(\d+)", out, re.M), ["0", "0"], out)
                    self.assertEqual(checks(out), want * 2, out)
                    self.assertLess(rss.peak - before, 64, "rvisor's RSS went from %.0f to %.0f MiB"
                                    % (before, rss.peak))
                if engine == "jit":
                    flushes = [int(n) for n in re.findall(rb"jit: .*?(\d+) flushes", g.output)]
                    self.assertEqual(len(flushes), 2, tail(g))
                    self.assertGreater(sum(flushes), 20, tail(g))

    def test_hostile_code_spray_over_fresh_memory_keeps_rss_bounded(self):
        # 64 MiB of code, each half in a fresh 32 MiB mapping, twice over.
        # The guest never has more than ~33 MiB of code mapped, and the code
        # buffer is 1 MiB: what rvisor keeps for the guest's code must stay
        # well below the guest's own 256 MiB, and the second, identical run
        # must not need more.
        want = self.model("hostile", "spray", "64", "32768", "1")
        for engine in ENGINES:
            with self.subTest(engine=engine):
                with self.guest(engine, extra=("--jit-cache", "1M", "--stats")) as g:
                    rss = [rss_mib(g.pid)]
                    for _ in range(2):
                        out, rc = self.run_prog(g, "hostile spray 64 32768 1", 600)
                        self.assert_pass(out, rc, "hostile spray", want)
                        rss.append(rss_mib(g.pid))
                    report = "rvisor's RSS before, after the first and after the second run: %s MiB" % (
                        ", ".join("%.0f" % r for r in rss))
                    self.assertLess(rss[1] - rss[0], 256, report)
                    self.assertLess(rss[2] - rss[1], 64, report)
                # The guest ran code from more frames than the map's budget
                # (4096 pages for 256 MiB): it was reset, and the RSS above held.
                resets = re.findall(rb"decoded code: \d+ code pages now, the map reset (\d+) times", g.output)
                self.assertEqual(len(resets), 1, tail(g))
                self.assertGreater(int(resets[0]), 0, tail(g))

if __name__ == "__main__":
    unittest.main()
