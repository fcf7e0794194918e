#!/usr/bin/env bash
# Sets everything up if needed, then boots the default guest to a shell on
# this terminal. Extra arguments go to `rvisor run` (e.g. --cpus 2 --mem 512M).
# Ctrl-A x quits; `poweroff -f` in the guest ends the run cleanly.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"
guest=$("$root/guests/build.sh" | tail -n 1)
exec "$root/build/rvisor" run --kernel "$guest/Image" --initrd "$guest/initrd.gz" \
  --append "console=ttyS0 quiet" --mem 256M "$@"
