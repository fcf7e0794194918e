"""End-to-end: virtio-blk disks. An ext4 image made on the host (mkfs.ext4,
debugfs from e2fsprogs) is mounted by the guest, which reads a file the host
put there and writes new ones; the host then reads them back out of the
image. Also read-only disks, serial numbers, discard reaching the host file,
bad --drive options, and a disk given to `rvisor create`."""
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from guest import Guest, PROMPT  # noqa: E402
from test_monitor_api import Monitor, SocketConsole, wait_for_shell  # noqa: E402

RVISOR = os.environ.get("RVISOR", "build/rvisor")
GUEST = os.environ.get("RVISOR_GUEST", os.path.expanduser("~/.cache/rvisor/default"))
KERNEL = os.path.join(GUEST, "Image")
INITRD = os.path.join(GUEST, "initrd.gz")
APPEND = "console=ttyS0 quiet"


def tool(name):
    for d in ("/usr/sbin", "/sbin", "/usr/bin", "/bin"):
        if os.path.exists(os.path.join(d, name)):
            return os.path.join(d, name)
    return shutil.which(name)


MKFS, DEBUGFS, E2FSCK = tool("mkfs.ext4"), tool("debugfs"), tool("e2fsck")


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def boot(*drives, mem="256M"):
    args = ["--kernel", KERNEL, "--initrd", INITRD, "--append", APPEND, "--mem", mem]
    for d in drives:
        args += ["--drive", d]
    g = Guest(RVISOR, args)
    g.read_until("rvisor-guest: init reached")
    g.send("echo rvisor-$((40 + 2))\n")
    g.read_until(rb"\nrvisor-42\r*\n")
    g.read_until(PROMPT)
    return g


