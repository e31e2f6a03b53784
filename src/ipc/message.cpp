#include "zbuf/ipc/message.h"

#include <fmt/format.h>

#include <vector>

#include "zbuf/base/sys.h"

namespace zbuf::ipc {

Result<void> sendMessage(int socket, Opcode opcode, std::uint64_t sequence,
                         std::span<const std::byte> body, std::span<const int> fds) {
  const std::size_t size = sizeof(MessageHeader) + body.size();
  if (size > kMaxMessage || fds.size() > kMaxFds) {
    return Error(EMSGSIZE, "zbufd send",
                 fmt::format("{} bytes and {} fds: beyond the protocol's {} and {}", size,
                             fds.size(), kMaxMessage, kMaxFds));
  }
  MessageHeader h;
  h.opcode = static_cast<std::uint16_t>(opcode);
  h.size = static_cast<std::uint32_t>(size);
  h.fdCount = static_cast<std::uint32_t>(fds.size());
  h.sequence = sequence;
  std::vector<std::byte> bytes(size);
  std::memcpy(bytes.data(), &h, sizeof h);
  if (!body.empty()) {
    std::memcpy(bytes.data() + sizeof h, body.data(), body.size());
  }
  ZBUF_ASSIGN_OR_RETURN(auto sent, sys::sendWithFds(socket, bytes, fds));
  if (sent != size) {
    return Error(EMSGSIZE, "zbufd send", "a partial message on a seqpacket socket");
  }
  return {};
}

Result<Message> receiveMessage(int socket) {
  std::vector<std::byte> bytes(kMaxMessage + 1);  // one more: a larger message is truncated
  ZBUF_ASSIGN_OR_RETURN(auto got, sys::recvWithFds(socket, bytes, kMaxFds));
  if (got.bytes == 0) {
    return Error(ECONNRESET, "zbufd receive", "the peer closed the connection");
  }
  if (got.bytes > kMaxMessage) {
    return Error(EMSGSIZE, "zbufd receive", "a message larger than the protocol allows");
  }
  if (got.bytes < sizeof(MessageHeader)) {
    return Error(EINVAL, "zbufd receive",
                 fmt::format("{} bytes: shorter than a header", got.bytes));
  }
  Message m;
  std::memcpy(&m.header, bytes.data(), sizeof m.header);
  if (m.header.magic != kMagic) {
    return Error(EPROTO, "zbufd receive", fmt::format("bad magic {:#x}", m.header.magic));
  }
  if (m.header.version != kVersion) {
    return Error(
        EPROTO, "zbufd receive",
        fmt::format("protocol version {}, this side speaks {}", m.header.version, kVersion));
  }
  if (m.header.size != got.bytes) {
    return Error(EINVAL, "zbufd receive",
                 fmt::format("header says {} bytes, {} arrived", m.header.size, got.bytes));
  }
  if (m.header.fdCount != got.fds.size()) {
    return Error(EINVAL, "zbufd receive",
                 fmt::format("header says {} fds, {} arrived", m.header.fdCount, got.fds.size()));
  }
  if (m.header.reserved != 0) {
    return Error(EINVAL, "zbufd receive", "a reserved header field is not zero");
  }
  m.body.assign(bytes.begin() + sizeof(MessageHeader),
                bytes.begin() + static_cast<std::ptrdiff_t>(got.bytes));
  m.fds = std::move(got.fds);
  return m;
}

}  // namespace zbuf::ipc
