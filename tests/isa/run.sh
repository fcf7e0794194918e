#!/usr/bin/env bash
# run.sh - build and run rvisor's bare-metal ISA test programs.
#
# usage: tests/isa/run.sh [BUILD_DIR [RVISOR_BINARY]]
#   BUILD_DIR      where the ELF files go (default: <repo>/build/isa)
#   RVISOR_BINARY  the rvisor executable (default: <repo>/build/rvisor)
#
# environment:
#   ISA_EMULATOR   "rvisor" (default): RVISOR_BINARY run --bios prog.elf
#                  "qemu":   qemu-system-riscv64 -M spike -nographic -bios none -kernel prog.elf
#                  any other value: path of the rvisor binary to use
#   ISA_ENGINE     passed to rvisor as --engine (jit or interp); default: rvisor's own
#   ISA_FILTER     only run tests whose name matches this glob (default: *)
#   ISA_TIMEOUT    seconds per test (default: 20)
#   CROSS_COMPILE  toolchain prefix (default: riscv64-linux-gnu-, falling back
#                  to riscv64-unknown-elf- if that one is not installed)
#   QEMU           qemu binary for qemu mode (default: qemu-system-riscv64)
#
# Every tests/isa/*.S becomes BUILD_DIR/<name>.elf and is run; the emulator's
# output goes to BUILD_DIR/<name>.log.  A test passes when the emulator exits
# with status 0 (HTIF tohost = 1).  tests/isa/negative/*.S are only built,
# into BUILD_DIR/negative/, never run here: they must fail.
set -u

SRC_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$SRC_DIR/../.." && pwd)

BUILD_DIR=${1:-$REPO_DIR/build/isa}
RVISOR=${2:-$REPO_DIR/build/rvisor}
EMU=${ISA_EMULATOR:-rvisor}
FILTER=${ISA_FILTER:-*}
TIMEOUT=${ISA_TIMEOUT:-20}
QEMU_BIN=${QEMU:-qemu-system-riscv64}

case "$EMU" in
  qemu|rvisor|"") ;;
  *) RVISOR=$EMU; EMU=rvisor ;;
esac

if [ -n "${CROSS_COMPILE:-}" ]; then
  CC=${CROSS_COMPILE}gcc
elif command -v riscv64-linux-gnu-gcc >/dev/null 2>&1; then
  CC=riscv64-linux-gnu-gcc
elif command -v riscv64-unknown-elf-gcc >/dev/null 2>&1; then
  CC=riscv64-unknown-elf-gcc
else
  echo "run.sh: no RISC-V cross compiler found (set CROSS_COMPILE)" >&2
  exit 2
fi

# shellcheck disable=SC2054
CFLAGS=(-march=rv64gc -mabi=lp64d -mcmodel=medany -fno-pic -no-pie -nostdlib -nostartfiles -static
        -Wl,--build-id=none -T "$SRC_DIR/link.ld" -I "$SRC_DIR")
# binutils >= 2.39 warns about the (intended) RWX segment
if "$CC" -Wl,--help 2>/dev/null | grep -q -- --no-warn-rwx-segments; then
  # shellcheck disable=SC2054
  CFLAGS+=(-Wl,--no-warn-rwx-segments)
fi

mkdir -p "$BUILD_DIR" "$BUILD_DIR/negative" || exit 2
BUILD_DIR=$(cd "$BUILD_DIR" && pwd)
case "$RVISOR" in
  /*) ;;
  *) RVISOR=$(pwd)/$RVISOR ;;
esac

if [ "$EMU" = rvisor ] && [ ! -x "$RVISOR" ]; then
  echo "run.sh: rvisor binary not found at $RVISOR" >&2
  exit 2
fi
if [ "$EMU" = qemu ] && ! command -v "$QEMU_BIN" >/dev/null 2>&1; then
  echo "run.sh: $QEMU_BIN not found" >&2
  exit 2
fi

build() { # src out log
  "$CC" "${CFLAGS[@]}" "$1" -o "$2" >"$3" 2>&1
}

run_one() { # elf log
  if [ "$EMU" = qemu ]; then
    timeout -k 5 "$TIMEOUT" "$QEMU_BIN" -M spike -nographic -bios none \
      -kernel "$1" </dev/null >"$2" 2>&1
  else
    timeout -k 5 "$TIMEOUT" "$RVISOR" run ${ISA_ENGINE:+--engine "$ISA_ENGINE"} --bios "$1" </dev/null >"$2" 2>&1
  fi
}

# negative programs: build only
for src in "$SRC_DIR"/negative/*.S; do
  [ -e "$src" ] || continue
  name=$(basename "$src" .S)
  if ! build "$src" "$BUILD_DIR/negative/$name.elf" "$BUILD_DIR/negative/$name.build.log"; then
    echo "run.sh: warning: could not build negative/$name (see $BUILD_DIR/negative/$name.build.log)" >&2
  fi
done

passed=0
failed=0
for src in "$SRC_DIR"/*.S; do
  [ -e "$src" ] || continue
  name=$(basename "$src" .S)
  # shellcheck disable=SC2254
  case "$name" in $FILTER) ;; *) continue ;; esac
  elf=$BUILD_DIR/$name.elf
  log=$BUILD_DIR/$name.log
  if ! build "$src" "$elf" "$BUILD_DIR/$name.build.log"; then
    echo "FAIL $name (build error: $BUILD_DIR/$name.build.log)"
    failed=$((failed + 1))
    continue
  fi
  run_one "$elf" "$log"
  rc=$?
  if [ "$rc" -eq 0 ]; then
    echo "PASS $name"
    passed=$((passed + 1))
  else
    echo "FAIL $name (exit $rc)"   # 124/137: timed out
    failed=$((failed + 1))
  fi
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
