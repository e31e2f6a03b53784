#!/usr/bin/env bash
# The test command: installs what is missing, then builds and runs every test in three
# variants: the normal build (all tests), AddressSanitizer + UndefinedBehaviorSanitizer with
# fence-signalling checks (all tests), and ThreadSanitizer (the stress and concurrency tests).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/deps.sh"
jobs=$(nproc)
run() {  # run VARIANT [ctest args...]
  local variant=$1
  shift
  echo "== zbuf: $variant build =="
  "$root/scripts/build.sh" "$variant"
  echo "== zbuf: $variant tests =="
  (cd "$root/build/$variant" && ctest --output-on-failure -j "$jobs" --timeout 900 "$@")
}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}
run release
run asan
run tsan -L 'stress|concurrency'
echo "== zbuf: all test variants passed =="
