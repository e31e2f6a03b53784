// daemon::dispatch (daemon/dispatch.h) called directly with hand-built request messages: Ping's
// version, an Open that hands back an fd, an Ioctl whose fd field travels as an index, and the
// errno replies for malformed requests (short bodies, reserved bits, fd indices outside the
// message, unknown opcodes).
#include "zbuf/daemon/dispatch.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/ioctl.h>

#include <cstring>
#include <string>
#include <vector>

#include "zbuf/ipc/protocol.h"
#include "zbuf/uapi/abi.h"
#include "zbuf/uapi/context.h"

namespace zbuf::daemon {
namespace {

using ipc::Message;
using ipc::Opcode;

template <typename T>
void append(std::vector<std::byte>& body, const T& value) {
  const auto* p = reinterpret_cast<const std::byte*>(&value);
  body.insert(body.end(), p, p + sizeof value);
}

Message request(Opcode opcode, std::vector<std::byte> body = {}, std::vector<UniqueFd> fds = {}) {
  Message m;
  m.header.opcode = static_cast<std::uint16_t>(opcode);
  m.header.fdCount = static_cast<std::uint32_t>(fds.size());
  m.header.size = static_cast<std::uint32_t>(sizeof(ipc::MessageHeader) + body.size());
  m.body = std::move(body);
  m.fds = std::move(fds);
  return m;
}

Message open(const std::string& path, int flags) {
  std::vector<std::byte> body;
  append(body, ipc::OpenRequest{flags, static_cast<std::uint32_t>(path.size())});
  const auto* p = reinterpret_cast<const std::byte*>(path.data());
  body.insert(body.end(), p, p + path.size());
  return request(Opcode::Open, std::move(body));
}

class Dispatch : public ::testing::Test {
 protected:
  std::shared_ptr<uapi::Context> ctx = uapi::Context::create();

  Reply call(Message m) { return dispatch(*ctx, m, -1); }
  // The heap device as the daemon's fd (what a client's fd for it would be there).
  UniqueFd heap() {
    Reply r = call(open("/dev/dma_heap/system", O_RDONLY));
    EXPECT_EQ(r.body.error, 0);
    EXPECT_EQ(r.fds.size(), 1U);
    return r.fds.empty() ? UniqueFd() : std::move(r.fds[0]);
  }
};

TEST_F(Dispatch, PingAnswersTheProtocolVersion) {
  const Reply r = call(request(Opcode::Ping));
  EXPECT_EQ(r.body.error, 0);
  EXPECT_EQ(r.body.result, ipc::kVersion);
}

TEST_F(Dispatch, OpenHandsBackAnFdOfTheContextAndAMissingPathIsEnoent) {
  UniqueFd fd = heap();
  ASSERT_TRUE(fd.isValid());
  auto file = ctx->lookup(fd.get());
  ASSERT_TRUE(file.ok() && *file);
  EXPECT_EQ((*file)->ops().name(), "dma_heap");
  const Reply missing = call(open("/dev/dma_heap/nonexistent", O_RDONLY));
  EXPECT_EQ(missing.body.error, ENOENT);
  EXPECT_TRUE(missing.fds.empty());
  EXPECT_FALSE(missing.payload.empty());  // the daemon's description of the error
}

TEST_F(Dispatch, AnIoctlsOutFdTravelsAsAnIndexIntoTheReply) {
  std::vector<UniqueFd> fds;
  fds.push_back(heap());
  uapi::DmaHeapAllocationData data{};
  data.len = 4096;
  data.fdFlags = O_RDWR | O_CLOEXEC;
  std::vector<std::byte> body;
  append(body, ipc::IoctlRequest{uapi::kDmaHeapIoctlAlloc, 0, sizeof data, 0});
  append(body, data);
  const Reply r = call(request(Opcode::Ioctl, std::move(body), std::move(fds)));
  ASSERT_EQ(r.body.error, 0);
  ASSERT_EQ(r.fds.size(), 1U);
  ASSERT_EQ(r.payload.size(), sizeof data);  // the argument, copied back
  uapi::DmaHeapAllocationData out{};
  std::memcpy(&out, r.payload.data(), sizeof out);
  EXPECT_EQ(out.fd, 0U);  // index 0 of the reply's fds, not a number of the daemon's
  EXPECT_TRUE(ctx->bufferFromFd(r.fds[0].get()).ok());
}

TEST_F(Dispatch, MalformedRequestsGetErrnoReplies) {
  // A short body, reserved bits, a missing target fd, an fd index outside the message.
  EXPECT_EQ(call(request(Opcode::Open, std::vector<std::byte>(3))).body.error, EINVAL);
  {
    std::vector<std::byte> body;
    append(body, ipc::IoctlRequest{FIONBIO, 0, 0, 0x80000000U});
    std::vector<UniqueFd> fds;
    fds.push_back(heap());
    EXPECT_EQ(call(request(Opcode::Ioctl, std::move(body), std::move(fds))).body.error, EINVAL);
  }
  {
    std::vector<std::byte> body;
    append(body,
           ipc::IoctlRequest{uapi::kDmaHeapIoctlAlloc, 0, sizeof(uapi::DmaHeapAllocationData), 0});
    append(body, uapi::DmaHeapAllocationData{});
    EXPECT_EQ(call(request(Opcode::Ioctl, std::move(body))).body.error, EINVAL);  // no target
  }
  {
    std::vector<std::byte> body;
    append(body, ipc::IoctlRequest{uapi::kDmaBufIoctlImportSyncFile, 0,
                                   sizeof(uapi::DmaBufImportSyncFile), 0});
    append(body, uapi::DmaBufImportSyncFile{uapi::kDmaBufSyncRead, 7});  // fd index 7: none
    std::vector<UniqueFd> fds;
    fds.push_back(heap());
    EXPECT_EQ(call(request(Opcode::Ioctl, std::move(body), std::move(fds))).body.error, EINVAL);
  }
  EXPECT_EQ(call(request(static_cast<Opcode>(999))).body.error, ENOTTY);
}

}  // namespace
}  // namespace zbuf::daemon
