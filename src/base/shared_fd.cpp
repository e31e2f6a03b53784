#include "zbuf/base/shared_fd.h"

#include "zbuf/base/sys.h"

namespace zbuf {

SharedFd SharedFd::adopt(UniqueFd fd) {
  SharedFd shared;
  if (fd.isValid()) {
    shared.fd_ = std::make_shared<UniqueFd>(std::move(fd));
  }
  return shared;
}

Result<SharedFd> SharedFd::duplicate(int fd) {
  ZBUF_ASSIGN_OR_RETURN(auto dupResult, sys::dup(fd));
  return adopt(std::move(dupResult));
}

Result<UniqueFd> SharedFd::dup() const {
  if (!isValid()) {
    return Error(EBADF, "SharedFd::dup", "empty SharedFd");
  }
  return sys::dup(get());
}

}  // namespace zbuf
