#!/usr/bin/env bash
# Bad input to `rvisor run`: every case must end with one clear message on
# stderr and the documented non-zero exit status, quickly, without a crash.
# usage: tests/cli/run.sh RVISOR ISA_BUILD_DIR   (guest from $RVISOR_GUEST)
set -u
rvisor=${1:-build/rvisor}
isa=${2:-build/isa}
guest=${RVISOR_GUEST:-$HOME/.cache/rvisor/default}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0 failed=0

# expect NAME STATUS PATTERN -- ARGS...: runs rvisor ARGS with a limit of
# $LIMIT seconds (default 30).
expect() {
  local name=$1 want=$2 pattern=$3
  shift 4
  timeout -s KILL "${LIMIT:-30}" "$rvisor" "$@" </dev/null >"$tmp/out" 2>"$tmp/err"
  local rc=$?
  if [ "$rc" = "$want" ] && grep -Eq -- "$pattern" "$tmp/err"; then
    passed=$((passed + 1)); echo "PASS $name"
  else
    failed=$((failed + 1)); echo "FAIL $name: exit $rc (want $want), stderr:"; head -c 600 "$tmp/err"; echo
  fi
}

head -c 100000 "$guest/Image" > "$tmp/truncated"
head -c 100000 /dev/urandom > "$tmp/random"
: > "$tmp/empty"
head -c $((12 * 1024 * 1024)) /dev/urandom > "$tmp/big-initrd"
K=(--kernel "$guest/Image")

expect no-arguments 1 "Usage" --
expect unknown-command 1 "unknown command" -- frobnicate
expect unknown-flag 1 "unknown option '--frobnicate'" -- run --frobnicate
expect flag-without-value 1 "needs a value" -- run --kernel
expect nothing-to-run 1 "nothing to run" -- run --mem 64M
expect missing-kernel 1 "cannot open kernel '/nonexistent/Image'" -- run --kernel /nonexistent/Image
expect kernel-is-directory 1 "not a regular file" -- run --kernel /tmp
expect empty-kernel 1 "is empty" -- run --kernel "$tmp/empty"
expect truncated-kernel 1 "is truncated" -- run --kernel "$tmp/truncated"
expect random-kernel 1 "not a RISC-V Linux Image" -- run --kernel "$tmp/random"
expect x86-elf-kernel 1 "ELF file" -- run --kernel /bin/true
expect mem-zero 1 "too small" -- run "${K[@]}" --mem 0
expect mem-garbage 1 "not a size" -- run "${K[@]}" --mem lots
expect mem-huge 1 "more than this host" -- run "${K[@]}" --mem 100000G
expect mem-too-small-for-kernel 1 "needs [0-9]+ MiB" -- run "${K[@]}" --mem 4M
expect initrd-does-not-fit 1 "does not fit" -- run "${K[@]}" --initrd "$tmp/big-initrd" --mem 16M
expect missing-initrd 1 "cannot open initrd" -- run "${K[@]}" --initrd /nonexistent.gz
expect machine-mem-garbage 1 "--machine-mem 'lots' is not a size" -- run "${K[@]}" --machine-mem lots
expect machine-mem-huge 1 "more than this host" -- run "${K[@]}" --machine-mem 100000G
expect cpus-zero 1 "--cpus must be" -- run "${K[@]}" --cpus 0
expect cpus-too-many 1 "--cpus must be" -- run "${K[@]}" --cpus 9
expect engine-unknown 1 "--engine must be 'jit' or 'interp', not 'qemu'" -- run "${K[@]}" --engine qemu
expect jit-cache-too-small 1 "--jit-cache '64K' is not a size from 1M to 4G" -- run "${K[@]}" --jit-cache 64K
expect jit-cache-not-a-size 1 "--jit-cache 'lots' is not a size" -- run "${K[@]}" --jit-cache lots
expect bios-x86-elf 1 "not RISC-V" -- run --bios /bin/true
expect bios-missing 1 "cannot open bios" -- run --bios /nonexistent.elf
expect illegal-insn-in-m-mode 4 "no usable trap handler" -- run --bios "$isa/negative/illegal_m.elf"
expect jump-to-unmapped 4 "no usable trap handler" -- run --bios "$isa/negative/jump_unmapped.elf"
expect test-failure-code 5 "code 5" -- run --bios "$isa/negative/fail_code.elf"

