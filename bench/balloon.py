"""virtio-balloon side by side: one 256 MiB guest under `rvisor serve` and
under qemu-system-riscv64 (-device virtio-balloon-device with free page
reporting). The guest dirties 180 MiB of anonymous memory and frees it (free
page reporting off, so only the balloon can give it back); the host then
sets the balloon to 128M and times the inflation; memory held by the VM is
measured before and after (rvisor: machine memory backed; QEMU: the
process's resident memory). Then the balloon deflates, reporting is
switched back on, the guest writes and deletes a 100 MiB tmpfs file, and the
time until the host gets the memory back is measured."""
import json
import os
import socket
import subprocess
import tempfile
import time

from common import QEMU, RVISOR, guest_dir
from monitor import Api, rss_bytes, start_serve

MiB = 1 << 20
ORDER = "/sys/module/page_reporting/parameters/page_reporting_order"
SCRIPT = ("echo 11 > %s; dd if=/dev/zero of=/dev/null bs=180M count=1 2>/dev/null; echo DIRTIED; sleep 30; "
          "echo 10 > %s; dd if=/dev/zero of=/tmp/f bs=1M count=100 2>/dev/null; rm /tmp/f; echo FREED; sleep 30"
          % (ORDER, ORDER))
APPEND = 'console=ttyS0 quiet rvisor_run="%s"' % SCRIPT


def poll(cond, timeout):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        v = cond()
        if v:
            return time.monotonic() - t0, v
        time.sleep(0.02)
    raise RuntimeError("timed out")


class Console:
    """Reads a guest's console (a socket or a pipe) until a marker."""

    def __init__(self, read):
        self.read, self.buf = read, b""

    def wait(self, marker, timeout=300):
        t0 = time.monotonic()
        while marker not in self.buf:
            if time.monotonic() - t0 > timeout:
                raise RuntimeError("no %r in:\n%s" % (marker, self.buf[-2000:].decode(errors="replace")))
            self.buf += self.read()


def measure(held, set_target, actual, con):
    """The same steps for both VMMs; held() is the VM's host memory."""
    con.wait(b"DIRTIED")
    time.sleep(0.5)
    before = held()
    set_target(128 * MiB)
    inflate, _ = poll(lambda: actual() == 128 * MiB, 120)
    time.sleep(0.5)
    after = held()
    set_target(256 * MiB)
    poll(lambda: actual() == 256 * MiB, 120)
    base = held()
    con.wait(b"FREED")
    full = held()
    report, _ = poll(lambda: held() < full - 80 * MiB, 60)
    return before, after, inflate, full, held(), report, base


def rvisor(guest):
    serve, sock = start_serve()
    try:
        api = Api(sock)
        api(op="create", name="b", kernel=os.path.join(guest, "Image"), initrd=os.path.join(guest, "initrd.gz"),
            append=APPEND, mem="256M")
        api(op="start", name="b")
        s = socket.socket(socket.AF_UNIX)
        s.connect(sock)
        s.sendall(b'{"op":"console","name":"b"}\n')
        con = Console(lambda: s.recv(65536))
        return measure(lambda: api(op="stats", name="b")["mem_backed"],
                       lambda v: api(op="balloon", name="b", target=v),
                       lambda: api(op="stats", name="b")["balloon"]["actual"], con)
    finally:
        serve.terminate()
        serve.wait()


def qemu(guest):
    d = tempfile.mkdtemp()
    qmp_path = os.path.join(d, "qmp.sock")
    p = subprocess.Popen([QEMU, "-M", "virt", "-m", "256M", "-smp", "1", "-nographic", "-no-reboot",
                          "-kernel", os.path.join(guest, "Image"), "-initrd", os.path.join(guest, "initrd.gz"),
                          "-append", APPEND, "-device", "virtio-balloon-device,free-page-reporting=on",
                          "-qmp", "unix:%s,server=on,wait=off" % qmp_path],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        poll(lambda: os.path.exists(qmp_path), 20)
        q = socket.socket(socket.AF_UNIX)
        q.connect(qmp_path)
        f = q.makefile("rwb")
        f.readline()

        def qmp(cmd, **args):
            f.write((json.dumps({"execute": cmd, "arguments": args}) + "\n").encode())
            f.flush()
            while True:
                r = json.loads(f.readline())
                if "return" in r or "error" in r:
                    return r.get("return")

        qmp("qmp_capabilities")
        con = Console(lambda: os.read(p.stdout.fileno(), 65536))
        return measure(lambda: rss_bytes(p.pid), lambda v: qmp("balloon", value=v),
                       lambda: qmp("query-balloon")["actual"], con)
    finally:
        p.kill()
        p.wait()


def main():
    guest = guest_dir()
    rows = [("qemu", qemu(guest), "RSS"), ("rvisor", rvisor(guest), "backed")]
    print("256 MiB guest; 180 MiB dirtied and freed, balloon to 128M; then a 100 MiB tmpfs file written and removed")
    for name, (before, after, inflate, full, reported, report, base), what in rows:
        print("%-7s inflate %5.2f s: %4.0f -> %4.0f MiB (%s), -%3.0f MiB | reporting %4.1f s: %4.0f -> %4.0f MiB"
              % (name, inflate, before / MiB, after / MiB, what, (before - after) / MiB, report, full / MiB,
                 reported / MiB))


if __name__ == "__main__":
    main()
