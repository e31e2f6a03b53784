#!/usr/bin/env bash
# The run command: installs what is missing, builds the zbuf binary, and runs the main job
# (`zbuf stream` with its defaults; extra arguments are passed on, e.g. --json).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/deps.sh"
export CCACHE_DIR=${CCACHE_DIR:-$root/build/.ccache}
cmake -S "$root" -B "$root/build/release" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$root/build/release" -j "$(nproc)" --target zbuf_cli
exec "$root/build/release/zbuf" stream "$@"
