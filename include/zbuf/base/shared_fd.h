// SharedFd: shared ownership of one file descriptor. The fd is closed when the last SharedFd
// referring to it goes away. Copies share the same fd number; dup() makes a new, independent
// UniqueFd referring to the same open file description.
//
// Thread-safety: copying and destroying SharedFd objects concurrently is safe (like
// std::shared_ptr); the fd itself is never changed after construction.
#pragma once

#include <memory>

#include "zbuf/base/result.h"
#include "zbuf/base/unique_fd.h"

#pragma GCC visibility push(default)  // the public API: exported (cmake/ZbufLayers.cmake)

namespace zbuf {

class SharedFd {
 public:
  SharedFd() noexcept = default;

  // Takes ownership of `fd`.
  [[nodiscard]] static SharedFd adopt(UniqueFd fd);
  // Duplicates `fd` (F_DUPFD_CLOEXEC); the caller keeps its own fd.
  [[nodiscard]] static Result<SharedFd> duplicate(int fd);

  [[nodiscard]] int get() const noexcept { return fd_ ? fd_->get() : -1; }
  [[nodiscard]] bool isValid() const noexcept { return get() >= 0; }
  explicit operator bool() const noexcept { return isValid(); }
  // A new fd of the same open file description, close-on-exec.
  [[nodiscard]] Result<UniqueFd> dup() const;
  // How many SharedFd objects share this fd.
  [[nodiscard]] long useCount() const noexcept { return fd_.use_count(); }

  friend bool operator==(const SharedFd& a, const SharedFd& b) noexcept {
    return a.get() == b.get();
  }

 private:
  std::shared_ptr<UniqueFd> fd_;
};

}  // namespace zbuf
#pragma GCC visibility pop
