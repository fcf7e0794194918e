"""End-to-end: `rvisor top` shows each VM's CPU use, MIPS, exits, TLB hit rate,
memory (shared, swapped, ballooned, active), engine and the translator's
figures, under a line of the monitor's machine memory, sharing and swap."""
import os
import re
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from test_monitor_api import APPEND, INITRD, KERNEL, Monitor  # noqa: E402


class Top(unittest.TestCase):
    def test_top_tells_a_busy_vm_from_an_idle_one(self):
        m = Monitor("--workers", "2", "--sample-period", "1")
        try:
            m.cli("create", "idle", "--kernel", KERNEL, "--initrd", INITRD, "--append", APPEND,
                  "--engine", "interp")
            m.cli("create", "busy", "--kernel", KERNEL, "--initrd", INITRD, "--engine", "jit",
                  "--append", APPEND + ' rvisor_run="while true; do :; done"')
            m.cli("start", "idle")
            m.cli("start", "busy")
            time.sleep(4)  # both boot; then one idles at its prompt, the other spins
            out = m.cli("top", "--iterations", "2", "--interval", "1").stdout
            self.assertIn("NAME", out)
            self.assertIn("TLBHIT%", out)
            header = ["NAME", "STATE", "CPU%", "MIPS", "SBI/s", "MMIO/s", "WFI/s", "TRAP/s", "IRQ/s", "TLBHIT%",
                      "MEM", "MiB", "SHR", "SWP", "BAL", "ACT%", "ENGINE", "BLOCKS", "CODEKiB", "FLUSH", "XLATEms",
                      "DISP/Minsn"]
            frame = out.rsplit("rvisor top", 1)[1]  # the last frame
            rows = {}
            for line in frame.splitlines():
                f = line.split()
                if f and f[0] in ("idle", "busy"):
                    rows[f[0]] = f
            self.assertEqual(set(rows), {"idle", "busy"}, out)
            self.assertIn(header, [line.split() for line in frame.splitlines()], out)
            # The monitor's memory: in use of all, the reclamation state, sharing and swap with rates.
            self.assertRegex(frame, r"machine memory \d+/\d+ MiB, reclamation (high|soft|hard|low) \| sharing: "
                                    r"\d+ frames for \d+ pages \(\d+ MiB saved\), \d+ CoW breaks/s, [1-9]\d* frames "
                                    r"scanned/s \| swap: \d+ MiB, \d+ out/s, \d+ in/s")
            for r in rows.values():
                self.assertEqual(len(r), 21, r)
                # Shared, swapped and ballooned MiB; the active estimate once two periods passed.
                for col in (11, 12, 13):
                    self.assertRegex(r[col], r"^\d+$", r)
                self.assertRegex(r[14], r"^\d+$", r)
                self.assertLessEqual(int(r[14]), 100, r)
            # Those four columns sit before the engine's.
            rows = {k: v[:11] + v[15:] for k, v in rows.items()}
            cpu = {k: float(v[2]) for k, v in rows.items()}
            mips = {k: float(v[3]) for k, v in rows.items()}
            # A spinning VM has a core to itself on a quiet host; on one
            # loaded by other work (CI neighbours) it still gets a good part.
            self.assertGreater(cpu["busy"], 25)
            self.assertGreater(cpu["busy"], 10 * max(cpu["idle"], 0.5))
            self.assertLess(cpu["idle"], 5)
            self.assertGreater(mips["busy"], 10 * max(mips["idle"], 0.1))
            self.assertGreater(float(rows["busy"][9]), 90)  # TLB hit rate of a shell loop
            self.assertRegex(rows["busy"][10], r"^\d+/256$")
            # The engine each was created with; the translator's figures only for the translated one.
            self.assertEqual(rows["idle"][11:], ["interp", "-", "-", "-", "-", "-"])
            busy = rows["busy"]
            self.assertEqual(busy[11], "jit")
            blocks, code_kib, flushes, xlate_ms = int(busy[12]), int(busy[13]), int(busy[14]), int(busy[15])
            self.assertGreater(blocks, 1000)              # a whole kernel boot's worth
            self.assertGreater(code_kib, 0)
            self.assertLessEqual(code_kib, 32 * 1024)     # within the default 32M buffer
            self.assertGreaterEqual(flushes, 0)           # a boot may fill it: then it is emptied
            self.assertGreater(xlate_ms, 0)
            self.assertLess(xlate_ms, 30000)
            # Returns to the dispatcher per million guest instructions over the
            # interval: a number, and below one per instruction.
            disp = float(busy[16])
            self.assertGreaterEqual(disp, 0)
            self.assertLess(disp, 1e6)
            bad = m.cli("top", "--interval", "0", check=False)
            self.assertNotEqual(bad.returncode, 0)
            self.assertIn("--interval", bad.stderr)
        finally:
            m.stop()
            m.close()


if __name__ == "__main__":
    unittest.main()
