#!/usr/bin/env bash
# Differential fuzzing of the binary translator against the interpreter:
# builds tests/unit/test_jit_diff and runs it for as long as asked, one job
# per CPU on disjoint seeds, then prints how many programs and instructions
# were tested and every mismatch with its reproducer (see the header
# comment of tests/unit/test_jit_diff.c). Exits 1 if there was a mismatch.
#
#   bench/jit_fuzz.sh [SECONDS]   default 60; e.g. 3600 for an hour
#
#   JOBS=n          processes (default: the number of CPUs)
#   SEED=s          first seed (default: from the clock); job k starts at s + k * 2^40
#   BUILD=dir       build directory (default: build-jitfuzz in the tree, reused;
#                   not bench/fuzz.sh's build-fuzz, which clang configures)
#   SANITIZE=1      a new build directory's build uses -Db_sanitize=address,undefined
#   SLICE=s         seconds per process (default 60)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-60}
jobs=${JOBS:-$(nproc)}
seed=${SEED:-$(( ($(date +%s) % 1000000) << 24 ))}
build=${BUILD:-$root/build-jitfuzz}

if [ ! -f "$build/build.ninja" ]; then
  opts=(-Dbuildtype=release)
  if [ "${SANITIZE:-0}" = 1 ]; then opts=(-Dbuildtype=debugoptimized -Db_sanitize=address,undefined); fi
  meson setup "$build" "$root" "${opts[@]}" >/dev/null
fi
ninja -C "$build" tests/unit/test_jit_diff >/dev/null

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "jit_fuzz: $jobs jobs for $secs s from seed $seed"

# Job k runs the test in slices of at most SLICE seconds, slice n on the
# seeds from seed + k * 2^40 + n * 2^28, so that a slice's results are on
# disk even if a later one is cut off.
slice=${SLICE:-60}
run_job() {
  local k=$1 end=$(( $(date +%s) + secs )) n=0
  while [ "$(date +%s)" -lt "$end" ]; do
    local left=$(( end - $(date +%s) ))
    JIT_DIFF_SEED=$((seed + (k << 40) + (n << 28))) JIT_DIFF_SECONDS=$(( left < slice ? left : slice )) \
      JIT_DIFF_KEEP_GOING=1 "$build/tests/unit/test_jit_diff" >"$out/$k.$n.log" 2>&1 || true
    n=$((n + 1))
  done
}
for k in $(seq 0 $((jobs - 1))); do run_job "$k" & done
wait

# Each process ends with "jit_diff: N programs (...), I instructions in S lockstep steps, ..."
# and "jit_diff: ... M mismatches".
cat "$out"/*.log | awk -v secs="$secs" '
  /^jit_diff: [0-9]+ programs/ { programs += $2; for (i = 3; i < NF; i++) if ($(i + 1) == "instructions" && $(i + 2) == "in") insns += $i }
  /^jit_diff: .*mismatches$/ { mismatches += $(NF - 1) }
  END { printf "jit_fuzz: %.0f programs, %.0f instructions in %d s (%.0f programs/s, %.0f instructions/s); %d mismatches\n",
               programs, insns, secs, programs / secs, insns / secs, mismatches }'
# Every mismatch: the first report, the shrunk reproducer and its report.
if grep -q "MISMATCH" "$out"/*.log; then
  for f in "$out"/*.log; do grep -v -E '^\[|^jit_diff: [0-9]+ (programs|traps)' "$f" || true; done
  exit 1
fi
