#include "zbuf/base/unique_fd.h"

#include <unistd.h>

namespace zbuf {

void UniqueFd::reset(int fd) noexcept {
  const int old = std::exchange(fd_, fd);
  if (old >= 0 && old != fd) {
    // close() is never retried: on Linux the fd is released even when EINTR is reported.
    ::close(old);
  }
}

}  // namespace zbuf