# Hostile paths: each is refused at once, never read and never waited on. A
# FIFO nobody writes would block an open(2) or read(2) forever, /dev/zero
# never ends, a /proc file says it is empty and reads on, and a sparse file
# claims 64 GiB; 10 s is far more than a refusal takes.
mkfifo "$tmp/fifo"
mkdir "$tmp/dir"
truncate -s 64G "$tmp/sparse"
# hostile NAME PATH KIND [DRIVE_MODES]: as --kernel, --initrd, --bios and
# --drive (read-write and read-only, or only the DRIVE_MODES given).
hostile() {
  local name=$1 path=$2 kind=$3 modes=${4:-rw ro}
  LIMIT=10 expect "kernel-$name" 1 "kernel '$path' is not a regular file \\(it is $kind\\)" -- run --kernel "$path"
  LIMIT=10 expect "initrd-$name" 1 "initrd '$path' is not a regular file \\(it is $kind\\)" -- \
    run "${K[@]}" --initrd "$path"
  LIMIT=10 expect "bios-$name" 1 "bios '$path' is not a regular file \\(it is $kind\\)" -- run --bios "$path"
  for mode in $modes; do
    local ro=""; [ "$mode" = ro ] && ro=",readonly=on"
    LIMIT=10 expect "drive$ro-$name" 1 "--drive 1: '$path' is not a regular file or block device \\(it is $kind\\)" -- \
      run --bios "$isa/negative/fail_code.elf" --drive "file=$path$ro"
  done
}
hostile fifo "$tmp/fifo" "a FIFO"
hostile dev-zero /dev/zero "a character device"
hostile directory "$tmp/dir" "a directory"
hostile proc-file /proc/self/status "on procfs, a pseudo file system"
# (sysfs files of mode 0444 cannot be opened for writing, even by root)
hostile sys-file /sys/kernel/notes "on sysfs, a pseudo file system" ro
LIMIT=10 expect kernel-sparse-64G 1 "kernel '$tmp/sparse' \\(68719476736 bytes\\) is larger than guest memory \\(64 MiB\\)" -- \
  run --kernel "$tmp/sparse" --mem 64M
LIMIT=10 expect initrd-sparse-64G 1 "initrd '$tmp/sparse' \\(68719476736 bytes\\) is larger than guest memory" -- \
  run "${K[@]}" --initrd "$tmp/sparse"
LIMIT=10 expect bios-sparse-64G 1 "bios '$tmp/sparse' \\(68719476736 bytes\\) is larger than guest memory" -- \
  run --bios "$tmp/sparse"
# A disk is never read whole, and sparse images are the usual kind: the
# guest runs (and ends with its own failure code).
LIMIT=10 expect drive-sparse-64G-is-fine 5 "code 5" -- run --bios "$isa/negative/fail_code.elf" --drive "file=$tmp/sparse"

# SIGTERM stops a running guest cleanly (exit status 6, a message), not
# the process: no thread of rvisor may take the signal's default action.
"$rvisor" run "${K[@]}" --initrd "$guest/initrd.gz" --append "console=ttyS0 quiet" </dev/null >"$tmp/out" 2>"$tmp/err" &
pid=$!
sleep 1
kill -TERM "$pid"
wait "$pid"; rc=$?
if [ "$rc" = 6 ] && grep -q "signal" "$tmp/err"; then
  passed=$((passed + 1)); echo "PASS sigterm-stops-the-guest"
else
  failed=$((failed + 1)); echo "FAIL sigterm-stops-the-guest: exit $rc (want 6), stderr:"; head -c 600 "$tmp/err"; echo
fi

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
