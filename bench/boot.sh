#!/usr/bin/env bash
# Boot time and CPU-bound workloads, rvisor beside qemu-system-riscv64, same kernel and initramfs.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
"$here/../scripts/setup.sh"
python3 "$here/boot.py" "$@"
python3 "$here/cpu.py"
python3 "$here/idle.py"
