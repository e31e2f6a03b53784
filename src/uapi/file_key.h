// Private to uapi/: the identity of the file an fd refers to, (st_dev, st_ino).
#pragma once

#include <cstdint>
#include <utility>

#include "zbuf/base/result.h"
#include "zbuf/base/sys.h"

namespace zbuf::uapi::detail {

using FileKey = std::pair<std::uint64_t, std::uint64_t>;  // (st_dev, st_ino)

// The fstat() error (EBADF for a closed fd) or the key.
[[nodiscard]] inline Result<FileKey> fileKeyOf(int fd) {
  auto st = sys::fstat(fd);
  if (!st.ok()) {
    return std::move(st).error();
  }
  return FileKey{st->device, st->inode};
}

}  // namespace zbuf::uapi::detail
