#!/usr/bin/env bash
# The fuzzing mode of the test command (scripts/test.sh --fuzz [SECONDS]; docs/fuzzing.md):
# installs clang, builds the libFuzzer targets (build/fuzz) and runs each for SECONDS, one at a
# time, single job, starting from a copy of its seed corpus and saved crash inputs. Exits 1 if a
# target found a crash (left in build/fuzz/crashes/<target>/).
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]   (default 180 s, every target)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-180}
shift || true
"$root/scripts/deps.sh" --fuzz
"$root/scripts/build.sh" fuzz
targets=("$@")
if ((${#targets[@]} == 0)); then
  targets=(dma_buf sync_file heap udmabuf iio functionfs_ep0 functionfs_ep core_ops daemon)
fi
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
failed=()
for t in "${targets[@]}"; do
  work="$root/build/fuzz/corpus/$t"
  crashes="$root/build/fuzz/crashes/$t"
  mkdir -p "$work" "$crashes"
  cp -n "$root/fuzz/corpus/$t/"* "$work/" 2>/dev/null || true
  cp -n "$root/fuzz/crashes/$t/"* "$work/" 2>/dev/null || true
  echo "== zbuf: fuzzing $t for $seconds s =="
  if ! "$root/build/fuzz/fuzz/fuzz_$t" -max_total_time="$seconds" -timeout=30 -rss_limit_mb=4096 \
      -max_len=4096 -print_final_stats=1 -artifact_prefix="$crashes/" "$work"; then
    failed+=("$t")
  fi
done
if ((${#failed[@]})); then
  echo "== zbuf: the fuzzers found crashes in: ${failed[*]} (inputs in build/fuzz/crashes/) =="
  exit 1
fi
echo "== zbuf: every fuzz target ran $seconds s without a crash =="
