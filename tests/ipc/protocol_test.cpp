#include "zbuf/ipc/protocol.h"

#include <gtest/gtest.h>

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "zbuf/ipc/ioctl_layout.h"
#include "zbuf/uapi/abi.h"

namespace zbuf::ipc {
namespace {

TEST(Protocol, ADefaultHeaderIsAValidOne) {
  const MessageHeader h;
  EXPECT_EQ(h.magic, kMagic);
  EXPECT_EQ(h.version, kVersion);
  EXPECT_EQ(h.reserved, 0U);
  EXPECT_EQ(h.fdCount, 0U);
  EXPECT_EQ(kVersion, 1U) << "this is version 1 of the protocol";
}

TEST(Protocol, TheMagicIsZbufInLittleEndianOrder) {
  const std::string bytes{
      static_cast<char>(kMagic & 0xFFU), static_cast<char>((kMagic >> 8) & 0xFFU),
      static_cast<char>((kMagic >> 16) & 0xFFU), static_cast<char>((kMagic >> 24) & 0xFFU)};
  EXPECT_EQ(bytes, "ZBUF");
  if constexpr (std::endian::native == std::endian::little) {
    char inMemory[4];
    std::memcpy(inMemory, &kMagic, sizeof inMemory);
    EXPECT_EQ(std::string(inMemory, sizeof inMemory), "ZBUF");
  }
}

TEST(Protocol, TheHeaderFieldsAreInWireOrderWithoutPadding) {
  EXPECT_EQ(offsetof(MessageHeader, magic), 0U);
  EXPECT_EQ(offsetof(MessageHeader, version), sizeof(std::uint32_t));
  EXPECT_EQ(offsetof(MessageHeader, opcode), offsetof(MessageHeader, version) + 2);
  EXPECT_EQ(offsetof(MessageHeader, size), offsetof(MessageHeader, opcode) + 2);
  EXPECT_EQ(offsetof(MessageHeader, fdCount), offsetof(MessageHeader, size) + 4);
  EXPECT_EQ(offsetof(MessageHeader, sequence), offsetof(MessageHeader, fdCount) + 4);
  EXPECT_EQ(offsetof(MessageHeader, reserved), offsetof(MessageHeader, sequence) + 8);
  EXPECT_EQ(sizeof(MessageHeader), offsetof(MessageHeader, reserved) + 8);
  EXPECT_EQ(offsetof(ReplyBody, error), sizeof(std::int64_t));
  EXPECT_EQ(offsetof(ReplyBody, flags), offsetof(ReplyBody, error) + 4);
  EXPECT_EQ(offsetof(PollEntry, events), sizeof(std::uint32_t));
  EXPECT_EQ(offsetof(PollEntry, revents), offsetof(PollEntry, events) + 2);
}

// docs/daemon.md's table: the numbers on the wire.
TEST(Protocol, OpcodesHaveTheirDocumentedNumbers) {
  EXPECT_EQ(static_cast<int>(Opcode::Ping), 1);
  EXPECT_EQ(static_cast<int>(Opcode::Open), 2);
  EXPECT_EQ(static_cast<int>(Opcode::Ioctl), 3);
  EXPECT_EQ(static_cast<int>(Opcode::Read), 4);
  EXPECT_EQ(static_cast<int>(Opcode::Write), 5);
  EXPECT_EQ(static_cast<int>(Opcode::Poll), 6);
  EXPECT_EQ(static_cast<int>(Opcode::Lseek), 7);
  EXPECT_EQ(static_cast<int>(Opcode::Fstat), 8);
  EXPECT_EQ(static_cast<int>(Opcode::Fdinfo), 9);
  EXPECT_EQ(static_cast<int>(Opcode::FdPath), 10);
  EXPECT_EQ(static_cast<int>(Opcode::Mmap), 11);
  EXPECT_EQ(static_cast<int>(Opcode::Reap), 12);
}

// kMaxMessage: more than any ioctl argument, with the header and the request or reply fields.
TEST(Protocol, TheLargestIoctlArgumentFitsInAMessage) {
  constexpr std::size_t overhead = sizeof(MessageHeader) + sizeof(IoctlRequest);
  constexpr std::size_t replyOverhead = sizeof(MessageHeader) + sizeof(ReplyBody);
  // Any _IOC-encoded struct (a 14-bit size).
  constexpr std::size_t largestEncoded = (std::size_t{1} << 14) - 1;
  EXPECT_LE(overhead + largestEncoded, kMaxMessage);
  EXPECT_LE(replyOverhead + largestEncoded, kMaxMessage);
  // SYNC_IOC_FILE_INFO with its fence array at the daemon's bound.
  constexpr std::size_t fileInfo =
      sizeof(uapi::SyncFileInfo) + std::size_t{kMaxFileInfoFences} * sizeof(uapi::SyncFenceInfo);
  EXPECT_LE(overhead + fileInfo, kMaxMessage);
  EXPECT_LE(replyOverhead + fileInfo, kMaxMessage);
  // UDMABUF_CREATE_LIST at its bound.
  constexpr std::size_t list = sizeof(uapi::UdmabufCreateList) +
                               std::size_t{kMaxUdmabufListItems} * sizeof(uapi::UdmabufCreateItem);
  EXPECT_LE(overhead + list, kMaxMessage);
  EXPECT_LE(kMaxUdmabufListItems, kMaxFds - 1) << "one memfd per item, and the target";
}

TEST(Protocol, AFullReadOrWriteFitsInAMessage) {
  EXPECT_LE(sizeof(MessageHeader) + sizeof(ReplyBody) + kMaxIoBytes, kMaxMessage);
  EXPECT_LE(sizeof(MessageHeader) + sizeof(CountRequest) + kMaxIoBytes, kMaxMessage);
}

TEST(Protocol, APollOfTheMostFdsFitsInAMessage) {
  EXPECT_LE(sizeof(MessageHeader) + sizeof(PollRequest) + kMaxFds * sizeof(PollEntry), kMaxMessage);
  EXPECT_LE(sizeof(MessageHeader) + sizeof(ReplyBody) + kMaxFds * sizeof(PollEntry), kMaxMessage);
  EXPECT_LE(kMaxFds, 253U) << "SCM_RIGHTS carries at most 253 fds (SCM_MAX_FD)";
}

TEST(Protocol, FlagsAndTheNoFdIndex) {
  EXPECT_EQ(kNoFd, ~std::uint32_t{0});
  EXPECT_GE(kNoFd, kMaxFds) << "never a valid index";
  EXPECT_EQ(std::popcount(kReplyForeignFd), 1);
  EXPECT_EQ(std::popcount(kIoctlArgNull), 1);
  const ReplyBody reply;
  EXPECT_EQ(reply.flags, 0U);
  EXPECT_EQ(reply.error, 0);
  const IoctlRequest request;
  EXPECT_EQ(request.flags & kIoctlArgNull, 0U);
}

}  // namespace
}  // namespace zbuf::ipc
