#!/usr/bin/env bash
# Checks formatting (clang-format) and runs clang-tidy over the project's sources, using the
# release build's compile_commands.json. Usage: scripts/lint.sh [files...]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
[ -f build/release/compile_commands.json ] || scripts/build.sh release
if (($#)); then files=("$@"); else
  mapfile -t files < <(git ls-files '*.cpp' '*.h')
fi
status=0
for f in "${files[@]}"; do
  clang-format --dry-run -Werror "$f" 2>/dev/null || { echo "not clang-formatted: $f"; status=1; }
done
mapfile -t sources < <(printf '%s\n' "${files[@]}" | grep '\.cpp$' | grep -v '^tests/\|^bench/' || true)
if ((${#sources[@]})); then
  clang-tidy -p build/release --quiet "${sources[@]}" 2>/dev/null | grep -E 'warning:|error:' && status=1 || true
fi
exit $status
