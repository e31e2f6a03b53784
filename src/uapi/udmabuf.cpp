// The udmabuf convenience calls: open the device node and make the fd-level ioctl, so they
// answer exactly as /dev/udmabuf does (heap_file.cpp).
#include "zbuf/uapi/udmabuf.h"

#include <fcntl.h>

#include "zbuf/uapi/calls.h"

namespace zbuf::uapi {

Result<UniqueFd> openUdmabuf() {
  return Context::current().open("/dev/udmabuf", O_RDWR | O_CLOEXEC);
}

Result<UniqueFd> udmabufCreate(int udmabufFd, const UdmabufCreate* create) {
  // ioctl(2) takes a void* for every request; this one only reads it.
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-const-cast): see above
  void* arg = const_cast<UdmabufCreate*>(create);
  ZBUF_ASSIGN_OR_RETURN(auto r, Context::current().ioctl(udmabufFd, kUdmabufCreate, arg));
  return UniqueFd::adopt(static_cast<int>(r));
}

Result<UniqueFd> udmabufCreateList(int udmabufFd, const UdmabufCreateList* list) {
  // ioctl(2) takes a void* for every request; this one only reads it.
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-const-cast): see above
  void* arg = const_cast<UdmabufCreateList*>(list);
  ZBUF_ASSIGN_OR_RETURN(auto r, Context::current().ioctl(udmabufFd, kUdmabufCreateList, arg));
  return UniqueFd::adopt(static_cast<int>(r));
}

}  // namespace zbuf::uapi
