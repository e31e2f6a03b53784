// Test helper: reserves 2 MiB huge pages for a test suite when running as root and none are
// free, and gives them back afterwards. Test binaries that use it are serialized by an flock
// on /tmp/zbuf-hugepages.lock, so that concurrent ctest jobs do not undo each other's
// reservation.
#pragma once

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <optional>
#include <string>

#include "zbuf/base/sys.h"
#include "zbuf/heaps/huge_page_heap.h"

namespace zbuf::test {

class HugePageReservation {
 public:
  explicit HugePageReservation(std::uint64_t wanted) {
    auto lock = sys::open("/tmp/zbuf-hugepages.lock", O_RDWR | O_CREAT, 0666);
    if (lock.ok() && sys::flock(lock->get(), LOCK_EX).ok()) {
      lock_ = std::move(*lock);
    }
    if (HugePageHeap::freeHugePages() >= wanted || geteuid() != 0) {
      return;
    }
    auto before = read();
    if (before && write(*before + wanted)) {
      restore_ = before;
    }
  }
  ~HugePageReservation() {
    if (restore_) {
      (void)write(*restore_);
    }
  }
  HugePageReservation(const HugePageReservation&) = delete;
  HugePageReservation& operator=(const HugePageReservation&) = delete;

 private:
  static std::optional<std::uint64_t> read() {
    auto fd = sys::open("/proc/sys/vm/nr_hugepages", O_RDONLY);
    if (!fd.ok()) {
      return std::nullopt;
    }
    char buf[32] = {};
    auto n = sys::read(fd->get(), std::as_writable_bytes(std::span(buf, sizeof(buf) - 1)));
    if (!n.ok() || *n == 0) {
      return std::nullopt;
    }
    return std::stoull(std::string(buf, *n));
  }
  static bool write(std::uint64_t n) {
    auto fd = sys::open("/proc/sys/vm/nr_hugepages", O_WRONLY);
    if (!fd.ok()) {
      return false;
    }
    const std::string s = std::to_string(n);
    return sys::write(fd->get(), std::as_bytes(std::span(s.data(), s.size()))).ok();
  }

  UniqueFd lock_;  // held for the reservation's lifetime
  std::optional<std::uint64_t> restore_;
};

}  // namespace zbuf::test
