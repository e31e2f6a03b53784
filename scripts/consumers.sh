#!/usr/bin/env bash
# zbuf as an installed library, used from outside the tree (run by scripts/test.sh after the
# release build; README "Using zbuf as a library"):
#  1. static: the release build (position-independent static libraries) installed into a
#     temporary prefix; a find_package(zbuf) consumer, a pkg-config consumer, and a plugin (a
#     shared object with zbuf linked in) loaded with dlopen: all three run and pass.
#  2. shared: one more build of the libraries and the tool with BUILD_SHARED_LIBS=ON
#     (build/shared, no tests), installed into another prefix: the libraries carry their SONAME
#     and export the public API only; the same three consumers run against them.
#  3. Debian packages: cpack -G DEB on the shared build gives libzbuf, libzbuf-dev and zbuf;
#     dpkg installs them into a scratch root (its own admin directory, a copy of this machine's
#     package status for the dependencies), the installed tool and a pkg-config consumer run
#     from there, and dpkg removes them again, leaving no file behind.
# Usage: scripts/consumers.sh [--no-deb]   (ZBUF_RELEASE_BUILD: the release build directory)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
release=${ZBUF_RELEASE_BUILD:-$root/build/release}
shared=$root/build/shared
deb=1
[[ "${1:-}" == "--no-deb" ]] && deb=0
export CCACHE_DIR=${CCACHE_DIR:-$root/build/.ccache}
jobs=$(nproc)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/zbuf-consumers.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
src=$root/tests/consumers
version=$(sed -n 's/^project(zbuf VERSION \([0-9.]*\).*/\1/p' "$root/CMakeLists.txt")

say() { echo "== zbuf consumers: $* =="; }
die() { echo "zbuf consumers: FAILED: $*" >&2; exit 1; }

# consume PREFIX OUT [--static]: the three consumers against the zbuf installed in PREFIX.
consume() {
  local prefix=$1 out=$2 static=${3:-}
  cmake -S "$src" -B "$out/cmake" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release \
    >"$out.log" 2>&1 || { cat "$out.log"; die "configuring the find_package consumer"; }
  cmake --build "$out/cmake" -j "$jobs" >>"$out.log" 2>&1 ||
    { cat "$out.log"; die "building the find_package consumer"; }
  "$out/cmake/zbuf_consumer" || die "the find_package consumer"
  "$out/cmake/zbuf_plugin_host" "$out/cmake/libzbuf_consumer_plugin.so" || die "the dlopen plugin"
  local pc
  pc=$(dirname "$(find "$prefix" -name zbuf.pc | head -n1)")
  [[ -f "$pc/zbuf.pc" ]] || die "no zbuf.pc under $prefix"
  [[ "$(PKG_CONFIG_PATH=$pc pkg-config --modversion zbuf)" == "$version" ]] ||
    die "zbuf.pc does not say version $version"
  # shellcheck disable=SC2046  # pkg-config's output is a list of words
  c++ -std=c++20 $(PKG_CONFIG_PATH=$pc pkg-config --cflags zbuf) "$src/main.cpp" "$src/consumer.cpp" \
    -o "$out/pc_consumer" $(PKG_CONFIG_PATH=$pc pkg-config --libs $static zbuf) ||
    die "building the pkg-config consumer"
  "$out/pc_consumer" || die "the pkg-config consumer"
}

say "static libraries, installed from $release"
[[ -f "$release/CMakeCache.txt" ]] || die "no release build in $release (scripts/build.sh release)"
cmake --install "$release" --prefix "$tmp/static" >/dev/null
for l in base core heaps uapi devices stream; do
  [[ -f "$tmp/static/lib/libzbuf_$l.a" ]] || die "libzbuf_$l.a not installed"
done
[[ -x "$tmp/static/bin/zbuf" && -f "$tmp/static/include/zbuf/uapi/calls.h" ]] ||
  die "the tool or the headers are not installed"
grep -q "$version" <<<"$("$tmp/static/bin/zbuf" -V)" || die "the installed zbuf -V does not say $version"
consume "$tmp/static" "$tmp/static-consumers" --static

say "shared libraries (build/shared)"
cmake -S "$root" -B "$shared" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_SHARED_LIBS=ON \
  -DZBUF_BUILD_TESTS=OFF -DZBUF_BUILD_BENCH=OFF -DCMAKE_INSTALL_PREFIX=/usr >/dev/null
cmake --build "$shared" -j "$jobs"
cmake --install "$shared" --prefix "$tmp/shared" >/dev/null
libdir=$(dirname "$(find "$tmp/shared" -name 'libzbuf_base.so' | head -n1)")
for l in base core heaps uapi devices stream; do
  lib=$libdir/libzbuf_$l.so
  soname=$(readlink "$lib")  # the development link names the SONAME link
  [[ "$soname" == libzbuf_$l.so.* && -e "$libdir/$soname" ]] || die "$lib: no SONAME link"
  grep -q "SONAME.*\[$soname\]" <<<"$(readelf -d "$lib")" || die "libzbuf_$l.so has no SONAME $soname"
