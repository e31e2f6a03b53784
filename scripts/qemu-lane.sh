#!/usr/bin/env bash
# The kernel lane: boots Debian's own Linux 6.12 under QEMU (software emulation: KVM guests do
# not work on the machines this runs on) with zbuf's lane tests in an initramfs, and runs them
# against the real kernel: every uAPI scenario on the emulation, on the kernel and on the auto
# backend, failing on any difference in results or errnos (tests/lane, docs/kernel-lane.md).
#
# Usage: scripts/qemu-lane.sh [BUILD_DIR]     (default: build/release, already built)
# Exit: 0 passed, 1 failed, 77 skipped (only when QEMU or the kernel package cannot be had; the
# message says what is missing and how to get it). The test command installs QEMU and cpio
# (scripts/deps.sh); the kernel package is fetched here with `apt-get download` into
# build/kernel/ (kept: later runs boot at once).
#
# What it leaves in BUILD_DIR/lane/: console.log (everything the VM printed) and
# kernel-transcripts.txt (each scenario's transcript on the real kernel: the source of
# docs/results/kernel-lane-6.12.txt).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$root/build/release}" && pwd)
out=$build/lane
kernel_dir=$root/build/kernel
timeout_s=${ZBUF_LANE_TIMEOUT:-600}

skip() {
  echo "kernel lane: skipped: $*"
  exit 77
}

qemu=$(command -v qemu-system-x86_64) ||
  skip "qemu-system-x86_64 is missing (apt-get install qemu-system-x86; scripts/deps.sh does)"
command -v cpio >/dev/null || skip "cpio is missing (apt-get install cpio; scripts/deps.sh does)"
tests=$build/tests/test_lane_kernel_lane_test
init=$build/tests/zbuf_lane_init
for f in "$tests" "$init" "$build/zbuf"; do
  [[ -x "$f" ]] || { echo "kernel lane: $f is not built (scripts/build.sh release)" >&2; exit 1; }
done

# The kernel: the newest linux-image-6.12.*+deb12-amd64-unsigned that apt knows of
# (bookworm-security), unpacked once.
vmlinuz=$(ls "$kernel_dir"/root/boot/vmlinuz-6.12.* 2>/dev/null | sort -V | tail -1 || true)
if [[ -z "$vmlinuz" ]]; then
  pkg=$(apt-cache pkgnames linux-image-6.12 2>/dev/null |
        grep -E '^linux-image-6\.12\.[0-9]+\+deb12-amd64-unsigned$' | sort -V | tail -1 || true)
  [[ -n "$pkg" ]] ||
    skip "apt knows no linux-image-6.12.*+deb12-amd64-unsigned (add bookworm-security to the sources, then apt-get update)"
  mkdir -p "$kernel_dir/download"
  echo "kernel lane: fetching $pkg"
  fetch() {
    (cd "$kernel_dir/download" && apt-get download -q "$pkg" 2>&1 |
      grep -v '^W: Download is performed unsandboxed' >&2 || true)
    ls "$kernel_dir"/download/"${pkg}"_*.deb 2>/dev/null | head -1 || true
  }
  deb=$(fetch)
  if [[ -z "$deb" && "$(id -u)" -eq 0 ]]; then
    apt-get update -qq || true  # the lists may name a version the archive no longer has
    deb=$(fetch)
  fi
  [[ -n "$deb" ]] || skip "apt-get download $pkg failed (is Debian's package archive reachable?)"
  rm -rf "$kernel_dir/root"
  dpkg-deb -x "$deb" "$kernel_dir/root"
  rm -f "$deb"
  vmlinuz=$(ls "$kernel_dir"/root/boot/vmlinuz-6.12.* | sort -V | tail -1)
