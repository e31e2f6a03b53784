// Virtio sharing by UUID between processes, through a zbufd of its own (with a registration
// round trip of its own): a decoder client process exports frames and this process displays them
// by UUID, ordered by the buffers' fences; a client killed between its export and the host's
// answer leaves nothing registered; a client of another user is refused (EACCES). The child
// clients are this binary re-executed with ZBUF_VIRTIO_CHILD set, and exit by themselves (or
// are killed by pid, as the test says).
// ctest-labels: concurrency
#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "support/spawn.h"
#include "support/wait_until.h"
#include "zbuf/base/sys.h"
#include "zbuf/devices/virtio/virtio_video.h"
#include "zbuf/ipc/remote_context.h"
#include "zbuf/uapi/abi.h"

namespace zbuf {
namespace {

namespace fs = std::filesystem;

constexpr std::uint64_t kFrameBytes = std::uint64_t{256} * 1024;
constexpr std::uint64_t kFrames = 24;
constexpr uid_t kNobody = 65534;  // Debian's nobody and nogroup

// Exit codes of the children.
enum : int {
  kOk = 0,
  kNoDaemon = 10,
  kNoDevice = 11,
  kAllocFailed = 12,
  kDecodeFailed = 13,
  kPipe = 14,
  kNotRefused = 15,
  kNoPrivDrop = 16
};

Result<uapi::VirtioVideoAlloc> allocFrame(uapi::FdCalls& k, int decoder) {
  uapi::VirtioVideoAlloc a{};
  a.size = kFrameBytes;
  a.fdFlags = O_RDWR | O_CLOEXEC;
  ZBUF_TRY(k.ioctl(decoder, uapi::kVirtioVideoAlloc, &a));
  return a;
}

Uuid uuidOf(const std::uint8_t (&bytes)[16]) {  // NOLINT(*-avoid-c-arrays): the uAPI's field
  Uuid u{};
  std::memcpy(u.data(), bytes, u.size());
  return u;
}

bool writeAll(int fd, const std::string& text) {
  return ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
}

// decoder: two frame buffers, their UUIDs on fd 3, then one frame per 'd' read on fd 3 (a
// 'k' back once DECODE returned), until fd 3 closes.
[[noreturn]] void decoderChild(const std::string& socket) {
  auto k = ipc::RemoteContext::connect(socket);
  if (!k.ok()) {
    ::_exit(kNoDaemon);
  }
  auto decoder = (*k)->open(virtio::kDecoderPath, O_RDWR);
  if (!decoder.ok()) {
    ::_exit(kNoDevice);
  }
  std::array<uapi::VirtioVideoAlloc, 2> frames{};
  std::string line;
  for (auto& f : frames) {
    auto a = allocFrame(**k, decoder->get());
    if (!a.ok()) {
      ::_exit(kAllocFailed);
    }
    f = *a;
    line += toString(uuidOf(f.uuid)) + " ";
  }
  line.back() = '\n';
  if (!writeAll(3, line)) {
    ::_exit(kPipe);
  }
  for (std::uint64_t n = 0;; ++n) {
    char go = 0;
    if (::read(3, &go, 1) != 1) {
      ::_exit(kOk);  // the test is done with us
    }
    uapi::VirtioVideoFrame req{frames.at(n % 2).fd, 0, n};
    if (!(*k)->ioctl(decoder->get(), uapi::kVirtioVideoDecode, &req).ok()) {
      ::_exit(kDecodeFailed);
    }
    if (!writeAll(3, "k")) {
      ::_exit(kPipe);
    }
  }
}

// export: one frame buffer, its UUID on stdout, then waits to be killed.
[[noreturn]] void exportChild(const std::string& socket) {
  auto k = ipc::RemoteContext::connect(socket);
  if (!k.ok()) {
    ::_exit(kNoDaemon);
  }
  auto decoder = (*k)->open(virtio::kDecoderPath, O_RDWR);
  if (!decoder.ok()) {
    ::_exit(kNoDevice);
  }
  auto a = allocFrame(**k, decoder->get());
  if (!a.ok()) {
    ::_exit(kAllocFailed);
  }
  if (!writeAll(STDOUT_FILENO, toString(uuidOf(a->uuid)) + "\n")) {
    ::_exit(kPipe);
  }
  for (;;) {
    ::pause();  // until SIGKILL
  }
}

// stranger: becomes nobody:nogroup, connects (admitted as the daemon's group), and must be
// refused the UUID.
[[noreturn]] void strangerChild(const std::string& socket, const std::string& uuidText) {
  if (::setgroups(0, nullptr) != 0 || ::setgid(kNobody) != 0 || ::setuid(kNobody) != 0) {
    ::_exit(kNoPrivDrop);
  }
  auto k = ipc::RemoteContext::connect(socket);
  if (!k.ok()) {
    ::_exit(kNoDaemon);
  }
  auto display = (*k)->open(virtio::kDisplayPath, O_RDWR);
  auto uuid = parseUuid(uuidText);
  if (!display.ok() || !uuid.ok()) {
    ::_exit(kNoDevice);
  }
  uapi::VirtioVideoImport req{};
  std::memcpy(req.uuid, uuid->data(), uuid->size());
  req.fdFlags = O_RDWR | O_CLOEXEC;
  const auto r = (*k)->ioctl(display->get(), uapi::kVirtioVideoImport, &req);
  ::_exit(!r.ok() && r.code() == EACCES ? kOk : kNotRefused);
}

// ZBUF_VIRTIO_CHILD=role:socket[:uuid] split at the colons.
std::vector<std::string> childRole(const char* text) {
  std::vector<std::string> parts;
  std::string_view rest(text);
  for (std::size_t colon = rest.find(':'); colon != std::string_view::npos;
       colon = rest.find(':')) {
    parts.emplace_back(rest.substr(0, colon));
    rest.remove_prefix(colon + 1);
  }
  parts.emplace_back(rest);
  return parts;
}

// The child roles, read before main().
[[maybe_unused]] const bool kIsChild = [] {
  const char* s = std::getenv("ZBUF_VIRTIO_CHILD");
  if (s == nullptr) {
    return false;
  }
  const std::vector<std::string> parts = childRole(s);
  if (parts.size() >= 2 && parts[0] == "decoder") {
    decoderChild(parts[1]);
  }
  if (parts.size() >= 2 && parts[0] == "export") {
    exportChild(parts[1]);
  }
  if (parts.size() >= 3 && parts[0] == "stranger") {
    strangerChild(parts[1], parts[2]);
  }
  ::_exit(99);
}();

class VirtioProcess : public ::testing::Test {
 protected:
  void startDaemon(const std::string& latencyMs, std::vector<std::string> extra = {}) {
    dir = fs::temp_directory_path() / ("zbufd-virtio-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    fs::permissions(dir, fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec);
    socket = (dir / "zbufd.sock").string();
    std::vector<std::string> argv{ZBUFD_PATH, "--socket", socket, "--virtio-latency", latencyMs};
    argv.insert(argv.end(), extra.begin(), extra.end());
    daemon = testing_support::spawn(argv, {}, nullptr);
    ASSERT_GT(daemon, 0);
    ASSERT_TRUE(testing_support::waitUntil([&] { return fs::exists(socket); }))
        << "zbufd did not make its socket within 10 s";
    auto k = ipc::RemoteContext::connect(socket);
    ASSERT_TRUE(k.ok()) << k.error().describe();
    remote = std::move(*k);
  }
  void TearDown() override {
    remote.reset();
    if (daemon > 0) {
      ::kill(daemon, SIGTERM);  // our own child, by pid
      int status = 0;
      ::waitpid(daemon, &status, 0);
    }
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  std::map<std::string, std::uint64_t> bench(const std::string& name) {
    std::map<std::string, std::uint64_t> values;
    auto fd = remote->open(std::string(virtio::kBenchDir) + "/" + name, O_RDONLY);
    if (!fd.ok()) {
      return values;
    }
    std::array<std::byte, 4096> buf{};
    auto n = remote->read(fd->get(), buf);
    std::istringstream in(std::string(reinterpret_cast<const char*>(buf.data()), n.value_or(0)));
    std::string key;
    std::uint64_t value = 0;
    while (in >> key >> value) {
      values[key] = value;
    }
    return values;
  }
  Result<UniqueFd> import(int display, const Uuid& uuid) {
    uapi::VirtioVideoImport req{};
    std::memcpy(req.uuid, uuid.data(), uuid.size());
    req.fdFlags = O_RDWR | O_CLOEXEC;
    ZBUF_TRY(remote->ioctl(display, uapi::kVirtioVideoImport, &req));
    return UniqueFd::adopt(static_cast<int>(req.fd));
  }
  static int reap(pid_t pid) {
    int status = 0;
    if (::waitpid(pid, &status, 0) != pid) {
      return -1;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

  fs::path dir;
  std::string socket;
  pid_t daemon = -1;
  std::shared_ptr<ipc::RemoteContext> remote;
};

std::string readLine(int fd) {
  std::string line;
  char c = 0;
  while (::read(fd, &c, 1) == 1 && c != '\n') {
    line += c;
  }
  return line;
}

TEST_F(VirtioProcess, ADisplayInOneProcessShowsFramesADecoderInAnotherExported) {
  ASSERT_NO_FATAL_FAILURE(startDaemon("200"));
  auto pair = sys::socketpair(SOCK_STREAM);
  ASSERT_TRUE(pair.ok());
  const pid_t child = testing_support::spawn(
      {"/proc/self/exe"}, {"ZBUF_VIRTIO_CHILD=decoder:" + socket}, nullptr, pair->second.get());
  ASSERT_GT(child, 0);
  pair->second.reset();
  const int channel = pair->first.get();
  // The UUIDs come at once; importing them waits for the host's answers (the round trip).
  std::istringstream uuids(readLine(channel));
  std::string a;
  std::string b;
  uuids >> a >> b;
  ASSERT_TRUE(parseUuid(a).ok() && parseUuid(b).ok()) << "'" << a << "' '" << b << "'";
  UniqueFd display = std::move(remote->open(virtio::kDisplayPath, O_RDWR).value());
  std::array<UniqueFd, 2> imported;
  imported[0] = std::move(import(display.get(), *parseUuid(a)).value());
  imported[1] = std::move(import(display.get(), *parseUuid(b)).value());
  // Frame n: the decoder process's DECODE, then this process's DISPLAY. Neither waits for
  // the other's work: the decoder's DECODE of frame n + 2 waits on the READ fence of frame n's
  // DISPLAY, and each DISPLAY on its DECODE's WRITE fence.
  for (std::uint64_t n = 0; n < kFrames; ++n) {
    ASSERT_EQ(::write(channel, "d", 1), 1);
    char done = 0;
    ASSERT_EQ(::read(channel, &done, 1), 1) << "the decoder process failed at frame " << n;
    uapi::VirtioVideoFrame req{static_cast<std::uint32_t>(imported.at(n % 2).get()), 0, n};
    ASSERT_TRUE(remote->ioctl(display.get(), uapi::kVirtioVideoDisplay, &req).ok());
  }
  for (const UniqueFd& fd : imported) {
    std::array<struct pollfd, 1> p{{{fd.get(), POLLOUT, 0}}};
    ASSERT_EQ(remote->poll(p, 10000).value(), 1);
  }
  auto shown = bench("display");
  EXPECT_EQ(shown["frames"], kFrames);
  EXPECT_EQ(shown["mismatches"], 0U);
  EXPECT_EQ(shown["verified"], kFrames * kFrameBytes);
  pair->first.reset();  // the decoder process ends by itself
  EXPECT_EQ(reap(child), kOk);
  // Its buffers live on while this process holds them, and stay registered ...
  EXPECT_EQ(bench("host")["entries"], 2U);
  // ... until the last holder lets go.
  ASSERT_TRUE(remote->close(std::move(imported[0])).ok());
  ASSERT_TRUE(remote->close(std::move(imported[1])).ok());
  ASSERT_TRUE(remote->close(std::move(display)).ok());
  EXPECT_TRUE(testing_support::waitUntil([&] { return bench("host")["entries"] == 0; }));
  EXPECT_EQ(import(remote->open(virtio::kDisplayPath, O_RDWR).value().get(), *parseUuid(a)).code(),
            ENOENT);
}

TEST_F(VirtioProcess, AClientKilledBeforeItsRegistrationCompletedLeavesNothing) {
  ASSERT_NO_FATAL_FAILURE(startDaemon("2000"));
  int out = -1;
  const pid_t child =
      testing_support::spawn({"/proc/self/exe"}, {"ZBUF_VIRTIO_CHILD=export:" + socket}, &out);
  ASSERT_GT(child, 0);
  const std::string text = readLine(out);
  ::close(out);
  auto uuid = parseUuid(text);
  ASSERT_TRUE(uuid.ok()) << "'" << text << "'";
  EXPECT_EQ(bench("host")["pending"], 1U);  // exported, its round trip under way
  ASSERT_EQ(::kill(child, SIGKILL), 0);     // our own child, by pid
  EXPECT_EQ(reap(child), 128 + SIGKILL);
  // The daemon releases what the dead client held; the buffer's entry goes with it, and the
  // host's late answer registers nothing.
  EXPECT_TRUE(testing_support::waitUntil([&] { return bench("host")["entries"] == 0; }));
  EXPECT_TRUE(testing_support::waitUntil([&] { return bench("host")["orphaned"] == 1; }));
  EXPECT_EQ(bench("host")["registered"], 0U);
  UniqueFd display = std::move(remote->open(virtio::kDisplayPath, O_RDWR).value());
  EXPECT_EQ(import(display.get(), *uuid).code(), ENOENT);
}

TEST_F(VirtioProcess, AClientOfAnotherUserIsRefusedTheUuid) {
  if (::geteuid() != 0 || ::getgrgid(kNobody) == nullptr) {
    GTEST_SKIP() << "needs root, to run a client as nobody:nogroup";
  }
  ASSERT_NO_FATAL_FAILURE(startDaemon("0", {"--group", ::getgrgid(kNobody)->gr_name}));
  UniqueFd decoder = std::move(remote->open(virtio::kDecoderPath, O_RDWR).value());
  auto frame = allocFrame(*remote, decoder.get());
  ASSERT_TRUE(frame.ok()) << frame.error().describe();
  UniqueFd buffer = UniqueFd::adopt(static_cast<int>(frame->fd));
  const std::string uuid = toString(uuidOf(frame->uuid));
  const pid_t child = testing_support::spawn(
      {"/proc/self/exe"}, {"ZBUF_VIRTIO_CHILD=stranger:" + socket + ":" + uuid}, nullptr);
  ASSERT_GT(child, 0);
  EXPECT_EQ(reap(child), kOk) << "the client of uid " << kNobody << " was not refused (EACCES)";
  EXPECT_EQ(bench("host")["refused"], 1U);
  // Its owner resolves it.
  UniqueFd display = std::move(remote->open(virtio::kDisplayPath, O_RDWR).value());
  EXPECT_TRUE(import(display.get(), uuidOf(frame->uuid)).ok());
}

}  // namespace
}  // namespace zbuf
