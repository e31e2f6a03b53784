#include "zbuf/ipc/message.h"

#include <dirent.h>
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

#include "zbuf/base/sys.h"

namespace zbuf::ipc {
namespace {

struct Pair {
  UniqueFd a;
  UniqueFd b;
};

Pair seqpacketPair() {
  auto p = sys::socketpair(SOCK_SEQPACKET);
  EXPECT_TRUE(p.ok()) << p.error().describe();
  if (!p.ok()) {
    return {};
  }
  return Pair{std::move(p->first), std::move(p->second)};
}

// The bytes of a message with header `h` and `bodySize` zero bytes after it.
std::vector<std::byte> raw(const MessageHeader& h, std::size_t bodySize = 0) {
  std::vector<std::byte> bytes(sizeof h + bodySize);
  std::memcpy(bytes.data(), &h, sizeof h);
  return bytes;
}

MessageHeader headerFor(std::size_t bodySize, std::uint32_t fdCount = 0) {
  MessageHeader h;
  h.opcode = static_cast<std::uint16_t>(Opcode::Ping);
  h.size = static_cast<std::uint32_t>(sizeof(MessageHeader) + bodySize);
  h.fdCount = fdCount;
  h.sequence = 1;
  return h;
}

// Sends `bytes` as one message with `fds`, bypassing sendMessage's checks.
void sendRaw(int socket, std::span<const std::byte> bytes, std::span<const int> fds = {}) {
  auto sent = sys::sendWithFds(socket, bytes, fds);
  ASSERT_TRUE(sent.ok()) << sent.error().describe();
  ASSERT_EQ(*sent, bytes.size());
}

int openFdCount() {
  int n = 0;
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) {
    return -1;
  }
  while (const dirent* e = ::readdir(dir)) {
    if (e->d_name[0] != '.') {
      ++n;
    }
  }
  ::closedir(dir);
  return n - 1;  // the directory's own fd
}

TEST(Message, RoundTripCarriesHeaderBodyAndFds) {
  auto [a, b] = seqpacketPair();
  auto ev = sys::eventfd(0, 0);
  ASSERT_TRUE(ev.ok());
  BodyWriter w;
  w.put(std::uint32_t{0xA1B2C3D4});
  w.put(std::int64_t{-5});
  const std::byte tail[] = {std::byte{1}, std::byte{2}, std::byte{3}};
  w.putBytes(tail);
  const int fds[] = {ev->get()};
  ASSERT_TRUE(sendMessage(a.get(), Opcode::Ioctl, 0x1122334455667788ULL, w.bytes(), fds).ok());

  auto m = receiveMessage(b.get());
  ASSERT_TRUE(m.ok()) << m.error().describe();
  EXPECT_EQ(m->header.magic, kMagic);
  EXPECT_EQ(m->header.version, kVersion);
  EXPECT_EQ(m->header.opcode, static_cast<std::uint16_t>(Opcode::Ioctl));
  EXPECT_EQ(m->header.size, sizeof(MessageHeader) + w.bytes().size());
  EXPECT_EQ(m->header.fdCount, 1U);
  EXPECT_EQ(m->header.sequence, 0x1122334455667788ULL);
  EXPECT_EQ(m->header.reserved, 0U);
  ASSERT_EQ(m->body.size(), w.bytes().size());
  EXPECT_EQ(std::memcmp(m->body.data(), w.bytes().data(), m->body.size()), 0);

  BodyReader r(m->body);
  EXPECT_EQ(r.take<std::uint32_t>().value(), 0xA1B2C3D4U);
  EXPECT_EQ(r.take<std::int64_t>().value(), -5);
  auto rest = r.takeBytes(3);
  ASSERT_TRUE(rest.ok());
  EXPECT_EQ((*rest)[2], std::byte{3});
  EXPECT_EQ(r.remaining(), 0U);

  // The fd that arrived is the same eventfd.
  ASSERT_EQ(m->fds.size(), 1U);
  EXPECT_NE(m->fds[0].get(), ev->get());
  ASSERT_TRUE(sys::eventfdWrite(m->fds[0].get(), 9).ok());
  EXPECT_EQ(sys::eventfdRead(ev->get()).value(), 9U);
}

TEST(Message, AnEmptyBodyAndNoFds) {
  auto [a, b] = seqpacketPair();
  ASSERT_TRUE(sendMessage(a.get(), Opcode::Ping, 3, {}, {}).ok());
  auto m = receiveMessage(b.get());
  ASSERT_TRUE(m.ok()) << m.error().describe();
  EXPECT_EQ(m->header.size, sizeof(MessageHeader));
  EXPECT_EQ(m->header.opcode, static_cast<std::uint16_t>(Opcode::Ping));
  EXPECT_TRUE(m->body.empty());
  EXPECT_TRUE(m->fds.empty());
}

TEST(Message, TheLargestMessageFits) {
  auto [a, b] = seqpacketPair();
  std::vector<std::byte> body(kMaxMessage - sizeof(MessageHeader), std::byte{0x5a});
  body.back() = std::byte{0x7e};
  ASSERT_TRUE(sendMessage(a.get(), Opcode::Write, 1, body, {}).ok());
  auto m = receiveMessage(b.get());
  ASSERT_TRUE(m.ok()) << m.error().describe();
  EXPECT_EQ(m->header.size, kMaxMessage);
  ASSERT_EQ(m->body.size(), body.size());
  EXPECT_EQ(m->body.back(), std::byte{0x7e});
}

TEST(Message, SendRefusesTooLargeOrTooManyFds) {
  auto [a, b] = seqpacketPair();
  const std::vector<std::byte> body(kMaxMessage - sizeof(MessageHeader) + 1);
  EXPECT_EQ(sendMessage(a.get(), Opcode::Write, 1, body, {}).code(), EMSGSIZE);
  auto ev = sys::eventfd(0, 0);
  ASSERT_TRUE(ev.ok());
  const std::vector<int> fds(kMaxFds + 1, ev->get());
  EXPECT_EQ(sendMessage(a.get(), Opcode::Poll, 1, {}, fds).code(), EMSGSIZE);
  const std::vector<int> enough(kMaxFds, ev->get());
  ASSERT_TRUE(sendMessage(a.get(), Opcode::Poll, 2, {}, enough).ok());
  // Nothing of the refused ones was sent: the next message is the accepted one.
  auto m = receiveMessage(b.get());
  ASSERT_TRUE(m.ok()) << m.error().describe();
  EXPECT_EQ(m->header.sequence, 2U);
  EXPECT_EQ(m->fds.size(), kMaxFds);
}

TEST(Message, ThePeerGoneIsEconnreset) {
  auto [a, b] = seqpacketPair();
  a.reset();
  EXPECT_EQ(receiveMessage(b.get()).code(), ECONNRESET);
}

TEST(Message, AWrongMagicOrVersionIsEproto) {
  auto [a, b] = seqpacketPair();
  MessageHeader magic = headerFor(0);
  magic.magic = kMagic + 1;
  sendRaw(a.get(), raw(magic));
  EXPECT_EQ(receiveMessage(b.get()).code(), EPROTO);
  MessageHeader version = headerFor(0);
  version.version = kVersion + 1;
  sendRaw(a.get(), raw(version));
  EXPECT_EQ(receiveMessage(b.get()).code(), EPROTO);
}

TEST(Message, AHeaderThatDisagreesWithWhatArrivedIsEinval) {
  auto [a, b] = seqpacketPair();
  MessageHeader size = headerFor(8);
  size.size += 1;  // says one byte more than sent
  sendRaw(a.get(), raw(size, 8));
  EXPECT_EQ(receiveMessage(b.get()).code(), EINVAL);

  sendRaw(a.get(), raw(headerFor(0, 1)));  // says one fd, none attached
  EXPECT_EQ(receiveMessage(b.get()).code(), EINVAL);

  auto ev = sys::eventfd(0, 0);
  ASSERT_TRUE(ev.ok());
  const int fds[] = {ev->get()};
  sendRaw(a.get(), raw(headerFor(0, 0)), fds);  // says no fd, one attached
  EXPECT_EQ(receiveMessage(b.get()).code(), EINVAL);

  MessageHeader reserved = headerFor(0);
  reserved.reserved = 1;
  sendRaw(a.get(), raw(reserved));
  EXPECT_EQ(receiveMessage(b.get()).code(), EINVAL);

  const std::vector<std::byte> shorter(sizeof(MessageHeader) - 1);
  sendRaw(a.get(), shorter);
  EXPECT_EQ(receiveMessage(b.get()).code(), EINVAL);

  // Each bad message was consumed whole: a good one follows.
  ASSERT_TRUE(sendMessage(a.get(), Opcode::Ping, 77, {}, {}).ok());
  auto m = receiveMessage(b.get());
  ASSERT_TRUE(m.ok()) << m.error().describe();
  EXPECT_EQ(m->header.sequence, 77U);
}

TEST(Message, ATooLargeMessageIsEmsgsize) {
  auto [a, b] = seqpacketPair();
  const std::size_t body = kMaxMessage + 1 - sizeof(MessageHeader);
  sendRaw(a.get(), raw(headerFor(body), body));
  EXPECT_EQ(receiveMessage(b.get()).code(), EMSGSIZE);
}

TEST(Message, TooManyFdsIsEmsgsizeAndTheyAreClosed) {
  auto [a, b] = seqpacketPair();
  auto ev = sys::eventfd(0, 0);
  ASSERT_TRUE(ev.ok());
  const std::vector<int> fds(kMaxFds + 1, ev->get());
  sendRaw(a.get(), raw(headerFor(0, static_cast<std::uint32_t>(fds.size()))), fds);
  const int before = openFdCount();
  EXPECT_EQ(receiveMessage(b.get()).code(), EMSGSIZE);
  EXPECT_EQ(openFdCount(), before) << "an fd of the refused message stayed open";
}

TEST(BodyReader, ATooShortBodyIsEinvalAndConsumesNothing) {
  BodyWriter w;
  w.put(std::uint16_t{0xBEEF});
  w.put(std::uint8_t{7});
  BodyReader r(w.bytes());
  EXPECT_EQ(r.remaining(), 3U);
  EXPECT_EQ(r.take<std::uint32_t>().code(), EINVAL);
  EXPECT_EQ(r.remaining(), 3U);
  EXPECT_EQ(r.takeBytes(4).code(), EINVAL);
  EXPECT_EQ(r.remaining(), 3U);
  EXPECT_EQ(r.take<std::uint16_t>().value(), 0xBEEF);
  EXPECT_EQ(r.remaining(), 1U);
  EXPECT_EQ(r.take<std::uint8_t>().value(), 7U);
  EXPECT_EQ(r.take<std::uint8_t>().code(), EINVAL);
  auto none = r.takeBytes(0);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST(BodyWriter, WritesTheObjectBytesInOrder) {
  BodyWriter w;
  EXPECT_TRUE(w.bytes().empty());
  OpenRequest open;
  open.flags = 0x80002;
  open.pathLength = 4;
  w.put(open);
  const std::byte path[] = {std::byte{'/'}, std::byte{'d'}, std::byte{'e'}, std::byte{'v'}};
  w.putBytes(path);
  ASSERT_EQ(w.bytes().size(), sizeof(OpenRequest) + sizeof path);
  BodyReader r(w.bytes());
  auto back = r.take<OpenRequest>();
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->flags, open.flags);
  EXPECT_EQ(back->pathLength, 4U);
  auto bytes = r.takeBytes(back->pathLength);
  ASSERT_TRUE(bytes.ok());
  EXPECT_EQ(std::memcmp(bytes->data(), path, sizeof path), 0);
}

}  // namespace
}  // namespace zbuf::ipc
