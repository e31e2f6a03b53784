// UniqueFd: the sole owner of a file descriptor. Move-only; closes on destruction.
//
// Build one with UniqueFd::adopt(fd) (takes ownership of an fd the caller owns) or through a
// syscall wrapper in base/sys.h. No zbuf class stores a raw int fd: they hold a UniqueFd or a
// SharedFd.
#pragma once

#include <utility>

#pragma GCC visibility push(default)  // the public API: exported (cmake/ZbufLayers.cmake)

namespace zbuf {

class UniqueFd {
 public:
  UniqueFd() noexcept = default;
  ~UniqueFd() { reset(); }
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    reset(std::exchange(other.fd_, -1));
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  // Takes ownership of `fd` (which may be -1 for an empty UniqueFd).
  [[nodiscard]] static UniqueFd adopt(int fd) noexcept { return UniqueFd(fd); }

  [[nodiscard]] int get() const noexcept { return fd_; }
  [[nodiscard]] bool isValid() const noexcept { return fd_ >= 0; }
  explicit operator bool() const noexcept { return isValid(); }

  // Gives up ownership: the caller now owns the returned fd.
  [[nodiscard]] int release() noexcept { return std::exchange(fd_, -1); }
  // Closes the current fd (if any) and owns `fd` instead.
  void reset(int fd = -1) noexcept;

 private:
  explicit UniqueFd(int fd) noexcept : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace zbuf
#pragma GCC visibility pop
