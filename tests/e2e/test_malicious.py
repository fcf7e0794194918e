"""End-to-end: malicious guests (tests/malicious) cannot take the monitor or
the CPU from a well-behaved VM.

One `rvisor serve --workers 2` runs a well-behaved VM (counter.S, CPU-bound)
and, with the same shares, VMs that hammer every device window with wild
accesses of every size, abuse every virtio device (rings and buffers
outside RAM, descriptor loops, notify storms), raise timer/IPI/PLIC
interrupt storms, loop on exceptions, trap inside their own trap handler,
spin in M-mode with interrupts off, sleep to bank CPU credit and then spin,
and a Linux guest that storms page faults, munmap, fork, mprotect and
system calls. The well-behaved VM runs alone, beside each attacker, then
beside all of them (tests/malicious/scenario.py has the scenario and how a
fair share is computed), while a thread sends `list` requests every 0.2 s.

Asserted: in every phase the well-behaved VM gets at least half of its fair
share of the CPU the monitor could have had, and at least half of the
instructions per CPU-second it ran alone; every request is answered, 99%
within 2 s and none slower than 5 s; each attacker really attacks (its
counter moves) and is either still running or was stopped as a faulty
guest (exit status 4); the monitor's own memory stays bounded, destroying
the attackers is prompt, and the monitor exits cleanly on SIGTERM (and,
under the sanitizer build, without a report). About a minute.
"""
import os
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # no __pycache__ in tests/malicious
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "malicious"))
import scenario  # noqa: E402

RVISOR = os.environ.get("RVISOR", "build/rvisor")
GUEST = os.environ.get("RVISOR_GUEST", os.path.expanduser("~/.cache/rvisor/default"))

WORKERS = 2
ALONE_S, EACH_S, ALL_S, SETTLE_S = 3.0, 3.0, 6.0, 0.5
SHARE_FLOOR = 0.5         # of the fair share the well-behaved VM must keep
STARVED_CORES = 0.5       # CPU the host gave the monitor below which shares are not judged
SPEED_FLOOR = 0.5         # of its instructions per CPU-second alone
# API requests. A request waits for no VM, but on a host loaded well past
# its cores the monitor's threads wait for the CPU (seen: p99 0.5 s, max
# 2.2 s at a load average of 14 on 2 cores).
LATENCY_P99_S = 2.0
LATENCY_MAX_S = 5.0
OVERHEAD_LIMIT = 256 << 20  # monitor RSS beyond the machine memory it hands to guests