fi
release=${vmlinuz##*/vmlinuz-}

# The initramfs: the static /init, the test binary with the shared libraries it loads (no root
# file system needed), its arguments and environment, the recording to compare with.
rm -rf "$out"
mkdir -p "$out/initramfs/lane"
ir=$out/initramfs
cp "$init" "$ir/init"
cp "$tests" "$ir/lane/run"
cp "$build/zbuf" "$ir/lane/zbuf"
ldd "$tests" "$build/zbuf" | awk '/=> \// {print $3} /^[ \t]+\// {print $1}' | sort -u | while read -r lib; do
  cp -L --parents "$lib" "$ir/"
done
printf '%s\n' --gtest_color=no > "$ir/lane/args"
printf '%s\n' ZBUF_LANE_DUMP=1 ZBUF_LANE_RECORDED=/lane/recorded.txt ZBUF_LANE_CLI=/lane/zbuf \
  > "$ir/lane/env"
cp "$root/docs/results/kernel-lane-6.12.txt" "$ir/lane/recorded.txt" 2>/dev/null || true
# vgem and what it needs, in load order (the kernel decompresses them: CONFIG_MODULE_DECOMPRESS).
: > "$ir/lane/modules"
# And the USB gadget stack: dummy_hcd (a host and a device controller in one, without
# scatter-gather), configfs, libcomposite and usb_f_fs (FunctionFS).
for m in drivers/gpu/drm/drm drivers/gpu/drm/drm_kms_helper drivers/gpu/drm/drm_shmem_helper \
         drivers/gpu/drm/vgem/vgem drivers/usb/common/usb-common drivers/usb/core/usbcore \
         drivers/usb/gadget/udc/udc-core drivers/usb/gadget/udc/dummy_hcd fs/configfs/configfs \
         drivers/usb/gadget/libcomposite drivers/usb/gadget/function/usb_f_fs; do
  ko=/lib/modules/$release/kernel/$m.ko.xz
  mkdir -p "$ir$(dirname "$ko")"
  cp "$kernel_dir/root$ko" "$ir$ko"
  echo "$ko" >> "$ir/lane/modules"
done
(cd "$ir" && find . | cpio -o -H newc --quiet | gzip -1) > "$out/initramfs.cpio.gz"

echo "kernel lane: booting Linux $release under QEMU (TCG)"
start=$(date +%s)
set +e
timeout "$timeout_s" "$qemu" -accel tcg -m 1024 -smp 2 -display none -vga none -monitor none \
  -serial "file:$out/console.log" -no-reboot -kernel "$vmlinuz" \
  -initrd "$out/initramfs.cpio.gz" -append "console=ttyS0 panic=-1 quiet" </dev/null
qemu_rc=$?
set -e
elapsed=$(($(date +%s) - start))
tr -d '\r' < "$out/console.log" > "$out/console.txt"
awk '/^=== end ===$/ {keep=0; print; next} /^=== .* ===$/ {keep=1} keep' "$out/console.txt" \
  > "$out/kernel-transcripts.txt"
awk '/^=== end ===$/ {skip=0; next} /^=== .* ===$/ {skip=1} !skip' "$out/console.txt" |
  sed -n '/^\[==========\]/,$p'
code=$(sed -n 's/^ZBUF-LANE-EXIT \([0-9]*\)$/\1/p' "$out/console.txt" | tail -1)
if [[ "$qemu_rc" -eq 124 ]]; then
  echo "kernel lane: FAILED: the VM did not finish within ${timeout_s} s (console: $out/console.log)"
  exit 1
fi
if [[ -z "$code" ]]; then
  echo "kernel lane: FAILED: the VM stopped without the tests' exit status (qemu $qemu_rc; console: $out/console.log)"
  tail -20 "$out/console.txt"
  exit 1
fi
if [[ "$code" -ne 0 ]]; then
  echo "kernel lane: FAILED (exit $code, ${elapsed} s; console: $out/console.txt; the kernel's transcripts: $out/kernel-transcripts.txt)"
  exit 1
fi
if grep -q '^\[  SKIPPED \]' "$out/console.txt"; then
  echo "kernel lane: FAILED: tests skipped themselves on the real kernel (console: $out/console.txt)"
  grep '^\[  SKIPPED \]' "$out/console.txt"
  exit 1
fi
echo "kernel lane: passed on Linux $release in ${elapsed} s"
