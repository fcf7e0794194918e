#!/usr/bin/env bash
# Static checks on the built binary.
# usage: tests/static/run.sh RVISOR
set -u
rvisor=${1:-build/rvisor}
passed=0 failed=0
check() { if [ "$2" = ok ]; then passed=$((passed + 1)); echo "PASS $1"; else failed=$((failed + 1)); echo "FAIL $1: $2"; fi; }

# Threaded dispatch must be a chain of jumps: a handler that *calls* the next
# one grows the host stack by a frame per guest instruction until it overflows.
# The only handler allowed an indirect call is op_cross_page, which runs one
# instruction out of a local copy and returns.
dis=$(objdump -d --no-show-raw-insn "$rvisor")
bad=$(echo "$dis" | awk '/^[0-9a-f]+ <.*>:$/ {fn=$2} /call[ \t]+\*/ {print fn}' | grep -E '^<op_' | grep -v '^<op_cross_page>:$' | sort -u | tr '\n' ' ')
if [ -z "$bad" ]; then check "handlers dispatch by jump" ok; else check "handlers dispatch by jump" "indirect calls in $bad"; fi
jumps=$(echo "$dis" | awk '/^[0-9a-f]+ <op_add>:$/,/^$/' | grep -cE 'jmp[[:space:]]+\*')
if [ "$jumps" -ge 1 ]; then check "op_add ends in an indirect jump" ok; else check "op_add ends in an indirect jump" "none found"; fi

# No mutable global state: every VM owns its own. Constant tables of
# function pointers live in .data.rel.ro; nothing may be in .data or .bss.
# The one exception is the sandbox's pointer for its SIGSYS handler, which
# gets no context argument (src/monitor/sandbox.c).
globals=$(objdump -t "$rvisor" | awk '$4 == ".data" || $4 == ".bss" {print $NF}' | grep -vE '^(_|__|completed\.|\.|data_start|stdout|stderr|optarg|optind|opterr|optopt|environ|program_invocation|sandbox_for_sigsys$)' | tr '\n' ' ')
if [ -z "$globals" ]; then check "no mutable globals" ok; else check "no mutable globals" "$globals"; fi

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
