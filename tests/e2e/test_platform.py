"""End-to-end: the platform as a guest sees it — harts, memory, clock, and
booting through real M-mode firmware (Debian's OpenSBI)."""
import os
import re
import resource
import subprocess
import time
import unittest

RVISOR = os.environ.get("RVISOR", "build/rvisor")
GUEST = os.environ.get("RVISOR_GUEST", os.path.expanduser("~/.cache/rvisor/default"))
OPENSBI = "/usr/lib/riscv64-linux-gnu/opensbi/generic/fw_dynamic.bin"


def run(cmd, *extra, timeout=120):
    """Boots the default guest with /init running `cmd`; returns (exit status, output)."""
    args = [RVISOR, "run", "--kernel", os.path.join(GUEST, "Image"), "--initrd", os.path.join(GUEST, "initrd.gz"),
            "--append", 'console=ttyS0 quiet rvisor_run="%s"' % cmd] + list(extra)
    p = subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
    return p.returncode, (p.stdout + p.stderr).decode(errors="replace")


def host_busy_s():
    """CPU seconds every process on the host has used (from /proc/stat)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / os.sysconf("SC_CLK_TCK")


def children_cpu_s():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


class Platform(unittest.TestCase):
    @unittest.skipUnless(os.cpu_count() >= 2, "needs two host cores")
    def test_harts_use_several_host_cores(self):
        # Two busy harts: `rvisor run` gives each its own host thread, so the
        # process uses more than one core (measured only when the host had
        # both to give).
        loop = "(i=0; while [ $i -lt 40000 ]; do i=$((i+1)); done; echo busy$k=$i) &"
        cmd = "for k in 1 2; do %s done; wait" % loop
        c0, b0, t0 = children_cpu_s(), host_busy_s(), time.monotonic()
        status, out = run(cmd, "--cpus", "2")
        wall, cpu = time.monotonic() - t0, children_cpu_s() - c0
        others = (host_busy_s() - b0 - cpu) / wall
        self.assertEqual(status, 0, out)
        self.assertIn("busy1=40000", out)
        self.assertIn("busy2=40000", out)
        print("\n  2 busy harts: rvisor used %.2f host cores, other processes %.2f" % (cpu / wall, others))
        if others < 0.4:
            self.assertGreater(cpu / wall, 1.3, "rvisor used %.2f cores over %.1f s" % (cpu / wall, wall))

    def test_smp_four_harts_boot_and_share_work(self):
        status, out = run("grep -c ^processor /proc/cpuinfo; for k in 1 2 3 4; do "
                          "(i=0; while [ $i -lt 2000 ]; do i=$((i+1)); done; echo worker$k=$i) & done; wait",
                          "--cpus", "4")
        self.assertEqual(status, 0, out)
        self.assertRegex(out, r"\n4\r?\n")
        for k in range(1, 5):
            self.assertIn("worker%d=2000" % k, out)

    def test_memory_size_reaches_the_guest(self):
        status, out = run("grep MemTotal /proc/meminfo", "--mem", "512M")
        self.assertEqual(status, 0, out)
        kb = int(re.search(r"MemTotal:\s+(\d+) kB", out).group(1))
        self.assertGreater(kb, 480 * 1024)
        self.assertLess(kb, 512 * 1024)

    def test_rtc_and_timer_follow_host_time(self):
        status, out = run("date +%s; sleep 1; date +%s")
        self.assertEqual(status, 0, out)
        t0, t1 = [int(x) for x in re.findall(r"^(\d{10})\r?$", out, re.M)[:2]]
        self.assertLess(abs(t0 - time.time()), 30)
        self.assertIn(t1 - t0, (1, 2))

    def test_virtio_rng_feeds_the_guest_hwrng(self):
        status, out = run("cat /sys/class/misc/hw_random/rng_current; "
                          "for k in 1 2; do echo R$k $(head -c 16 /dev/hwrng | od -An -tx1 | tr -d ' '); done")
        self.assertEqual(status, 0, out)
        self.assertIn("virtio_rng.0", out)
        r1 = re.search(r"R1 ([0-9a-f]{32})", out).group(1)
        r2 = re.search(r"R2 ([0-9a-f]{32})", out).group(1)
        self.assertNotEqual(r1, r2)
        self.assertNotEqual(r1, "0" * 32)

    @unittest.skipUnless(os.path.exists(OPENSBI), "Debian's opensbi package is not installed")
    def test_boot_through_opensbi(self):
        status, out = run("uname -m", "--bios", OPENSBI)
        self.assertEqual(status, 0, out)
        self.assertIn("OpenSBI v", out)
        self.assertIn("riscv64", out)

    @unittest.skipUnless(os.path.exists(OPENSBI), "Debian's opensbi package is not installed")
    def test_boot_two_harts_through_opensbi(self):
        status, out = run("grep -c ^processor /proc/cpuinfo", "--bios", OPENSBI, "--cpus", "2")
        self.assertEqual(status, 0, out)
        self.assertRegex(out, r"\n2\r?\n")


if __name__ == "__main__":
    unittest.main()
