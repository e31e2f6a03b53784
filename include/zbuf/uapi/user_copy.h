// copy_from_user / copy_to_user for ioctl arguments: the caller's pointer may have any
// alignment (a packed struct, a byte buffer), so an argument is copied in and out byte-wise,
// never read through a typed pointer. A null pointer is EFAULT, as the kernel reports a fault;
// other bad pointers are the caller's own bug (zbuf runs in the caller's address space).
#pragma once

#include <cstring>
#include <type_traits>

#include "zbuf/base/result.h"

#pragma GCC visibility push(default)  // the public API: exported (cmake/ZbufLayers.cmake)

namespace zbuf::uapi {

template <typename T>
requires std::is_trivially_copyable_v<T>
[[nodiscard]] Result<T> copyFromUser(const void* arg, const char* op) {
  if (arg == nullptr) {
    return Error(EFAULT, op, "argument pointer is null");
  }
  T value;  // NOLINT(cppcoreguidelines-pro-type-member-init): the memcpy below fills it
  std::memcpy(&value, arg, sizeof value);
  return value;
}

template <typename T>
requires std::is_trivially_copyable_v<T>
[[nodiscard]] Result<void> copyToUser(void* arg, const T& value, const char* op) {
  if (arg == nullptr) {
    return Error(EFAULT, op, "argument pointer is null");
  }
  std::memcpy(arg, &value, sizeof value);
  return {};
}

}  // namespace zbuf::uapi
#pragma GCC visibility pop
