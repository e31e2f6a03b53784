// The fd-level calls of a context as test rigs use them: each returns what the kernel's call
// returns, the value or minus the errno, so that an expectation reads as against the kernel
// (EXPECT_EQ(rig.ioctl(fd, REQUEST, &arg), -EBUSY)).
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <utility>

#include "zbuf/uapi/context.h"

namespace zbuf::testing_support {

struct FdCalls {
  explicit FdCalls(std::shared_ptr<uapi::Context> context) : ctx(std::move(context)) {}

  long ioctl(int fd, unsigned long request, void* arg) {
    auto r = ctx->ioctl(fd, request, arg);
    return r.ok() ? *r : -static_cast<long>(r.code());
  }
  // An ioctl whose argument is one int (an fd, a flag).
  long ioctlFd(int fd, unsigned long request, int value) { return ioctl(fd, request, &value); }
  long read(int fd, std::span<std::byte> out) {
    auto r = ctx->read(fd, out);
    return r.ok() ? static_cast<long>(*r) : -static_cast<long>(r.code());
  }
  long write(int fd, std::span<const std::byte> in) {
    auto r = ctx->write(fd, in);
    return r.ok() ? static_cast<long>(*r) : -static_cast<long>(r.code());
  }

  std::shared_ptr<uapi::Context> ctx;
};

}  // namespace zbuf::testing_support
