#!/usr/bin/env bash
# Confinement of `rvisor run` and `rvisor serve` seen from outside: once set
# up, each runs with no_new_privs, a seccomp filter and no capabilities
# (/proc/PID/status says so), still runs its guests, and --no-sandbox turns
# it all off. That a forbidden call is refused, with its name on stderr, is
# shown by tests/unit/test_sandbox.c.
# usage: tests/cli/sandbox.sh RVISOR   (guest from $RVISOR_GUEST)
set -u
rvisor=${1:-build/rvisor}
guest=${RVISOR_GUEST:-$HOME/.cache/rvisor/default}
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
  rm -rf "$tmp"
}
trap cleanup EXIT
passed=0 failed=0
pass() { passed=$((passed + 1)); echo "PASS $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1: $2"; }

# field PID NAME: the value of NAME in /proc/PID/status.
field() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status" 2>/dev/null; }

# wait_for FILE PATTERN: up to 60 s for PATTERN to appear in FILE.
wait_for() {
  for _ in $(seq 600); do
    grep -q -- "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

# Emptying the bounding set needs CAP_SETPCAP (root has it).
bounding_droppable=no
[ "$(id -u)" = 0 ] && bounding_droppable=yes

# confined NAME PID: the process is under the sandbox.
confined() {
  local name=$1 pid=$2 nnp seccomp eff prm bnd
  nnp=$(field "$pid" NoNewPrivs); seccomp=$(field "$pid" Seccomp)
  eff=$(field "$pid" CapEff); prm=$(field "$pid" CapPrm); bnd=$(field "$pid" CapBnd)
  if [ "$nnp" = 1 ] && [ "$seccomp" = 2 ] && [ "$eff" = 0000000000000000 ] && [ "$prm" = 0000000000000000 ] &&
     { [ "$bounding_droppable" = no ] || [ "$bnd" = 0000000000000000 ]; }; then
    pass "$name"
  else
    fail "$name" "NoNewPrivs=$nnp Seccomp=$seccomp CapEff=$eff CapPrm=$prm CapBnd=$bnd"
  fi
}

# unconfined NAME PID: --no-sandbox left the process alone.
unconfined() {
  local name=$1 pid=$2 nnp seccomp
  nnp=$(field "$pid" NoNewPrivs); seccomp=$(field "$pid" Seccomp)
  if [ "$nnp" = 0 ] && [ "$seccomp" = 0 ]; then pass "$name"; else fail "$name" "NoNewPrivs=$nnp Seccomp=$seccomp"; fi
}

# expect_exit NAME PID STATUS: waits up to 60 s for PID to exit with STATUS.
expect_exit() {
  local name=$1 pid=$2 want=$3 rc
  for _ in $(seq 600); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  wait "$pid"; rc=$?
  if [ "$rc" = "$want" ]; then pass "$name"; else fail "$name" "exit $rc, want $want"; fi
}

"$rvisor" run --help | grep -q -- "--no-sandbox" && pass "run --help documents --no-sandbox" || fail "run --help" "no --no-sandbox"
"$rvisor" serve --help | grep -q -- "--no-sandbox" && pass "serve --help documents --no-sandbox" || fail "serve --help" "no --no-sandbox"

# ---- rvisor run ----
boot=(--kernel "$guest/Image" --initrd "$guest/initrd.gz" --append "console=ttyS0 quiet" --mem 128M)
truncate -s 16M "$tmp/disk.img"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

# run_guest NAME CHECK ARGS...: boots the default guest (two harts, a disk,
# user networking with a port forward) with commands typed through a FIFO,
# checks the process, has the guest write its disk and power off (0).
run_guest() {
  local name=$1 check=$2
  shift 2
  local fifo=$tmp/$name.in
  mkfifo "$fifo"
  "$rvisor" run "${boot[@]}" --cpus 2 --drive "file=$tmp/disk.img" --net "user,hostfwd=tcp:127.0.0.1:$port-:80" "$@" \
    <"$fifo" >"$tmp/$name.out" 2>"$tmp/$name.err" &
  local pid=$!
  pids+=("$pid")
  exec 3>"$fifo"
  if wait_for "$tmp/$name.out" "init reached"; then
    "$check" "$name: /proc/PID/status" "$pid"
    echo "echo $name-wrote > /dev/vda; sync; poweroff -f" >&3
    expect_exit "$name: the guest writes its disk and powers off (0)" "$pid" 0
    if [ "$(head -c $((${#name} + 6)) "$tmp/disk.img")" = "$name-wrote" ]; then pass "$name: the disk holds what the guest wrote"
    else fail "$name: the disk" "holds '$(head -c 20 "$tmp/disk.img" | tr -cd '[:print:]')'"; fi
  else
    fail "$name" "the guest did not boot: $(tail -c 400 "$tmp/$name.err")"
    kill -KILL "$pid" 2>/dev/null
  fi
  exec 3>&-
  if grep -q "rvisor: sandbox:" "$tmp/$name.err"; then fail "$name: stderr" "$(grep sandbox: "$tmp/$name.err")"; fi
}

run_guest run-sandboxed confined
run_guest run-unsandboxed unconfined --no-sandbox

# ---- rvisor serve ----
# serve_monitor NAME CHECK ARGS...: a monitor, one VM made after the filter
# (kernel, initrd, a read-write disk, user networking), then shut down (0).
serve_monitor() {
  local name=$1 check=$2
  shift 2
  local sock=$tmp/$name.sock
  "$rvisor" serve --socket "$sock" --machine-mem 512M "$@" </dev/null >"$tmp/$name.out" 2>"$tmp/$name.err" &
  local pid=$!
  pids+=("$pid")
  if ! wait_for "$tmp/$name.err" "monitor serving"; then
    fail "$name" "the monitor did not start: $(tail -c 400 "$tmp/$name.err")"
    return
  fi
  "$check" "$name: /proc/PID/status" "$pid"
  local c=(--socket "$sock")
  if "$rvisor" create vm "${boot[@]}" --drive "file=$tmp/disk.img" --net user "${c[@]}" >/dev/null &&
     "$rvisor" start vm "${c[@]}" >/dev/null &&
     "$rvisor" pause vm "${c[@]}" >/dev/null && "$rvisor" resume vm "${c[@]}" >/dev/null &&
     "$rvisor" stats vm "${c[@]}" | grep -q "state: *running" &&
     "$rvisor" destroy vm "${c[@]}" >/dev/null; then
    pass "$name: a VM made, run, paused, resumed and destroyed"
  else
    fail "$name: a VM" "$(tail -c 400 "$tmp/$name.err")"
  fi
  "$rvisor" shutdown "${c[@]}" >/dev/null
  expect_exit "$name: shutdown ends it with status 0" "$pid" 0
  if grep -q "rvisor: sandbox:" "$tmp/$name.err"; then fail "$name: stderr" "$(grep sandbox: "$tmp/$name.err")"; fi
}

serve_monitor serve-sandboxed confined
serve_monitor serve-unsandboxed unconfined --no-sandbox

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