done
# Visibility: the public API is exported, what src/ declares alone is not.
exports=$(nm -D --defined-only -C "$libdir/libzbuf_uapi.so")
grep -q 'zbuf::uapi::dmaBufSync(' <<<"$exports" || die "libzbuf_uapi.so does not export dmaBufSync"
if grep -q 'addHeapNodes' <<<"$exports"; then
  die "libzbuf_uapi.so exports a private function (detail::addHeapNodes)"
fi
export LD_LIBRARY_PATH=$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
grep -q "$version" <<<"$("$tmp/shared/bin/zbuf" -V)" || die "the shared zbuf -V does not say $version"
consume "$tmp/shared" "$tmp/shared-consumers"
unset LD_LIBRARY_PATH

if ((deb == 0)); then
  say "Debian packages skipped (--no-deb)"
  exit 0
fi
say "Debian packages (cpack -G DEB, dpkg in a scratch root)"
(cd "$shared" && cpack -G DEB -B "$tmp/deb" >"$tmp/cpack.log" 2>&1) ||
  { cat "$tmp/cpack.log"; die "cpack -G DEB"; }
arch=$(dpkg --print-architecture)
debs=()
for p in libzbuf libzbuf-dev zbuf; do
  f=$tmp/deb/${p}_${version}_$arch.deb
  [[ -f "$f" ]] || die "cpack made no $p package ($(ls "$tmp/deb"))"
  debs+=("$f")
done
# (listings read whole: grep -q closing the pipe early would kill dpkg-deb under pipefail)
lib_files=$(dpkg-deb -c "$tmp/deb/libzbuf_${version}_$arch.deb")
grep -q "libzbuf_base.so.${version}" <<<"$lib_files" || die "libzbuf does not hold the shared libraries"
grep -q 'libfmt' <<<"$(dpkg-deb -f "$tmp/deb/libzbuf_${version}_$arch.deb" Depends)" ||
  die "libzbuf does not depend on libfmt"
grep -q 'zbufConfig.cmake' <<<"$(dpkg-deb -c "$tmp/deb/libzbuf-dev_${version}_$arch.deb")" ||
  die "libzbuf-dev does not hold the CMake package"
scratch=$tmp/root
admin=$scratch/var/lib/dpkg
mkdir -p "$admin/info" "$admin/updates" "$admin/triggers"
cp /var/lib/dpkg/status "$admin/status"  # the dependencies, as this Debian has them
touch "$admin/available"
# The maintainer scripts (libzbuf's postinst and postrm run ldconfig) run outside a chroot
# (there is no /bin/sh in the scratch root) and find a stand-in ldconfig that only counts its
# calls, so nothing of this machine changes.
mkdir -p "$tmp/bin"
printf '#!/bin/sh\necho "$*" >>"%s"\n' "$tmp/ldconfig.calls" >"$tmp/bin/ldconfig"
chmod +x "$tmp/bin/ldconfig"
dpkg_scratch() {
  PATH=$tmp/bin:$PATH dpkg --force-not-root --force-script-chrootless --instdir="$scratch" \
    --admindir="$admin" --log=/dev/null "$@"
}
dpkg_scratch -i "${debs[@]}" >"$tmp/dpkg.log" 2>&1 || { cat "$tmp/dpkg.log"; die "dpkg -i"; }
for p in libzbuf libzbuf-dev zbuf; do
  grep -q 'install ok installed' <<<"$(dpkg-query --admindir="$admin" -W -f='${Status}' "$p")" ||
    die "$p is not installed in the scratch root"
done
[[ -s "$tmp/ldconfig.calls" ]] || die "libzbuf's postinst did not run ldconfig"
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo "$(uname -m)-linux-gnu")
grep -q "$version" <<<"$(LD_LIBRARY_PATH=$scratch/usr/lib/$multiarch "$scratch/usr/bin/zbuf" -V)" ||
  die "the packaged zbuf does not run"
pc=$scratch/usr/lib/$multiarch/pkgconfig
# shellcheck disable=SC2046
c++ -std=c++20 $(PKG_CONFIG_PATH=$pc pkg-config --cflags zbuf) "$src/main.cpp" "$src/consumer.cpp" \
  -o "$tmp/deb_consumer" $(PKG_CONFIG_PATH=$pc pkg-config --libs zbuf) ||
  die "building against the packaged libzbuf-dev"
LD_LIBRARY_PATH=$scratch/usr/lib/$multiarch "$tmp/deb_consumer" || die "the consumer of the packages"
dpkg_scratch --purge zbuf libzbuf-dev libzbuf >>"$tmp/dpkg.log" 2>&1 ||
  { cat "$tmp/dpkg.log"; die "dpkg --purge"; }
left=$(find "$scratch" -path "$scratch/var" -prune -o ! -type d -print)
[[ -z "$left" ]] || die "files left after dpkg --purge: $left"
say "all passed"
