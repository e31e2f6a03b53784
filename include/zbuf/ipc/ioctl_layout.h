// How an ioctl's argument crosses the process boundary to zbufd: how many bytes go in and come
// back, and which of its fields are fds (an fd number means nothing in another process: the fd
// travels by SCM_RIGHTS and the field carries its index). Known requests have an entry; any
// other request is laid out from its _IOC encoding (direction and size); a request without an
// encoded size takes its argument by value.
//
// Thread-safety: pure functions.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#pragma GCC visibility push(default)  // the public API: exported (cmake/ZbufLayers.cmake)

namespace zbuf::ipc {

enum class ArgKind : std::uint8_t {
  Value,         // no pointer: the argument itself is sent (IoctlRequest::value)
  Struct,        // `size` bytes at the pointer, in and/or out; fd fields in `fds`
  String,        // DMA_BUF_SET_NAME: a NUL-terminated string at the pointer (at most 32 bytes read)
  SyncFileInfo,  // SYNC_IOC_FILE_INFO: the struct, and the caller's fence array it points to
  UdmabufList,   // UDMABUF_CREATE_LIST: a header and `count` items, one memfd each
  Local,         // FIONBIO, FIOCLEX, ...: per fd (FD_CLOEXEC) or trivial, made in the caller
};

enum class FdDirection : std::uint8_t { In, Out };

struct FdField {
  std::uint16_t offset = 0;
  FdDirection direction = FdDirection::In;
};

struct IoctlLayout {
  ArgKind kind = ArgKind::Value;
  std::uint32_t size = 0;  // argument bytes (Struct, SyncFileInfo: the struct; UdmabufList: header)
  bool copyIn = false;     // the driver reads the argument
  bool copyOut = false;    // the driver writes it back
  bool returnsFd = false;  // the return value is a new fd (UDMABUF_CREATE, _LIST)
  std::uint8_t fdCount = 0;
  std::array<FdField, 2> fds{};
};

// The layout of `request` (cut to 32 bits, as the kernel's cmd).
[[nodiscard]] IoctlLayout layoutOf(unsigned long request) noexcept;

// Bounds the daemon applies to variable parts (docs/daemon.md).
inline constexpr std::uint32_t kMaxFileInfoFences = 512;
inline constexpr std::uint32_t kMaxUdmabufListItems = 32;

}  // namespace zbuf::ipc
#pragma GCC visibility pop
