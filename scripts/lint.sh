#!/usr/bin/env bash
# Lint: clang-format (every tracked .cpp and .h must be formatted) and clang-tidy (with the
# release build's compile_commands.json).
#
# Usage: scripts/lint.sh [--all | --changed [BASE] | FILES...]
#   (no argument) or --changed [BASE]: clang-format on every file; clang-tidy on the source files
#       changed since the merge base with BASE (default: main), or, when there are none (on main
#       itself), on those of the last commit. This is what .ci/run runs: clang-tidy over the
#       whole tree takes 20+ minutes on the CI's two cores, the changed files a minute or two.
#   --all: clang-format and clang-tidy on every source file (run it before a release).
#   FILES: both checks on these files only.
# clang-tidy looks at .cpp files in src/, tools/ and examples/ (tests and benchmarks are
# formatted, not tidied); a changed header is tidied through the .cpp of the same name.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
mode=changed
base=main
files=()
case "${1:-}" in
  --all) mode=all ;;
  --changed) base=${2:-main} ;;
  "") ;;
  -*) echo "usage: $0 [--all | --changed [BASE] | FILES...]" >&2; exit 2 ;;
  *) mode=files; files=("$@") ;;
esac
[ -f build/release/compile_commands.json ] || scripts/build.sh release

mapfile -t all < <(git ls-files '*.cpp' '*.h')
case "$mode" in
  files) format=("${files[@]}"); tidy=("${files[@]}") ;;
  all) format=("${all[@]}"); tidy=("${all[@]}") ;;
  changed)
    format=("${all[@]}")
    from=$(git merge-base HEAD "$base" 2>/dev/null || true)
    tidy=()
    if [[ -n "$from" ]]; then
      mapfile -t tidy < <(git diff --name-only --diff-filter=d "$from" -- '*.cpp' '*.h')
    fi
    if ((${#tidy[@]} == 0)) && git rev-parse -q --verify HEAD^ >/dev/null; then
      mapfile -t tidy < <(git diff --name-only --diff-filter=d HEAD^ HEAD -- '*.cpp' '*.h')
    fi
    ;;
esac

status=0
for f in "${format[@]}"; do
  clang-format --dry-run -Werror "$f" 2>/dev/null || { echo "not clang-formatted: $f"; status=1; }
done

# Headers are tidied through the .cpp of the same name (include/zbuf/x/y.h -> src/x/y.cpp).
sources=()
for f in "${tidy[@]}"; do
  case "$f" in
    tests/* | bench/*) continue ;;
    include/zbuf/*.h) f=src/${f#include/zbuf/}; f=${f%.h}.cpp ;;
    *.h) f=${f%.h}.cpp ;;
  esac
  [[ "$f" == *.cpp && -f "$f" ]] && sources+=("$f")
done
if ((${#sources[@]})); then
  mapfile -t sources < <(printf '%s\n' "${sources[@]}" | sort -u)
  echo "clang-tidy: ${#sources[@]} file(s)"
  if clang-tidy -p build/release --quiet "${sources[@]}" 2>/dev/null | grep -E 'warning:|error:'; then
    status=1
  fi
else
  echo "clang-tidy: no source file to check"
fi
exit $status
