"""End-to-end: the guest's console on virtio-console (hvc0) instead of the UART."""
import os
import subprocess
import time
import unittest


RVISOR = os.environ.get("RVISOR", "build/rvisor")
GUEST = os.environ.get("RVISOR_GUEST", os.path.expanduser("~/.cache/rvisor/default"))
KERNEL = ["--kernel", os.path.join(GUEST, "Image"), "--initrd", os.path.join(GUEST, "initrd.gz")]


class VirtioConsole(unittest.TestCase):
    def test_kernel_log_goes_to_hvc0(self):
        r = subprocess.run([RVISOR, "run"] + KERNEL + ["--console", "virtio", "--append",
                           'console=hvc0 rvisor_run="cat /sys/class/tty/console/active; echo from-the-guest"'],
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
        out = r.stdout.decode(errors="replace")
        self.assertEqual(r.returncode, 0, out[-2000:])
        self.assertIn("Run /init as init process", out)  # printk reached the host through hvc0
        self.assertIn("from-the-guest", out)
        self.assertIn("\nhvc0", out.replace("\r", ""))

    def test_default_command_line_uses_hvc0(self):
        # Without --append, --console virtio boots with console=hvc0: the shell's prompt comes through it.
        p = subprocess.Popen([RVISOR, "run"] + KERNEL + ["--console", "virtio"], stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        out = b""
        deadline = time.monotonic() + 120
        try:
            while b"rvisor:/# " not in out and time.monotonic() < deadline:
                chunk = p.stdout.read1(4096)
                if not chunk:
                    break
                out += chunk
        finally:
            p.kill()
            p.wait()
        self.assertIn(b"rvisor-guest: init reached", out)
        self.assertIn(b"rvisor:/# ", out)

    def test_bad_console_option(self):
        r = subprocess.run([RVISOR, "run"] + KERNEL + ["--console", "vga"], capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"--console must be 'uart' or 'virtio'", r.stderr)


if __name__ == "__main__":
    unittest.main()
