/* negative/fail_code: reports failure of test case 5 through HTIF
 * (tohost = (5 << 1) | 1 = 11).  An emulator running it must exit with a
 * non-zero status (QEMU spike exits with 5) and report the code. */
#include "common.h"

RVTEST_BEGIN
  .option norvc
  TEST_CASE(1, a0, 1, li a0, 1)    /* a passing case first */
  li TESTNUM, 5
  j fail                           /* tohost = 11 */
