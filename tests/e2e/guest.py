"""Drive rvisor on a pseudo-terminal, as a person at a terminal would."""
import os
import pty
import re
import select
import signal
import time

PROMPT = re.compile(rb"rvisor:[^\r\n]*# ")


class Guest:
    def __init__(self, rvisor, args, timeout=120):
        self.output = b""
        self.timeout = timeout
        pid, fd = pty.fork()
        if pid == 0:
            os.execv(rvisor, [rvisor, "run"] + args)
        self.pid, self.fd = pid, fd
        self.status = None

    def read_until(self, pattern, timeout=None):
        """Waits for a regex (bytes) in the output after the last match; returns the match."""
        deadline = time.monotonic() + (timeout or self.timeout)
        if isinstance(pattern, str):
            pattern = re.escape(pattern.encode())
        if isinstance(pattern, bytes):
            pattern = re.compile(pattern)
        start = getattr(self, "_pos", 0)
        while True:
            m = pattern.search(self.output, start)
            if m:
                self._pos = m.end()
                return m
            left = deadline - time.monotonic()
            if left <= 0 or not self._read(left):
                raise AssertionError(
                    "timed out waiting for %r; last output:\n%s"
                    % (pattern.pattern, self.output[-2000:].decode(errors="replace")))

    def _read(self, timeout):
        r, _, _ = select.select([self.fd], [], [], min(timeout, 1.0))
        if not r:
            return True
        try:
            data = os.read(self.fd, 65536)
        except OSError:
            return False
        if not data:
            return False
        self.output += data
        return True

    def send(self, text):
        data = memoryview(text.encode() if isinstance(text, str) else text)
        while data:  # a terminal takes a long paste in pieces
            data = data[os.write(self.fd, data):]

    def command(self, cmd, timeout=None):
        """Types a shell command, returns what it printed (without the echo)."""
        self.send(cmd + "\n")
        echo = self.read_until(re.escape(cmd.encode()) + rb"\r*\n", timeout)
        m = self.read_until(PROMPT, timeout)
        return self.output[echo.end():m.start()].decode(errors="replace").replace("\r", "")

    def wait(self, timeout=60):
        """Waits for rvisor to exit; returns its exit status."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self._drain()
                self.status = os.waitstatus_to_exitcode(status)
                return self.status
            self._read(0.2)
        self.kill()
        raise AssertionError("rvisor did not exit within %ds" % timeout)

    def _drain(self):
        while self._read(0.05):
            r, _, _ = select.select([self.fd], [], [], 0)
            if not r:
                break

    def kill(self):
        try:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass

    def close(self):
        if self.status is None:
            self.kill()
        os.close(self.fd)
