#!/usr/bin/env bash
# Builds the default rvisor guest from Debian packages: a Linux 6.1 kernel
# (linux-source-6.1, tinyconfig + linux.fragment) and a static busybox
# initramfs. Results are cached under $RVISOR_CACHE (default ~/.cache/rvisor)
# keyed by a hash of their inputs, so a second run does nothing.
# Prints the directory holding Image and initrd.gz on its last line.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${RVISOR_CACHE:-$HOME/.cache/rvisor}
jobs=$(nproc)
cross=riscv64-linux-gnu-
mkdir -p "$cache"

pkgver() { dpkg-query -W -f '${Version}' "$1"; }
hash_of() { cat "$@" | sha256sum | cut -c1-16; }

kernel_key=$( { pkgver linux-source-6.1; pkgver gcc-riscv64-linux-gnu; cat "$here/linux.fragment"; } | sha256sum | cut -c1-16)
kernel_dir=$cache/kernel-$kernel_key
busybox_key=$( { pkgver gcc-riscv64-linux-gnu; cat "$here/busybox.fragment"; } | sha256sum | cut -c1-16)
busybox_dir=$cache/busybox-$busybox_key
initrd_key=$( { echo "$busybox_key"; cat "$here/init" "$here/udhcpc.script"; } | sha256sum | cut -c1-16)
guest_dir=$cache/guest-$kernel_key-$initrd_key

build_kernel() {
  [ -f "$kernel_dir/Image" ] && return 0
  echo "guest: building Linux 6.1 kernel (about 5 minutes on 2 cores)" >&2
  local work=$cache/work-kernel
  rm -rf "$work" && mkdir -p "$work"
  tar -C "$work" -xf /usr/src/linux-source-6.1.tar.xz
  local src=$work/linux-source-6.1
  make -C "$src" -s ARCH=riscv CROSS_COMPILE=$cross tinyconfig >&2
  (cd "$src" && ARCH=riscv scripts/kconfig/merge_config.sh -m .config "$here/linux.fragment" >/dev/null)
  make -C "$src" -s ARCH=riscv CROSS_COMPILE=$cross olddefconfig >&2
  # Fail loudly if an option we asked for did not survive olddefconfig.
  local missing=0
  while IFS= read -r line; do
    case "$line" in CONFIG_*) grep -qx -- "$line" "$src/.config" || { echo "guest: kernel option lost: $line" >&2; missing=1; } ;; esac
  done < "$here/linux.fragment"
  [ $missing = 0 ] || return 1
  make -C "$src" -s ARCH=riscv CROSS_COMPILE=$cross -j"$jobs" Image >&2
  mkdir -p "$kernel_dir.tmp"
  cp "$src/arch/riscv/boot/Image" "$src/.config" "$kernel_dir.tmp/"
  rm -rf "$kernel_dir" && mv "$kernel_dir.tmp" "$kernel_dir"
  rm -rf "$work"
}

fetch_busybox_source() {
  # apt-get source with a private deb-src list, leaving the host's apt configuration alone.
  local aptdir=$1/apt
  mkdir -p "$aptdir/lists/partial"
  cat > "$aptdir/bookworm-src.sources" <<SRC
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  local opts=(-o "Dir::Etc::SourceParts=$aptdir" -o "Dir::Etc::SourceList=/dev/null" -o "Dir::State::Lists=$aptdir/lists")
  apt-get "${opts[@]}" update -q >&2
  (cd "$1" && apt-get "${opts[@]}" source -q --download-only busybox >&2 && dpkg-source -x busybox_*.dsc src >&2)
}

build_busybox() {
  [ -x "$busybox_dir/busybox" ] && return 0
  echo "guest: building static busybox from Debian's source package" >&2
  local work=$cache/work-busybox
  rm -rf "$work" && mkdir -p "$work"
  fetch_busybox_source "$work"
  local src=$work/src
  make -C "$src" -s defconfig >&2
  while IFS= read -r line; do
    case "$line" in
      CONFIG_*=*) sed -i "/^${line%%=*}=/d; /^# ${line%%=*} is not set/d" "$src/.config"; echo "$line" >> "$src/.config" ;;
      "# CONFIG_"*" is not set") name=${line#\# }; name=${name%% *}; sed -i "/^$name=/d" "$src/.config"; echo "$line" >> "$src/.config" ;;
    esac
  done < "$here/busybox.fragment"
  make -C "$src" -s oldconfig < <(yes "") >/dev/null
  make -C "$src" -s CROSS_COMPILE=$cross -j"$jobs" busybox busybox.links >&2
  mkdir -p "$busybox_dir.tmp" && cp "$src/busybox" "$src/busybox.links" "$busybox_dir.tmp/"
  rm -rf "$busybox_dir" && mv "$busybox_dir.tmp" "$busybox_dir"
  rm -rf "$work"
}

build_initrd() {
  [ -f "$guest_dir/initrd.gz" ] && [ -f "$guest_dir/Image" ] && return 0
  local root=$cache/work-initrd
  rm -rf "$root" && mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,root,etc,mnt}
  cp "$busybox_dir/busybox" "$root/bin/busybox"
  # busybox --install would have to run on the target; link from the build's applet list instead.
  while IFS= read -r path; do
    [ -e "$root$path" ] || ln -s /bin/busybox "$root$path"
  done < "$busybox_dir/busybox.links"
  cp "$here/init" "$root/init" && chmod 755 "$root/init"
  mkdir -p "$root/usr/share/udhcpc"
  install -m 755 "$here/udhcpc.script" "$root/usr/share/udhcpc/default.script"
  mkdir -p "$guest_dir.tmp"
  (cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --owner=0:0 --quiet | gzip -9n) > "$guest_dir.tmp/initrd.gz"
  cp "$kernel_dir/Image" "$guest_dir.tmp/Image"
  rm -rf "$guest_dir" && mv "$guest_dir.tmp" "$guest_dir"
  rm -rf "$root"
}

build_kernel
build_busybox
build_initrd
ln -sfn "$guest_dir" "$cache/default"
echo "$guest_dir"
