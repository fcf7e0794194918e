"""End-to-end: the virtio-net card with user-mode networking (libslirp) and
TAP, seen from both sides: the guest fetches from servers on the host, the
host fetches from a server in the guest through a port forward."""
import functools
import hashlib
import http.server
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from guest import Guest, PROMPT  # noqa: E402

RVISOR = os.environ.get("RVISOR", "build/rvisor")
GUEST = os.environ.get("RVISOR_GUEST", os.path.expanduser("~/.cache/rvisor/default"))
# Typed commands stay shorter than the guest terminal's 80 columns, where
# the echo would wrap.
DHCP = "udhcpc -i eth0 -q -n -t 5 >/dev/null 2>&1; echo dhcp-rc=$?"


def boot(*nets):
    args = ["--kernel", os.path.join(GUEST, "Image"), "--initrd", os.path.join(GUEST, "initrd.gz"),
            "--append", "console=ttyS0 quiet", "--mem", "256M"]
    for n in nets:
        args += ["--net", n]
    g = Guest(RVISOR, args)
    g.read_until("rvisor-guest: init reached")
    g.send("echo rvisor-$((40 + 2))\n")
    g.read_until(rb"\nrvisor-42\r*\n")
    g.read_until(PROMPT)
    return g


def dhcp(g):
    g.command("ip link set eth0 up")
    return g.command(DHCP, timeout=60)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class FileServer:
    """A static HTTP server on the host, in a thread, over a temporary directory."""

    def __init__(self, addr="127.0.0.1"):
        self.dir = tempfile.mkdtemp(prefix="rvisor-net-")
        handler = functools.partial(QuietHandler, directory=self.dir)
        self.httpd = http.server.ThreadingHTTPServer((addr, 0), handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def put(self, name, data):
        with open(os.path.join(self.dir, name), "wb") as f:
            f.write(data)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        shutil.rmtree(self.dir, ignore_errors=True)


class UserNet(unittest.TestCase):
    def setUp(self):
        self.server = FileServer()
        self.addCleanup(self.server.close)
        self.token = "rvisor-net-%d" % os.getpid()
        self.server.put("file", (self.token + "\n").encode())
        self.big = os.urandom(1 << 20)
        self.server.put("big", self.big)

    def test_dhcp_dns_and_fetch_from_host(self):
        g = boot("user,mac=52:54:00:aa:bb:01")
        try:
            self.assertIn("dhcp-rc=0", dhcp(g))
            self.assertIn("10.0.2.15/24", g.command("ip addr show eth0"))
            self.assertEqual(g.command("cat /sys/class/net/eth0/address").strip(), "52:54:00:aa:bb:01")
            self.assertIn("default via 10.0.2.2", g.command("ip route"))
            # slirp's DNS relay is announced by DHCP (whether the host can
            # resolve anything is not up to rvisor).
            self.assertIn("nameserver 10.0.2.3", g.command("cat /etc/resolv.conf"))
            # 10.0.2.2 is the host's loopback.
            out = g.command("wget -q -O - http://10.0.2.2:%d/file" % self.server.port, timeout=60)
            self.assertIn(self.token, out)
            # A megabyte arrives intact (many frames, both directions busy).
            out = g.command("wget -q -O - http://10.0.2.2:%d/big | md5sum" % self.server.port, timeout=120)
            self.assertIn(hashlib.md5(self.big).hexdigest(), out)
            g.send("poweroff -f\n")
            self.assertEqual(g.wait(), 0)
        finally:
            g.close()

    def test_udp_to_host_and_dns_relay(self):
        # A UDP service on the host's loopback answers the guest (10.0.2.2).
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(udp.close)
        udp.bind(("127.0.0.1", 0))
        udp.settimeout(60)
        got = []

        def echo():
            try:
                data, peer = udp.recvfrom(1500)
            except OSError:
                return
            got.append(data)
            udp.sendto(b"pong-" + data, peer)

        t = threading.Thread(target=echo, daemon=True)
        t.start()
        g = boot("user")
        try:
            self.assertIn("dhcp-rc=0", dhcp(g))
            out = g.command("echo ping | nc -u -w 2 10.0.2.2 %d" % udp.getsockname()[1], timeout=60)
            t.join(10)
            self.assertEqual(got, [b"ping\n"])
            self.assertIn("pong-ping", out)
            # slirp relays DNS (10.0.2.3) to the host's resolver: the guest gets
            # an answer wherever the host itself can resolve the name.
            name = "deb.debian.org"
            try:
                socket.getaddrinfo(name, 80, socket.AF_INET)
            except OSError:
                self.skipTest("the host cannot resolve %s" % name)
            out = g.command("nslookup %s 10.0.2.3" % name, timeout=60)
            self.assertRegex(out, r"Name:\s+%s\s+Address: \d+\.\d+\.\d+\.\d+" % re.escape(name))
        finally:
            g.close()

    def test_many_simultaneous_connections(self):
        # Every guest connection is a host socket that libslirp has polled:
        # 100 at once, each sending a line, getting an answer and staying
        # open, must all get through while the others are still open.
        n = 100
        srv = socket.socket()
        self.addCleanup(srv.close)
        srv.bind(("127.0.0.1", 0))
        srv.listen(n + 10)
        lock = threading.Lock()
        lines, conns = set(), []
        state = {"open": 0, "most": 0}

        def serve(c):
            with lock:
                state["open"] += 1
                state["most"] = max(state["most"], state["open"])
            data = b""
            while True:
                b = c.recv(256)
                if not b:
                    break
                data += b
                if b"\n" in data and not data.endswith(b"!"):
                    line = data.split(b"\n")[0]
                    with lock:
                        lines.add(line)
                    c.sendall(b"r" + line + b"\n")
                    data += b"!"
            with lock:
                state["open"] -= 1
            c.close()

        def accept():
            while True:
                try:
                    c, _ = srv.accept()
                except OSError:
                    return
                conns.append(c)
                threading.Thread(target=serve, args=(c,), daemon=True).start()

        threading.Thread(target=accept, daemon=True).start()
        g = boot("user")
        try:
            self.assertIn("dhcp-rc=0", dhcp(g))
            port = srv.getsockname()[1]
            g.command("P=%d N=%d" % (port, n))
            g.command("for i in $(seq $N);do (echo c$i;sleep 20)|nc 10.0.2.2 $P>/tmp/r$i&done", timeout=120)
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                with lock:
                    if len(lines) == n:
                        break
                time.sleep(0.2)
            with lock:
                self.assertEqual(len(lines), n, "lines received: %d" % len(lines))
                self.assertEqual(lines, {b"c%d" % i for i in range(1, n + 1)})
                self.assertGreaterEqual(state["most"], n)
            # The answers reach the guest through sockets libslirp must poll.
            deadline = time.monotonic() + 60
            while True:
                got = g.command("cat /tmp/r* | sort -u | wc -l").strip()
                if got == str(n) or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            self.assertEqual(got, str(n))
        finally:
            g.close()

    def test_guest_to_host_upload(self):
        # A host TCP sink counts what the guest sends (the transmit path).
        sink = socket.socket()
        sink.bind(("127.0.0.1", 0))
        sink.listen(1)
        got = []

        def accept():
            c, _ = sink.accept()
            h, n = hashlib.md5(), 0
            while True:
                b = c.recv(65536)
                if not b:
                    break
                h.update(b)
                n += len(b)
            got.append((n, h.hexdigest()))
            c.close()

        t = threading.Thread(target=accept, daemon=True)
        t.start()
        g = boot("user")
        try:
            self.assertIn("dhcp-rc=0", dhcp(g))
            g.command("wget -q -O /tmp/big http://10.0.2.2:%d/big" % self.server.port, timeout=120)
            g.command("nc 10.0.2.2 %d < /tmp/big" % sink.getsockname()[1], timeout=120)
            t.join(30)
            self.assertEqual(got, [(len(self.big), hashlib.md5(self.big).hexdigest())])
        finally:
            g.close()
            sink.close()

    def test_hostfwd_reaches_guest_server(self):
        port = free_port()
        g = boot("user,hostfwd=tcp:127.0.0.1:%d-:8080" % port)
        try:
            g.command("mkdir -p /www && echo %s > /www/index.html" % self.token)
            g.command("httpd -p 8080 -h /www")
            # The forward works before the guest has an address: slirp sends
            # to 10.0.2.15, which DHCP then gives it.
            self.assertIn("dhcp-rc=0", dhcp(g))
            body = None
            for _ in range(50):
                try:
                    body = urllib.request.urlopen("http://127.0.0.1:%d/index.html" % port, timeout=10).read()
                    break
                except OSError:
                    time.sleep(0.2)
            self.assertEqual(body, (self.token + "\n").encode())
        finally:
            g.close()

    def test_two_cards_get_different_macs(self):
        g = boot("user", "user")
        try:
            macs = g.command("cat /sys/class/net/eth0/address /sys/class/net/eth1/address").split()
            self.assertEqual(len(macs), 2, macs)
            self.assertNotEqual(macs[0], macs[1])
            for m in macs:
                self.assertTrue(m.startswith("52:54:00:"), m)
        finally:
            g.close()


def can_tap():
    return os.geteuid() == 0 and os.path.exists("/dev/net/tun") and shutil.which("ip") is not None


@unittest.skipUnless(can_tap(), "needs root, /dev/net/tun and ip(8)")
class TapNet(unittest.TestCase):
    def test_tap_created_by_rvisor(self):
        name = "rvtap%d" % (os.getpid() % 10000)
        net = 100 + os.getpid() % 100
        host_ip, guest_ip = "192.168.%d.1" % net, "192.168.%d.2" % net
        g = boot("tap=%s" % name)
        try:
            subprocess.run(["ip", "addr", "add", host_ip + "/24", "dev", name], check=True)
            subprocess.run(["ip", "link", "set", name, "up"], check=True)
            server = FileServer(host_ip)
            self.addCleanup(server.close)
            token = "rvisor-tap-%d" % os.getpid()
            server.put("file", (token + "\n").encode())
            g.command("ip link set eth0 up")
            g.command("ip addr add %s/24 dev eth0" % guest_ip)
            out = g.command("wget -q -O - http://%s:%d/file" % (host_ip, server.port), timeout=60)
            self.assertIn(token, out)
        finally:
            g.close()
        # The device was rvisor's own: it goes when rvisor exits.
        for _ in range(50):
            if subprocess.run(["ip", "link", "show", name], capture_output=True).returncode != 0:
                break
            time.sleep(0.1)
        else:
            subprocess.run(["ip", "link", "del", name])
            self.fail("TAP device %s outlived rvisor" % name)


class BadSpecs(unittest.TestCase):
    def run_with(self, spec):
        return subprocess.run([RVISOR, "run", "--kernel", os.path.join(GUEST, "Image"), "--net", spec],
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)

    def test_bad_net_specs_exit_1_with_a_message(self):
        cases = {
            "bogus": "expected user",
            "user,foo=1": "unknown option 'foo=1'",
            "user,hostfwd=tcp::99999-:80": "bad hostfwd",
            "user,mac=01:00:00:00:00:01": "bad mac",
            "tap": "tap=IFNAME",
            "tap=this-name-is-far-too-long": "bad TAP interface name",
        }
        for spec, msg in cases.items():
            r = self.run_with(spec)
            self.assertEqual(r.returncode, 1, spec)
            self.assertIn("--net %s: " % spec, r.stderr)
            self.assertIn(msg, r.stderr)

    def test_hostfwd_port_in_use(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen(1)
            port = s.getsockname()[1]
            r = self.run_with("user,hostfwd=tcp:127.0.0.1:%d-:80" % port)
            self.assertEqual(r.returncode, 1)
            self.assertIn("cannot listen on host tcp 127.0.0.1:%d" % port, r.stderr)


if __name__ == "__main__":
    unittest.main()
