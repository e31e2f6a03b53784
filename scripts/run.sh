#!/usr/bin/env bash
# The run command: installs what is missing, builds, and runs the main job.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/deps.sh"
"$root/scripts/build.sh" release
if [ ! -x "$root/build/release/zbuf" ]; then
  echo "zbuf: the main job (zbuf stream) is not built yet; see README.md" >&2
  exit 1
fi
exec "$root/build/release/zbuf" stream "$@"
