"""End-to-end: boot the default guest to its shell on a terminal, use it, power it off."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from guest import Guest, PROMPT  # noqa: E402

RVISOR = os.environ.get("RVISOR", "build/rvisor")
GUEST = os.environ.get("RVISOR_GUEST", os.path.expanduser("~/.cache/rvisor/default"))


def start(append="console=ttyS0 quiet", cpus=1, mem="256M"):
    return Guest(RVISOR, ["--kernel", os.path.join(GUEST, "Image"), "--initrd", os.path.join(GUEST, "initrd.gz"),
                          "--append", append, "--mem", mem, "--cpus", str(cpus)])


def boot(**kw):
    g = start(**kw)
    g.read_until("rvisor-guest: init reached")
    # Wait for the output of a command (not its echo) and the prompt after
    # it, so that no typed line is still pending when the test begins.
    g.send("echo rvisor-$((40 + 2))\n")
    g.read_until(rb"\nrvisor-42\r*\n")
    g.read_until(PROMPT)
    return g


class BootShell(unittest.TestCase):
    def test_interactive_shell_and_poweroff(self):
        g = boot()
        try:
            self.assertEqual(g.command("uname -m").strip(), "riscv64")
            self.assertEqual(g.command("echo $((6 * 7 + 1000))").strip(), "1042")
            g.command("echo rvisor-was-here > /tmp/note && sync")
            self.assertEqual(g.command("cat /tmp/note").strip(), "rvisor-was-here")
            self.assertIn("tmpfs /tmp", g.command("cat /proc/mounts"))
            self.assertIn("MemTotal", g.command("head -1 /proc/meminfo"))
            g.send("poweroff -f\n")
            self.assertEqual(g.wait(), 0, "clean poweroff must exit 0")
        finally:
            g.close()

    def test_ctrl_a_x_quits(self):
        g = boot()
        try:
            g.send(b"\x01x")
            self.assertEqual(g.wait(), 6)
            self.assertIn(b"stopped by the user", g.output)
        finally:
            g.close()

    def test_reboot_exit_code(self):
        g = boot()
        try:
            g.send("reboot -f\n")
            self.assertEqual(g.wait(), 2)
        finally:
            g.close()

    def test_kernel_panic_exit_code(self):
        # An init that exits panics the kernel; pvpanic tells the monitor.
        g = start(append="console=ttyS0 rdinit=/bin/false")
        try:
            self.assertEqual(g.wait(), 3)
            self.assertIn(b"Kernel panic", g.output)
        finally:
            g.close()


if __name__ == "__main__":
    unittest.main()
