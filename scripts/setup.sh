#!/usr/bin/env bash
# Installs what rvisor needs from Debian 12 packages (only what is missing),
# builds rvisor with Meson into build/, and builds the default guest image
# (cached under ~/.cache/rvisor, rebuilt only when its inputs change).
# Usage: scripts/setup.sh [--no-guest]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

packages=(
  build-essential meson ninja-build pkg-config
  libfdt-dev libcmocka-dev libjson-c-dev libslirp-dev libcapstone-dev libseccomp-dev
  gcc-riscv64-linux-gnu binutils-riscv64-linux-gnu libc6-dev-riscv64-cross
  linux-source-6.1 flex bison bc libssl-dev libelf-dev cpio xz-utils dpkg-dev
  debian-archive-keyring
  qemu-system-misc opensbi python3
  e2fsprogs
  libxxhash-dev
  clang libclang-rt-14-dev
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
fi

build=${RVISOR_BUILD:-$root/build}
if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" "$root" >&2
fi
ninja -C "$build" >&2

if [ "${1:-}" != "--no-guest" ]; then
  "$root/guests/build.sh" >/dev/null
fi
