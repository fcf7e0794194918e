#!/usr/bin/env bash
# Sets everything up if needed, then runs every test suite: unit tests (also
# under AddressSanitizer and UBSan), bare-metal ISA tests, command-line
# error handling, static checks of the binary, end-to-end guest boots, and
# a short run of every fuzz harness. Ends with "N passed, N failed".
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
"$root/scripts/setup.sh" || { echo "setup failed"; echo "0 passed, 1 failed"; exit 1; }
guest=$("$root/guests/build.sh" | tail -n 1)
export RVISOR="$root/build/rvisor" RVISOR_GUEST="$guest"

# A sanitizer build for the unit tests and one guest boot.
asan=$root/build-asan
if [ ! -f "$asan/build.ninja" ]; then
  meson setup "$asan" "$root" -Dbuildtype=debugoptimized -Db_sanitize=address,undefined >/dev/null
fi
ninja -C "$asan" >/dev/null || { echo "sanitizer build failed"; echo "0 passed, 1 failed"; exit 1; }

passed=0 failed=0
log=$(mktemp -d)
trap 'rm -rf "$log"' EXIT

# Adds the counts of a suite's closing "N passed, N failed" line.
count_summary() {
  local name=$1 out=$2 rc=$3
  local line
  line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out" | tail -n 1)
  if [ -z "$line" ]; then
    echo "== $name: no summary (exit $rc)"; tail -n 20 "$out"; failed=$((failed + 1)); return
  fi
  local p f
  p=$(echo "$line" | cut -d' ' -f1); f=$(echo "$line" | cut -d' ' -f3)
  passed=$((passed + p)); failed=$((failed + f))
  if [ "$f" != 0 ] || [ "$rc" != 0 ]; then
    grep -E 'FAIL|ERROR|Error|error' "$out" | head -n 40
    [ "$f" != 0 ] || failed=$((failed + 1))
  fi
  echo "== $name: $line"
}

# cmocka prints "[  PASSED  ] N test(s)." and "[  FAILED  ] N test(s)".
run_unit() {
  local dir=$1 label=$2
  for t in "$dir"/tests/unit/test_* "$dir"/tests/api/test_* "$dir"/tests/monitor/test_*; do
    [ -f "$t" ] && [ -x "$t" ] || continue
    local out=$log/$(basename "$t").$label
    "$t" >"$out" 2>&1; local rc=$?
    local p f
    p=$(grep -Eo '\[  PASSED  \] [0-9]+' "$out" | grep -Eo '[0-9]+$' || echo 0)
    f=$(grep -Eo '\[  FAILED  \] [0-9]+' "$out" | grep -Eo '[0-9]+$' || echo 0)
    if [ "$rc" != 0 ] && [ "$f" = 0 ]; then f=1; fi
    passed=$((passed + p)); failed=$((failed + f))
    [ "$f" = 0 ] || { cat "$out" | tail -n 40; }
    echo "== unit $(basename "$t") [$label]: $p passed, $f failed"
  done
}

run_unit "$root/build" release
run_unit "$asan" sanitizers

for engine in jit interp; do
  ISA_ENGINE=$engine bash tests/isa/run.sh "$root/build/isa" "$root/build/rvisor" >"$log/isa-$engine" 2>&1
  count_summary "isa [$engine]" "$log/isa-$engine" $?
done

bash tests/cli/run.sh "$root/build/rvisor" "$root/build/isa" >"$log/cli" 2>&1
count_summary "cli" "$log/cli" $?

bash tests/cli/sandbox.sh "$root/build/rvisor" >"$log/sandbox" 2>&1
count_summary "cli sandbox" "$log/sandbox" $?

bash tests/static/run.sh "$root/build/rvisor" >"$log/static" 2>&1
count_summary "static" "$log/static" $?

python3 tests/e2e/run.py >"$log/e2e" 2>&1
count_summary "e2e" "$log/e2e" $?

RVISOR="$asan/rvisor" python3 tests/e2e/run.py "test_boot_shell.py" >"$log/e2e-asan" 2>&1
count_summary "e2e [sanitizers]" "$log/e2e-asan" $?

# Coverage-guided fuzzing, briefly: every libFuzzer harness from its seed
# corpus (bench/fuzz.sh runs them as long as asked).
bash bench/fuzz.sh "${FUZZ_SECONDS:-10}" >"$log/fuzz" 2>&1
count_summary "fuzz (${FUZZ_SECONDS:-10} s per harness)" "$log/fuzz" $?

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
