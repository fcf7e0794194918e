#!/usr/bin/env bash
# Coverage-guided fuzzing with libFuzzer (clang) of the surfaces that take
# untrusted bytes: the JSON protocol, the option parsers, the snapshot and
# migration loaders, the boot loaders, the decoder with both engines, and
# the virtio transport and devices (tests/fuzz/fuzz_*.c say what each one
# feeds where). Builds the harnesses (in build-fuzz, configured on first
# use), runs each for SECONDS from its seed corpus (tests/fuzz/corpus/NAME, never written to), and prints per
# harness the executions, the coverage reached and the crashes found, then
# "N passed, N failed". A harness fails if libFuzzer exits non-zero or
# leaves a crash-, leak-, timeout- or oom- file.
#
#   bench/fuzz.sh [SECONDS_PER_HARNESS] [HARNESS...]    default 20 s, all of:
#       protocol options snapshot boot hart virtio
#
#   BUILD=dir          build directory (default: build-fuzz in the tree), set up as
#                      CC=clang meson setup DIR -Dfuzz=true -Db_sanitize=address,undefined
#                      -Dbuildtype=debugoptimized -Db_lundef=false
#   FUZZ_KEEP_CORPUS=1 go on from the corpus the last run grew (default: start
#                      again from the seeds)
#   FUZZ_ARGS="..."    more libFuzzer options (e.g. -jobs=2 -workers=2)
#
# Each harness works in BUILD/fuzz/NAME/: corpus/ (the seeds and what the
# run added), artifacts/ (crash-*, leak-*, timeout-*: reproduce with
# BUILD/tests/fuzz/fuzz_NAME FILE; FUZZ_VERBOSE=1 tells why an input was
# refused), log. UBSan reports count as crashes (halt_on_error=1).
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-20}
shift $(( $# > 0 ? 1 : 0 ))
all=(protocol options snapshot boot hart virtio)
harnesses=("$@")
[ ${#harnesses[@]} -gt 0 ] || harnesses=("${all[@]}")
build=${BUILD:-$root/build-fuzz}
case $secs in ''|*[!0-9]*) echo "usage: bench/fuzz.sh [SECONDS_PER_HARNESS] [HARNESS...]" >&2; exit 2 ;; esac

# Longest input per harness (bytes): a request line, an argument list, a
# snapshot with a few frames, a kernel or firmware, a code page or so, a
# virtio header with commands and 16 KiB of guest memory.
max_len() {
  case $1 in
    protocol) echo 8192 ;; options) echo 1024 ;; snapshot) echo 65536 ;; boot) echo 65536 ;; hart) echo 4096 ;;
    virtio) echo 17000 ;;
    *) echo 4096 ;;
  esac
}

fuzz_build_ok() {
  python3 - "$1" <<'EOF'
import json, sys
try:
    opts = json.load(open(sys.argv[1] + "/meson-info/intro-buildoptions.json"))
except OSError:
    sys.exit(1)
sys.exit(0 if any(o["name"] == "fuzz" and o["value"] is True for o in opts) else 1)
EOF
}

if [ ! -f "$build/build.ninja" ]; then
  echo "fuzz: configuring $build"
  CC=clang meson setup "$build" "$root" -Dfuzz=true -Db_sanitize=address,undefined -Dbuildtype=debugoptimized \
    -Db_lundef=false >"$build.setup.log" 2>&1 || { cat "$build.setup.log"; echo "0 passed, 1 failed"; exit 1; }
  rm -f "$build.setup.log"
elif ! fuzz_build_ok "$build"; then
  if grep -q "clang" "$build/meson-info/intro-compilers.json" 2>/dev/null; then
    meson configure "$build" -Dfuzz=true >/dev/null || { echo "0 passed, 1 failed"; exit 1; }
  else
    echo "fuzz: $build is not a clang build; remove it or give BUILD=another-dir" >&2
    echo "0 passed, 1 failed"
    exit 1
  fi
fi
targets=()
for h in "${harnesses[@]}"; do
  [ -f "$root/tests/fuzz/fuzz_$h.c" ] || { echo "fuzz: no harness '$h' (have: ${all[*]})" >&2; exit 2; }
  targets+=("tests/fuzz/fuzz_$h")
done
echo "fuzz: building ${harnesses[*]}"
if ! ninja -C "$build" "${targets[@]}" >"$build/fuzz-build.log" 2>&1; then
  tail -n 40 "$build/fuzz-build.log"
  echo "0 passed, 1 failed"
  exit 1
fi

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
passed=0 failed=0
for h in "${harnesses[@]}"; do
  work=$build/fuzz/$h
  [ "${FUZZ_KEEP_CORPUS:-0}" = 1 ] || rm -rf "$work/corpus"
  rm -rf "$work/artifacts" "$work/cwd"
  mkdir -p "$work/corpus" "$work/artifacts" "$work/cwd"
  cp -n "$root/tests/fuzz/corpus/$h/"* "$work/corpus/" 2>/dev/null
  # fuzz_options opens --drive files named without a '/': in here, where one exists.
  truncate -s 4096 "$work/cwd/disk.img"
  dict=()
  [ -f "$root/tests/fuzz/$h.dict" ] && dict=("-dict=$root/tests/fuzz/$h.dict")
  start=$(date +%s)
  # CPU time (user + system) of the fuzzer, which is what the harness got
  # on a shared host; wall time is what was asked.
  TIMEFORMAT='%U %S'
  # shellcheck disable=SC2086
  { time { (cd "$work/cwd" && exec "$build/tests/fuzz/fuzz_$h" -max_total_time="$secs" -max_len="$(max_len "$h")" \
    -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$work/artifacts/" \
    "${dict[@]}" ${FUZZ_ARGS:-} "$work/corpus") >"$work/log" 2>&1; echo $? >"$work/rc"; } ; } 2>"$work/cpu"
  rc=$(cat "$work/rc")
  took=$(( $(date +%s) - start ))
  cpu=$(awk '{printf "%d", $1 + $2}' "$work/cpu" 2>/dev/null)
  execs=$(grep -Eo '^stat::number_of_executed_units: [0-9]+' "$work/log" | grep -Eo '[0-9]+$' | tail -n 1)
  rate=$(grep -E "^stat::average_exec_per_sec:" "$work/log" | grep -Eo "[0-9]+$" | tail -n 1)
  cov=$(grep -Eo 'cov: [0-9]+' "$work/log" | tail -n 1 | grep -Eo '[0-9]+')
  ft=$(grep -Eo 'ft: [0-9]+' "$work/log" | tail -n 1 | grep -Eo '[0-9]+')
  units=$(find "$work/corpus" -type f | wc -l)
  found=$(find "$work/artifacts" -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | wc -l)
  printf 'fuzz_%-9s %4ss (cpu %ss)  execs %-9s (%s/s)  cov %-6s ft %-6s corpus %-5s crashes %s  exit %s\n' \
    "$h" "$took" "${cpu:-?}" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "$units" "$found" "$rc"
  if [ "$rc" = 0 ] && [ "$found" = 0 ]; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    grep -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error|    #[0-9] )' "$work/log" | head -n 30
    find "$work/artifacts" -type f | sed 's/^/    artifact: /'
    echo "    log: $work/log"
  fi
done
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
