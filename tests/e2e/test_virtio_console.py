"""End-to-end: the guest's console on virtio-console (hvc0) instead of the UART,
both ways: output, typing at a terminal, a large paste that must arrive
intact, and the same through the monitor's console stream."""
import hashlib
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from guest import Guest  # noqa: E402
import test_monitor_api as api  # noqa: E402


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

    def test_typed_commands_reach_the_shell(self):
        g = Guest(RVISOR, KERNEL + ["--console", "virtio"])
        try:
            g.read_until(api.PROMPT)
            # The quotes make the echo differ from the command's own output.
            self.assertIn("typed-on-hvc0", g.command('echo typed-"on"-hvc0'))
            self.assertEqual(g.command("cat /sys/class/tty/console/active").strip(), "hvc0")
            self.assertEqual(g.command("tty").strip(), "/dev/hvc0")
            g.send("poweroff -f\n")
            self.assertEqual(g.wait(), 0)
        finally:
            g.close()

    def test_pasted_data_arrives_intact(self):
        # 170 KB of text, far more than the device's input buffer and the
        # guest's receive buffers hold at once: nothing may be lost or reordered.
        data = b"".join(b"%05d " % i + b"abcdefghijklmnopqrstuvwxyz" * 3 + b"\n" for i in range(2000))
        g = Guest(RVISOR, KERNEL + ["--console", "virtio"])
        try:
            g.read_until("rvisor:/# ")
            g.send("stty -echo; head -c %d > /tmp/paste; md5sum /tmp/paste; echo paste-\"\"done\n" % len(data))
            time.sleep(0.5)
            g.send(data)
            m = g.read_until(rb"([0-9a-f]{32})  /tmp/paste")
            self.assertEqual(m.group(1).decode(), hashlib.md5(data).hexdigest())
            g.read_until("paste-done")
        finally:
            g.close()

    def test_monitor_console_stream_reaches_hvc0(self):
        mon = api.Monitor()
        con = None
        try:
            r = mon.request(op="create", name="hvc", kernel=api.KERNEL, initrd=api.INITRD, console="virtio")
            self.assertTrue(r["ok"], r)
            self.assertTrue(mon.request(op="start", name="hvc")["ok"])
            con = api.SocketConsole(mon, "hvc")
            api.wait_for_shell(con)
            self.assertIn("through-the-monitor", con.command('echo through-"the"-monitor'))
            self.assertEqual(con.command("tty").strip(), "/dev/hvc0")
        finally:
            if con:
                con.close()
            self.assertEqual(mon.stop(), 0, mon.output())
            mon.close()

    def test_bad_console_option(self):
        r = subprocess.run([RVISOR, "run"] + KERNEL + ["--console", "vga"], capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"--console must be 'uart' or 'virtio'", r.stderr)


if __name__ == "__main__":
    unittest.main()
