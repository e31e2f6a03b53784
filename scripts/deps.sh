#!/usr/bin/env bash
# Installs the Debian 12 packages zbuf needs, only those missing. Run as root (or with sudo).
# Usage: scripts/deps.sh [--fuzz]
#   --fuzz: also clang's runtime libraries (libFuzzer, the sanitizers), for the fuzz
#   targets (scripts/test.sh --fuzz, docs/fuzzing.md).
set -euo pipefail
packages=(
  cmake g++ make pkg-config ccache
  libgtest-dev libgmock-dev libbenchmark-dev
  libcli11-dev libfmt-dev nlohmann-json3-dev
  gnuplot-nox
  groff-base  # groff: the man page test reads man/zbuf.1 with warnings on
  clang-format clang-tidy  # scripts/lint.sh
  clang                    # scripts/build.sh tsa: the thread-safety analysis build
  dpkg-dev file            # cpack -G DEB: dpkg-shlibdeps, and file to find the ELF objects
  systemd                  # systemd-analyze verify: zbufd's unit files (Build.SystemdUnits)
  libiceoryx-posh-dev libiceoryx-hoofs-dev libacl1-dev  # bench_handoff: iceoryx 2.0.3 (RouDi needs sys/acl.h)
  libiio-utils python3-libiio  # the Iiod tests: libiio 0.24's own tools against zbufd's iiod
  qemu-system-x86 cpio  # the kernel lane (scripts/qemu-lane.sh): Debian's 6.12 under QEMU
)
if [[ "${1:-}" == "--fuzz" ]]; then
  packages+=(libclang-rt-14-dev)
fi
missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]})); then
  echo "zbuf: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
