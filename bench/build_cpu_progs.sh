#!/usr/bin/env bash
# Builds the guest programs of bench/compiled.py from Debian 12 source
# packages (apt-get source, Debian's patches applied): bzip2, xz (xz-utils)
# and zstd (libzstd), each static for riscv64 with riscv64-linux-gnu-gcc -O2.
# Also makes the input the benchmark compresses: the four upstream tarballs
# (bzip2, xz-utils, zstd, lz4), unpacked to one tar stream of C source,
# documentation and test files (about 22 MB).
# Output is cached under $RVISOR_CACHE (default ~/.cache/rvisor) keyed by a
# hash of this script and the cross compiler's version, so a second run does
# nothing. Prints the directory holding bin/ and corpus.tar on its last line.
set -euo pipefail
cache=${RVISOR_CACHE:-$HOME/.cache/rvisor}
jobs=$(nproc)
cross=riscv64-linux-gnu-
cflags="-O2"
mkdir -p "$cache"

# Source package versions: the ones Debian 12 (bookworm) ships. If the archive
# no longer has one, the current version is fetched instead, with a warning
# (the versions used are written to VERSIONS in the output).
sources=(bzip2=1.0.8-5 xz-utils=5.4.1-1+deb12u1 libzstd=1.5.4+dfsg2-5 lz4=1.9.4-1)

packages=(gcc-riscv64-linux-gnu binutils-riscv64-linux-gnu libc6-dev-riscv64-cross
          make dpkg-dev patch xz-utils debian-archive-keyring e2fsprogs)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "cpu-progs: installing ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
fi

key=$( { dpkg-query -W -f '${Version}' gcc-riscv64-linux-gnu; cat "$0"; } | sha256sum | cut -c1-16)
out=$cache/cpu-progs-$key
if [ -x "$out/bin/zstd" ] && [ -f "$out/corpus.tar" ]; then
  echo "$out"
  exit 0
fi

echo "cpu-progs: building bzip2, xz and zstd from Debian's source packages" >&2
work=$cache/work-cpu-progs
rm -rf "$work" "$out.tmp" && mkdir -p "$work/apt/lists/partial" "$work/src" "$out.tmp/bin"

# apt-get source with a private deb-src list, leaving the host's apt
# configuration alone (as guests/build.sh does for busybox).
cat > "$work/apt/bookworm-src.sources" <<SRC
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
opts=(-o "Dir::Etc::SourceParts=$work/apt" -o "Dir::Etc::SourceList=/dev/null" -o "Dir::State::Lists=$work/apt/lists")
apt-get "${opts[@]}" update -q >&2
: > "$out.tmp/VERSIONS"
for s in "${sources[@]}"; do
  name=${s%%=*}
  if ! (cd "$work/src" && apt-get "${opts[@]}" source -q --download-only "$s" >&2); then
    echo "cpu-progs: warning: $s is gone from the archive, using the current $name" >&2
    (cd "$work/src" && apt-get "${opts[@]}" source -q --download-only "$name" >&2)
  fi
  dsc=$(ls "$work/src/${name}"_*.dsc)
  (cd "$work/src" && dpkg-source -x "$dsc" "$name" >&2)
  ver=$(basename "$dsc" .dsc); ver=${ver#${name}_}
  echo "$name $ver" >> "$out.tmp/VERSIONS"
done

cc=${cross}gcc
# bzip2: its own Makefile for libbz2.a and bzip2.o (Debian's makes the program
# depend on the shared library), linked here.
make -C "$work/src/bzip2" -s -j"$jobs" CC="$cc" AR=${cross}ar RANLIB=${cross}ranlib \
  CFLAGS="$cflags -D_FILE_OFFSET_BITS=64" libbz2.a bzip2.o >&2
"$cc" $cflags -static -o "$out.tmp/bin/bzip2" "$work/src/bzip2/bzip2.o" "$work/src/bzip2/libbz2.a"

# xz: autotools; the xz program with liblzma linked in statically.
(cd "$work/src/xz-utils" && ./configure -q --host=riscv64-linux-gnu --disable-shared --enable-static \
   --disable-nls --disable-doc --disable-scripts --disable-xzdec --disable-lzmadec --disable-lzmainfo \
   --disable-lzma-links CFLAGS="$cflags" >&2)
# -all-static: libtool's word for gcc's -static (its own -static means something else).
make -C "$work/src/xz-utils" -s -j"$jobs" LDFLAGS=-all-static >&2
cp "$work/src/xz-utils/src/xz/xz" "$out.tmp/bin/xz"

# zstd: the full CLI (programs/zstd) without zlib/lzma/lz4 formats or threads.
make -C "$work/src/libzstd/programs" -s -j"$jobs" CC="$cc" CFLAGS="$cflags" LDFLAGS=-static \
  HAVE_ZLIB=0 HAVE_LZMA=0 HAVE_LZ4=0 HAVE_THREAD=0 zstd >&2
cp "$work/src/libzstd/programs/zstd" "$out.tmp/bin/zstd"

${cross}strip "$out.tmp/bin/"*
for b in "$out.tmp/bin/"*; do
  if ${cross}readelf -l "$b" | grep -q INTERP; then echo "cpu-progs: $b is not static" >&2; exit 1; fi
done

# The input: the upstream tarballs, unpacked, one after the other.
for s in bzip2 libzstd xz-utils lz4; do
  f=$(ls "$work/src/${s}"_*.orig.tar.*| grep -v '\.asc$')
  case "$f" in
    *.gz) gzip -dc "$f" ;;
    *.xz) xz -dc "$f" ;;
    *.bz2) bzip2 -dc "$f" ;;
  esac
done > "$out.tmp/corpus.tar"
echo "cflags $cflags -static" >> "$out.tmp/VERSIONS"
echo "cc $(${cc} --version | head -1)" >> "$out.tmp/VERSIONS"

rm -rf "$out" && mv "$out.tmp" "$out"
rm -rf "$work"
echo "$out"
