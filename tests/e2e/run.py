"""Runs the end-to-end tests (test_*.py here) and ends with 'N passed, N failed'."""
import os
import sys
import unittest

here = os.path.dirname(os.path.abspath(__file__))
suite = unittest.defaultTestLoader.discover(here, pattern=sys.argv[1] if len(sys.argv) > 1 else "test_*.py")
result = unittest.TextTestRunner(verbosity=2, stream=sys.stdout).run(suite)
failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
skipped = len(result.skipped)
if skipped:
    print("%d skipped (not counted)" % skipped)
print("%d passed, %d failed" % (result.testsRun - failed - skipped, failed))
sys.exit(1 if failed else 0)
