#!/usr/bin/env bash
# Configures and builds one variant: release (default), asan (AddressSanitizer +
# UndefinedBehaviorSanitizer, checked build), tsan (ThreadSanitizer, checked build) or fuzz (clang,
# the libFuzzer targets with AddressSanitizer + UndefinedBehaviorSanitizer, checked; no tests) or
# tsa (clang with -Wthread-safety as an error, checked: the libraries and the tool, no tests: the
# lock annotations of zbuf/base/mutex.h are checked at compile time; nothing to run).
# Usage: scripts/build.sh [release|asan|tsan|fuzz|tsa] [extra cmake args...]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
variant=${1:-release}
shift || true
case "$variant" in
  release) args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo) ;;
  asan) args=(-DCMAKE_BUILD_TYPE=Debug -DZBUF_SANITIZE=address,undefined -DZBUF_CHECKED=ON
              -DZBUF_BUILD_BENCH=OFF) ;;
  tsan) args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DZBUF_SANITIZE=thread -DZBUF_CHECKED=ON
              -DZBUF_BUILD_BENCH=OFF) ;;
  fuzz) args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DZBUF_SANITIZE=address,undefined -DZBUF_CHECKED=ON
              -DZBUF_FUZZ=ON -DZBUF_BUILD_TESTS=OFF -DZBUF_BUILD_BENCH=OFF)
        export CC=clang CXX=clang++ ;;  # read by the first configure of build/fuzz
  tsa) args=(-DCMAKE_BUILD_TYPE=Debug -DZBUF_CHECKED=ON -DZBUF_BUILD_TESTS=OFF -DZBUF_BUILD_BENCH=OFF
             "-DCMAKE_CXX_FLAGS=-Wthread-safety -Werror=thread-safety")
       export CC=clang CXX=clang++ ;;  # read by the first configure of build/tsa
  *) echo "unknown variant $variant" >&2; exit 2 ;;
esac
export CCACHE_DIR=${CCACHE_DIR:-$root/build/.ccache}
cmake -S "$root" -B "$root/build/$variant" "${args[@]}" "$@" >/dev/null
cmake --build "$root/build/$variant" -j "$(nproc)"
