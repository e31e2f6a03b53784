#include "zbuf/base/result.h"

#include <fmt/format.h>

namespace zbuf {

const char* errnoName(int code) noexcept {
  switch (code) {
#define ZBUF_ERRNO(e) \
  case e:             \
    return #e;
    ZBUF_ERRNO(EPERM)
    ZBUF_ERRNO(ENOENT)
    ZBUF_ERRNO(ESRCH)
    ZBUF_ERRNO(EINTR)
    ZBUF_ERRNO(EIO)
    ZBUF_ERRNO(ENXIO)
    ZBUF_ERRNO(E2BIG)
    ZBUF_ERRNO(EBADF)
    ZBUF_ERRNO(EAGAIN)
    ZBUF_ERRNO(ENOMEM)
    ZBUF_ERRNO(EACCES)
    ZBUF_ERRNO(EFAULT)
    ZBUF_ERRNO(EBUSY)
    ZBUF_ERRNO(EEXIST)
    ZBUF_ERRNO(ENODEV)
    ZBUF_ERRNO(EINVAL)
    ZBUF_ERRNO(ENFILE)
    ZBUF_ERRNO(EMFILE)
    ZBUF_ERRNO(ENOTTY)
    ZBUF_ERRNO(EFBIG)
    ZBUF_ERRNO(ENOSPC)
    ZBUF_ERRNO(ESPIPE)
    ZBUF_ERRNO(EPIPE)
    ZBUF_ERRNO(ERANGE)
    ZBUF_ERRNO(EDEADLK)
    ZBUF_ERRNO(ENOSYS)
    ZBUF_ERRNO(ENODATA)
    ZBUF_ERRNO(ETIME)
    ZBUF_ERRNO(EBADFD)
    ZBUF_ERRNO(EOVERFLOW)
    ZBUF_ERRNO(EPROTO)
    ZBUF_ERRNO(EMSGSIZE)
    ZBUF_ERRNO(ECONNRESET)
    ZBUF_ERRNO(ESHUTDOWN)
    ZBUF_ERRNO(ETIMEDOUT)
    ZBUF_ERRNO(EALREADY)
    ZBUF_ERRNO(ECANCELED)
    ZBUF_ERRNO(EOPNOTSUPP)
#undef ZBUF_ERRNO
    default:
      return "E?";
  }
}

std::string Error::describe() const {
  if (message_.empty()) {
    return fmt::format("{}: {} ({})", op_, std::strerror(code_), errnoName(code_));
  }
  return fmt::format("{}: {} ({}: {})", op_, message_, errnoName(code_), std::strerror(code_));
}

}  // namespace zbuf
