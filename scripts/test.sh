#!/usr/bin/env bash
# The test command: installs what is missing, then builds and runs every test in three
# variants: the normal build (all tests), AddressSanitizer + UndefinedBehaviorSanitizer with
# fence-signalling checks (all tests), and ThreadSanitizer (the stress and concurrency tests);
# between them a clang build with -Wthread-safety as an error checks the lock annotations.
# After the normal build, scripts/consumers.sh uses zbuf as an installed library from outside
# the tree (static and shared, CMake package and pkg-config, a dlopen plugin, Debian packages).
#
# The normal and AddressSanitizer variants also replay every fuzz corpus and saved crash input
# (fuzz/corpus, fuzz/crashes: the Fuzz.Replay.* tests).
#
# After the normal variant, the kernel lane (scripts/qemu-lane.sh) boots Debian's Linux 6.12
# under QEMU and runs the uAPI scenarios on the real kernel and on the emulation (a few seconds;
# skipped with a message only where QEMU or the kernel package cannot be had).
#
# Usage: scripts/test.sh [--repeat-tsan N | --fuzz [SECONDS]]
#   --repeat-tsan N (or ZBUF_TSAN_REPEAT=N): only the ThreadSanitizer variant, running each
#   stress and concurrency test N times (ctest --repeat until-fail:N) to shake out rare races.
#   --fuzz [SECONDS] (or ZBUF_FUZZ_SECONDS=SECONDS): only the fuzzers: installs clang, builds
#   the libFuzzer targets (build/fuzz) and runs each for SECONDS (default 180), one at a time,
#   on a copy of its corpus; a crash input is left in build/fuzz/crashes/<target>/ and fails
#   the run (docs/fuzzing.md says how to keep it as a regression input).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
repeat=${ZBUF_TSAN_REPEAT:-}
fuzz=${ZBUF_FUZZ_SECONDS:-}
usage="usage: $0 [--repeat-tsan N | --fuzz [SECONDS]]"
while (($#)); do
  case "$1" in
    --repeat-tsan) repeat=${2:-}; shift 2 || shift ;;
    --repeat-tsan=*) repeat=${1#*=}; shift ;;
    --fuzz)
      if [[ "${2:-}" =~ ^[0-9]+$ ]]; then fuzz=$2; shift 2; else fuzz=180; shift; fi ;;
    --fuzz=*) fuzz=${1#*=}; shift ;;
    *) echo "$usage" >&2; exit 2 ;;
  esac
done
if [[ -n "$repeat" && ! "$repeat" =~ ^[1-9][0-9]*$ ]]; then
  echo "$0: the repeat count must be a positive integer, not '$repeat'" >&2
  exit 2
fi
if [[ -n "$fuzz" && ! "$fuzz" =~ ^[1-9][0-9]*$ ]]; then
  echo "$0: the fuzzing time must be a positive number of seconds, not '$fuzz'" >&2
  exit 2
fi
if [[ -n "$fuzz" && -n "$repeat" ]]; then
  echo "$usage" >&2
  exit 2
fi
if [[ -n "$fuzz" ]]; then
  exec "$root/scripts/fuzz.sh" "$fuzz"
fi
"$root/scripts/deps.sh"
jobs=$(nproc)
# Paths relative to the tree in ccache's hash, so the shared build of scripts/consumers.sh
# reuses the release build's objects (the compile lines are the same).
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$root} CCACHE_NOHASHDIR=${CCACHE_NOHASHDIR:-true}
run() {  # run VARIANT [ctest args...]
  local variant=$1
  shift
  echo "== zbuf: $variant build =="
  "$root/scripts/build.sh" "$variant"
  echo "== zbuf: $variant tests =="
  (cd "$root/build/$variant" && ctest --output-on-failure -j "$jobs" --timeout 900 "$@")
}
# Every zbuf context watches its files with one inotify instance; the parallel test processes
# can pass the default 128 instances per user (docs/uapi.md). Raise it where we may.
if [ "$(id -u)" -eq 0 ] && [ "$(cat /proc/sys/fs/inotify/max_user_instances)" -lt 1024 ]; then
  echo 1024 > /proc/sys/fs/inotify/max_user_instances || true
fi
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}
if [[ -n "$repeat" ]]; then
  run tsan -L 'stress|concurrency' --repeat "until-fail:$repeat"
  echo "== zbuf: every stress and concurrency test passed $repeat times under ThreadSanitizer =="
  exit 0
fi
run release
echo "== zbuf: kernel lane (Debian's Linux 6.12 under QEMU: emulation and kernel, call by call) =="
lane_rc=0
"$root/scripts/qemu-lane.sh" "$root/build/release" || lane_rc=$?
if [[ "$lane_rc" -ne 0 && "$lane_rc" -ne 77 ]]; then
  exit "$lane_rc"
fi
echo "== zbuf: clang thread-safety analysis build (zbuf/base/mutex.h annotations) =="
"$root/scripts/build.sh" tsa
echo "== zbuf: installed-library consumers =="
"$root/scripts/consumers.sh"
run asan
run tsan -L 'stress|concurrency'
echo "== zbuf: all test variants passed =="
