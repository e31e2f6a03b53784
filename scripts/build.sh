#!/usr/bin/env bash
# Configures and builds one variant: release (default), asan (AddressSanitizer +
# UndefinedBehaviorSanitizer, checked build) or tsan (ThreadSanitizer, checked build).
# Usage: scripts/build.sh [release|asan|tsan] [extra cmake args...]
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
  *) echo "unknown variant $variant" >&2; exit 2 ;;
esac
export CCACHE_DIR=${CCACHE_DIR:-$root/build/.ccache}
cmake -S "$root" -B "$root/build/$variant" "${args[@]}" "$@" >/dev/null
cmake --build "$root/build/$variant" -j "$(nproc)"