class MaliciousGuests(unittest.TestCase):
    def test_attackers_take_neither_the_monitor_nor_the_cpu(self):
        missing = scenario.missing_programs(RVISOR)
        self.assertFalse(missing, "missing %s in %s (built by ninja -C build with riscv64-linux-gnu-gcc)"
                         % (missing, scenario.programs_dir(RVISOR)))
        mon = scenario.Monitor(RVISOR, WORKERS)
        probe = scenario.LatencyProbe(mon)
        try:
            sc = scenario.Scenario(mon, RVISOR, GUEST)
            sc.boot_linux()
            probe.start()
            results = sc.phases(ALONE_S, EACH_S, ALL_S, SETTLE_S, probe=probe)
            self.check_phases(sc, results)
            self.assertTrue(mon.alive(), "the monitor died:\n" + mon.output())

            t0 = time.monotonic()
            ls = subprocess.run([RVISOR, "ls", "--socket", mon.sock], capture_output=True, text=True, timeout=60)
            self.assertEqual(ls.returncode, 0, ls.stderr)
            self.assertLess(time.monotonic() - t0, LATENCY_MAX_S, "rvisor ls was slow")

            # The attackers all run again (and storm) while they are destroyed.
            sc.unleash([a.name for a in sc.attackers])
            overhead = mon.rss() - mon.ok(op="memory")["used"]
            self.assertLess(overhead, OVERHEAD_LIMIT, "the monitor holds %.0f MiB beyond guest memory" % (overhead / 2**20))
            for a in sc.attackers:
                t0 = time.monotonic()
                mon.ok(op="destroy", name=a.name)
                self.assertLess(time.monotonic() - t0, 5, "destroying %s took long" % a.name)
            after = scenario.measure(mon, 2, [scenario.GOOD])
            self.assertEqual(after["vms"][scenario.GOOD]["state"], "running")
            self.assertGreaterEqual(after["good_cores"], SHARE_FLOOR * after["fair"], after)

            probe.stop()
            ok = [dt for _, dt, _ in probe.samples if dt is not None]
            print("list requests: %d, p50 %.1f ms, p99 %.1f ms, max %.1f ms"
                  % (len(ok), 1e3 * scenario.percentile(ok, 0.5), 1e3 * scenario.percentile(ok, 0.99), 1e3 * max(ok)))
            failed = [(p, t) for t, dt, p in probe.samples if dt is None]
            self.assertFalse(failed, "list requests failed in phases %s" % sorted(set(p for p, _ in failed)))
            slow = sorted(((dt, p) for _, dt, p in probe.samples), reverse=True)
            why = "slowest list requests (s, phase): %s of %d" % (", ".join("%.2f %s" % x for x in slow[:5]), len(slow))
            self.assertLess(scenario.percentile(ok, 0.99), LATENCY_P99_S, why)
            self.assertLess(slow[0][0], LATENCY_MAX_S, why)
            self.assertEqual(mon.stop(), 0, mon.output())
            # Under the sanitizer build (RVISOR=build-asan/rvisor) UBSan reports and goes on.
            for bad in ("runtime error:", "Sanitizer"):
                self.assertNotIn(bad, mon.output())
        finally:
            try:
                if probe.is_alive():
                    probe.stop()
            finally:
                mon.close()

    def check_phases(self, sc, results):
        """Checks every phase; one failure lists every phase that failed."""
        alone = results[0][2]
        self.assertGreater(alone["good_mips"], 0, alone)
        problems = []
        starved = 0
        for label, names, r in results:
            good = r["vms"][scenario.GOOD]
            summary = ("phase %s: the well-behaved VM got %.2f cores of a fair %.2f (%d VMs, monitor %.2f cores, "
                       "host idle %.2f), %.0f MIPS per core (alone %.0f)"
                       % (label, r["good_cores"], r["fair"], r["contenders"], r["monitor_cores"], r["idle_cores"],
                          r["good_mips_per_core"], alone["good_mips_per_core"]))
            print(summary)
            if good["state"] != "running":
                problems.append("%s: the well-behaved VM is %s: %s" % (label, good["state"], good["exit_message"]))
            # Below half a core for the whole monitor, the host's scheduler,
            # not the monitor's, decides which worker thread runs (a VM held
            # by a preempted worker waits): the share cannot be judged.
            if r["available"] < STARVED_CORES:
                starved += 1
            elif r["good_cores"] < SHARE_FLOOR * r["fair"]:
                problems.append(summary + ": less than %d%% of its fair share" % (100 * SHARE_FLOOR))
            if r["good_mips_per_core"] < SPEED_FLOOR * alone["good_mips_per_core"]:
                problems.append(summary + ": its code ran slower than %d%% of alone" % (100 * SPEED_FLOOR))
            for a in sc.attackers:
                if a.name not in names:
                    continue
                vm = r["vms"][a.name]
                if vm["state"] == "stopped":
                    # An attacked VM may fail, but only as a faulty guest.
                    if vm["exit_status"] != 4:
                        problems.append("%s: %s stopped with status %s: %s"
                                        % (label, a.name, vm["exit_status"], vm["exit_message"]))
                elif vm["state"] != "running":
                    problems.append("%s: %s is %s" % (label, a.name, vm["state"]))
                elif vm["counts"][a.evidence] <= 0:
                    problems.append("%s: %s did not attack (no %s): %r" % (label, a.name, a.evidence, vm))
        self.assertFalse(problems, "\n".join(problems))
        if starved:
            print("%d of %d phases: the host gave the monitor under %.1f cores, shares not judged"
                  % (starved, len(results), STARVED_CORES))
        if starved == len(results):
            self.skipTest("the host was too busy to judge any phase's CPU shares")

if __name__ == "__main__":
    unittest.main()
