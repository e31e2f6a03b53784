// One protocol message on a SOCK_SEQPACKET socket: the header, a body and the fds that travel
// with it (SCM_RIGHTS), with the checks every receiver makes before it reads a field.
//
// Thread-safety: a socket carries one message at a time per direction; callers serialise.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <type_traits>
#include <vector>

#include "zbuf/base/result.h"
#include "zbuf/base/unique_fd.h"
#include "zbuf/ipc/protocol.h"

#pragma GCC visibility push(default)  // the public API: exported (cmake/ZbufLayers.cmake)

namespace zbuf::ipc {

struct Message {
  MessageHeader header;
  std::vector<std::byte> body;  // what follows the header
  std::vector<UniqueFd> fds;
};

// Sends one message. EMSGSIZE past kMaxMessage or kMaxFds.
[[nodiscard]] Result<void> sendMessage(int socket, Opcode opcode, std::uint64_t sequence,
                                       std::span<const std::byte> body, std::span<const int> fds);
// Receives one message and checks its header: ECONNRESET when the peer has gone (end of file),
// EPROTO for a wrong magic or version, EINVAL for a size or fd count that does not match what
// arrived or a reserved field that is not zero, EMSGSIZE for a truncated message (too large or
// too many fds: they are closed).
[[nodiscard]] Result<Message> receiveMessage(int socket);

// Appends fixed-width records to a body.
class BodyWriter {
 public:
  template <typename T>
  void put(const T& value) {
    static_assert(std::is_trivially_copyable_v<T>);
    const auto* p = reinterpret_cast<const std::byte*>(&value);  // NOLINT: object bytes
    bytes_.insert(bytes_.end(), p, p + sizeof(T));
  }
  void putBytes(std::span<const std::byte> bytes) {
    bytes_.insert(bytes_.end(), bytes.begin(), bytes.end());
  }
  [[nodiscard]] std::span<const std::byte> bytes() const noexcept { return bytes_; }

 private:
  std::vector<std::byte> bytes_;
};

// Reads fixed-width records from a body: EINVAL when the body is too short.
class BodyReader {
 public:
  explicit BodyReader(std::span<const std::byte> bytes) noexcept : bytes_(bytes) {}
  template <typename T>
  [[nodiscard]] Result<T> take() {
    static_assert(std::is_trivially_copyable_v<T>);
    if (bytes_.size() < sizeof(T)) {
      return Error(EINVAL, "zbufd message", "the body is shorter than its fields");
    }
    T value;
    std::memcpy(&value, bytes_.data(), sizeof(T));
    bytes_ = bytes_.subspan(sizeof(T));
    return value;
  }
  [[nodiscard]] Result<std::span<const std::byte>> takeBytes(std::size_t n) {
    if (bytes_.size() < n) {
      return Error(EINVAL, "zbufd message", "the body is shorter than its fields");
    }
    auto out = bytes_.first(n);
    bytes_ = bytes_.subspan(n);
    return out;
  }
  [[nodiscard]] std::size_t remaining() const noexcept { return bytes_.size(); }

 private:
  std::span<const std::byte> bytes_;
};

}  // namespace zbuf::ipc
#pragma GCC visibility pop
