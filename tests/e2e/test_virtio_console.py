"""End-to-end: the guest's console on virtio-console (hvc0) instead of the UART."""
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from guest import Guest, PROMPT  # noqa: E402

RVISOR = os.environ.get("RVISOR", "build/rvisor")
GUEST = os.environ.get("RVISOR_GUEST", os.path.expanduser("~/.cache/rvisor/default"))
KERNEL = ["--kernel", os.path.join(GUEST, "Image"), "--initrd", os.path.join(GUEST, "initrd.gz")]


class VirtioConsole(unittest.TestCase):
    def test_interactive_shell_on_hvc0(self):
        # No --append: --console virtio makes the default command line console=hvc0.
        g = Guest(RVISOR, KERNEL + ["--console", "virtio"])
        try:
            g.read_until("rvisor-guest: init reached")
            g.send("echo rvisor-$((40 + 2))\n")
            g.read_until(rb"\nrvisor-42\r*\n")
            g.read_until(PROMPT)
            self.assertEqual(g.command("cat /sys/class/tty/console/active").strip(), "hvc0")
            self.assertEqual(g.command("cat /sys/bus/virtio/devices/*/device | grep -c 0x0003").strip(), "1")
            # A line longer than one receive buffer and the UART's FIFO arrives whole.
            # (The shell's line editor wraps the echo, so look for the answer only.)
            g.send("echo %s | wc -c\n" % ("x" * 300))
            g.read_until(rb"\n *301\r*\n")
            g.read_until(PROMPT)
            g.send("poweroff -f\n")
            self.assertEqual(g.wait(), 0)
        finally:
            g.kill()

    def test_kernel_log_goes_to_hvc0(self):
        r = subprocess.run([RVISOR, "run"] + KERNEL + ["--console", "virtio", "--append",
                           'console=hvc0 rvisor_run="echo from-the-guest"'],
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
        out = r.stdout.decode(errors="replace")
        self.assertEqual(r.returncode, 0, out[-2000:])
        self.assertIn("Run /init as init process", out)  # printk reached the host through hvc0
        self.assertIn("from-the-guest", out)

    def test_bad_console_option(self):
        r = subprocess.run([RVISOR, "run"] + KERNEL + ["--console", "vga"], capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"--console must be 'uart' or 'virtio'", r.stderr)


if __name__ == "__main__":
    unittest.main()