@unittest.skipUnless(MKFS and DEBUGFS, "needs e2fsprogs (mkfs.ext4, debugfs)")
class VirtioBlk(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="rvisor-blk-")
        self.img = os.path.join(self.dir, "disk.img")
        with open(self.img, "wb") as f:
            f.truncate(32 << 20)
        subprocess.run([MKFS, "-F", "-q", self.img], check=True)
        # A file from the host for the guest to read.
        self.hello = os.urandom(150_000)
        src = os.path.join(self.dir, "hello.bin")
        with open(src, "wb") as f:
            f.write(self.hello)
        self.debugfs("-w", "-R", "write %s hello.bin" % src)

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def debugfs(self, *args):
        r = subprocess.run([DEBUGFS] + list(args) + [self.img], capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout

    def host_file(self, path):
        out = os.path.join(self.dir, "out")
        self.debugfs("-R", "dump %s %s" % (path, out))
        with open(out, "rb") as f:
            data = f.read()
        os.unlink(out)
        return data

    def test_ext4_round_trip(self):
        g = boot("file=" + self.img)
        try:
            self.assertEqual(g.command("cat /sys/block/vda/size").strip(), str((32 << 20) // 512))
            self.assertEqual(g.command("cat /sys/block/vda/ro").strip(), "0")
            g.command("mkdir -p /mnt && mount -t ext4 /dev/vda /mnt && echo mounted")
            self.assertIn("/dev/vda /mnt ext4 rw", g.command("cat /proc/mounts"))
            self.assertEqual(g.command("md5sum /mnt/hello.bin").split()[0], hashlib.md5(self.hello).hexdigest())
            # New files: a small one, a big one spanning many requests, one in a directory.
            g.command("echo written-by-the-guest > /mnt/note.txt")
            g.command("dd if=/dev/urandom of=/mnt/big.bin bs=4k count=600")
            big_md5 = g.command("md5sum /mnt/big.bin").split()[0]
            g.command("mkdir /mnt/dir && seq 1 5000 > /mnt/dir/seq.txt")
            g.command("sync")
            self.assertEqual(g.command("umount /mnt && echo ok").strip(), "ok")
            g.send("poweroff -f\n")
            self.assertEqual(g.wait(), 0)
        finally:
            g.close()
        self.assertEqual(self.host_file("/note.txt"), b"written-by-the-guest\n")
        self.assertEqual(hashlib.md5(self.host_file("/big.bin")).hexdigest(), big_md5)
        self.assertEqual(self.host_file("/dir/seq.txt"), "".join("%d\n" % i for i in range(1, 5001)).encode())
        self.assertEqual(self.host_file("/hello.bin"), self.hello)
        if E2FSCK:
            r = subprocess.run([E2FSCK, "-fn", self.img], capture_output=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_readonly_and_serial(self):
        before = sha256(self.img)
        g = boot("file=%s,readonly=on,serial=rvisor-disk-7" % self.img)
        try:
            self.assertEqual(g.command("cat /sys/block/vda/ro").strip(), "1")
            self.assertEqual(g.command("cat /sys/block/vda/serial").strip(), "rvisor-disk-7")
            # Writing the raw disk fails.
            out = g.command("dd if=/dev/zero of=/dev/vda count=1 conv=fsync; echo rc=$?")
            self.assertRegex(out, r"rc=[1-9]")
            # A read-only mount works and reads the host's file.
            g.command("mkdir -p /mnt && mount -o ro -t ext4 /dev/vda /mnt")
            self.assertEqual(g.command("md5sum /mnt/hello.bin").split()[0], hashlib.md5(self.hello).hexdigest())
            out = g.command("echo x > /mnt/new.txt; echo rc=$?")
            self.assertRegex(out, r"rc=[1-9]")
            g.command("umount /mnt")
            g.send("poweroff -f\n")
            self.assertEqual(g.wait(), 0)
        finally:
            g.close()
        self.assertEqual(sha256(self.img), before, "a read-only disk must not change")

    def test_raw_disk_discard_and_two_drives(self):
        raw = os.path.join(self.dir, "raw.img")
        with open(raw, "wb") as f:
            f.truncate(16 << 20)
        g = boot("file=" + raw, "file=%s,readonly=on" % self.img)
        try:
            # Default serial: the image's file name. Second drive is vdb.
            self.assertEqual(g.command("cat /sys/block/vda/serial").strip(), "raw.img")
            self.assertEqual(g.command("cat /sys/block/vdb/ro").strip(), "1")
            self.assertEqual(g.command("cat /sys/block/vda/queue/discard_granularity").strip(), "4096")
            # Raw writes at an offset land at that offset in the host file.
            g.command("echo raw-sector-data > /tmp/s")
            g.command("dd if=/tmp/s of=/dev/vda bs=512 seek=2049 conv=sync,fsync")
            with open(raw, "rb") as f:
                f.seek(2049 * 512)
                self.assertEqual(f.read(16), b"raw-sector-data\n")
            # Reading past the end gets nothing, without harm.
            out = g.command("dd if=/dev/vda of=/dev/null bs=512 skip=32768 count=1")
            self.assertIn("0+0 records in", out)
            # Fill 8 MiB, then discard it: the host file gets its hole back.
            g.command("dd if=/dev/zero of=/dev/vda bs=1M count=8 seek=4 conv=fsync")
            full = os.stat(raw).st_blocks * 512
            self.assertGreaterEqual(full, 8 << 20)
            out = g.command("blkdiscard -o %d -l %d /dev/vda; echo rc=$?" % (4 << 20, 8 << 20))
            self.assertIn("rc=0", out)
            self.assertLess(os.stat(raw).st_blocks * 512, full - (6 << 20))
            with open(raw, "rb") as f:
                f.seek(2049 * 512)
                self.assertEqual(f.read(16), b"raw-sector-data\n")  # outside the range: kept
            g.send("poweroff -f\n")
            self.assertEqual(g.wait(), 0)
        finally:
            g.close()

    def run_bad(self, *drives):
        args = [RVISOR, "run", "--kernel", KERNEL, "--initrd", INITRD, "--append", APPEND]
        for d in drives:
            args += ["--drive", d]
        return subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)

    def test_bad_drive(self):
        odd = os.path.join(self.dir, "odd.img")
        with open(odd, "wb") as f:
            f.write(b"x" * 1000)
        for drives, message in [
            (["file=%s/missing.img" % self.dir], "--drive 1: cannot open"),
            (["file=" + self.img, "file=%s,cache=none" % self.img], "--drive 2: unknown option 'cache'"),
            (["file=" + odd], "not a multiple of 512"),
            (["file=" + self.dir], "is a directory"),
            (["readonly=on"], "missing file=PATH"),
            (["file=%s,readonly=maybe" % self.img], "on or off"),
            # One image twice: the second is locked out.
            (["file=" + self.img, "file=" + self.img], "--drive 2: '%s' is in use" % self.img),
        ]:
            r = self.run_bad(*drives)
            self.assertEqual(r.returncode, 1, (drives, r.stderr))
            self.assertIn(message, r.stderr, drives)
            self.assertNotIn("init reached", r.stdout)

    def test_locked_while_another_vm_runs(self):
        g = boot("file=" + self.img)
        try:
            r = self.run_bad("file=%s,readonly=on" % self.img)
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertIn("in use", r.stderr)
            g.send("poweroff -f\n")
            self.assertEqual(g.wait(), 0)
        finally:
            g.close()

    def test_monitor_create_with_drive(self):
        mon = Monitor("--machine-mem", "512M")
        try:
            # A relative path: the client makes it absolute for the monitor.
            r = subprocess.run([RVISOR, "create", "vmd", "--kernel", KERNEL, "--initrd", INITRD, "--append", APPEND,
                                "--mem", "256M", "--drive", "file=disk.img,serial=from-api", "--socket", mon.sock],
                               cwd=self.dir, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stderr)
            reply = mon.request(op="create", name="bad", kernel=KERNEL, initrd=INITRD, drives=["file=/nonexistent"])
            self.assertFalse(reply["ok"])
            self.assertIn("--drive 1: cannot open '/nonexistent'", reply["error"])
            self.assertTrue(mon.request(op="start", name="vmd")["ok"])
            con = SocketConsole(mon, "vmd")
            try:
                wait_for_shell(con)
                self.assertEqual(con.command("cat /sys/block/vda/serial").strip(), "from-api")
                con.command("mkdir -p /mnt && mount /dev/vda /mnt")
                con.command("echo via-monitor > /mnt/m.txt && umount /mnt")
            finally:
                con.close()
            self.assertTrue(mon.request(op="destroy", name="vmd")["ok"])
            self.assertEqual(mon.stop(), 0)
        finally:
            mon.close()
        self.assertEqual(self.host_file("/m.txt"), b"via-monitor\n")


if __name__ == "__main__":
    unittest.main()
