// zbufd as a process of its own, with clients in other processes: this test process, and a
// child client (this binary re-executed with ZBUFD_TEST_CHILD set) that takes buffers, attaches
// them to the ADC, and dies by SIGKILL with everything held. What a dead client held is
// released (the daemon's fd count comes back), SIGTERM stops the daemon cleanly, and it
// removes its socket.
// ctest-labels: concurrency
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "support/spawn.h"
#include "support/wait_until.h"
#ifdef ZBUF_CLI_PATH
#include <nlohmann/json.hpp>

#include "support/cli_run.h"
#endif
#include "zbuf/devices/board.h"
#include "zbuf/devices/iio/iio_uapi.h"
#include "zbuf/ipc/remote_context.h"
#include "zbuf/uapi/abi.h"

namespace zbuf {
namespace {

namespace fs = std::filesystem;

UniqueFd allocate(uapi::FdCalls& k, std::uint64_t len) {
  auto heap = k.open("/dev/dma_heap/system", O_RDONLY);
  if (!heap.ok()) {
    return {};
  }
  uapi::DmaHeapAllocationData data{};
  data.len = len;
  data.fdFlags = O_RDWR | O_CLOEXEC;
  const bool ok = k.ioctl(heap->get(), uapi::kDmaHeapIoctlAlloc, &data).ok();
  (void)k.close(std::move(*heap));  // released in the daemon before close() returns
  return ok ? UniqueFd::adopt(static_cast<int>(data.fd)) : UniqueFd();
}

// The child client: holds an IIO buffer with attached, enqueued blocks, says so on fd 1, and
// waits to be killed. Runs before main() when the variable is set.
[[noreturn]] void childClient(const char* socket) {
  auto k = ipc::RemoteContext::connect(socket);
  if (!k.ok()) {
    ::_exit(10);
  }
  auto dev = (*k)->open(Board::kAdcPath, O_RDWR);
  int ring = 0;
  if (!dev.ok() || !(*k)->ioctl(dev->get(), IIO_BUFFER_GET_FD_IOCTL, &ring).ok()) {
    ::_exit(11);
  }
  std::vector<UniqueFd> held;
  for (int i = 0; i < 8; ++i) {
    held.push_back(allocate(**k, 64 * 1024));
    int fd = held.back().get();
    if (!(*k)->ioctl(ring, IIO_BUFFER_DMABUF_ATTACH_IOCTL, &fd).ok()) {
      ::_exit(12);
    }
  }
  const char ready = 'r';
  if (::write(STDOUT_FILENO, &ready, 1) != 1) {
    ::_exit(13);
  }
  for (;;) {
    ::pause();  // until SIGKILL
  }
}

[[maybe_unused]] const bool kIsChild = [] {
  if (const char* s = std::getenv("ZBUFD_TEST_CHILD"); s != nullptr) {
    childClient(s);
  }
  return false;
}();

using testing_support::fdCount;

class ZbufdProcess : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = fs::temp_directory_path() / ("zbufd-proc-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    socket = (dir / "zbufd.sock").string();
    daemon = spawn({ZBUFD_PATH, "--socket", socket}, {}, nullptr);
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

  static pid_t spawn(std::vector<std::string> argv, const std::vector<std::string>& env, int* out,
                     int fd3 = -1) {
    return testing_support::spawn(std::move(argv), env, out, fd3);
  }

  fs::path dir;
  std::string socket;
  pid_t daemon = -1;
  std::shared_ptr<ipc::RemoteContext> remote;
};

TEST_F(ZbufdProcess, AClientInAnotherProcessStreamsFromTheAdc) {
  UniqueFd dev = std::move(remote->open(Board::kAdcPath, O_RDWR).value());
  int ring = 0;
  ASSERT_TRUE(remote->ioctl(dev.get(), IIO_BUFFER_GET_FD_IOCTL, &ring).ok());
  UniqueFd block = allocate(*remote, 16 * 1024);
  ASSERT_TRUE(block.isValid());
  auto map = remote->mmap(block.get(), 16 * 1024, PROT_READ, MAP_SHARED, 0);
  ASSERT_TRUE(map.ok());
  int fd = block.get();
  ASSERT_TRUE(remote->ioctl(ring, IIO_BUFFER_DMABUF_ATTACH_IOCTL, &fd).ok());
  auto enable = remote->open(std::string(Board::kAdcSysfs) + "/buffer0/enable", O_WRONLY);
  ASSERT_TRUE(enable.ok());
  ASSERT_TRUE(remote->write(enable->get(), std::as_bytes(std::span("1\n", 2))).ok());
  iio_dmabuf req{static_cast<std::uint32_t>(block.get()), 0, 16 * 1024};
  ASSERT_TRUE(remote->ioctl(ring, IIO_BUFFER_DMABUF_ENQUEUE_IOCTL, &req).ok());
  // The daemon's fence wakes a poll(2) made here on the buffer's readiness, through zbufd.
  std::array<struct pollfd, 1> p{{{block.get(), POLLIN, 0}}};
  ASSERT_EQ(remote->poll(p, 5000).value(), 1);
  // A sync file exported here polls readable with plain poll(2): it is a pipe of the daemon's.
  uapi::DmaBufExportSyncFile exp{uapi::kDmaBufSyncRead, -1};
  ASSERT_TRUE(remote->ioctl(block.get(), uapi::kDmaBufIoctlExportSyncFile, &exp).ok());
  UniqueFd sync = UniqueFd::adopt(exp.fd);
  struct pollfd plain {
    sync.get(), POLLIN, 0
  };
  EXPECT_EQ(::poll(&plain, 1, 5000), 1);
  // The ramp the ADC wrote (the board's default pattern) is in this process's mapping.
  bool nonzero = false;
  for (std::byte b : map->bytes()) {
    nonzero = nonzero || b != std::byte{0};
  }
  EXPECT_TRUE(nonzero);
  ASSERT_TRUE(remote->close(ring).ok());
}

TEST_F(ZbufdProcess, WhatAKilledClientHeldIsReleased) {
  // Settle the daemon: a round trip of ours whose files are all closed through the calls (so
  // released before they return): what is open in the daemon now is what it keeps.
  ASSERT_TRUE(remote->close(allocate(*remote, 4096)).ok());
  const std::size_t before = fdCount(daemon);
  int out = -1;
  const pid_t child = spawn({"/proc/self/exe"}, {"ZBUFD_TEST_CHILD=" + socket}, &out);
  ASSERT_GT(child, 0);
  char ready = 0;
  ASSERT_EQ(::read(out, &ready, 1), 1) << "the child client did not get ready";
  ::close(out);
  EXPECT_GT(fdCount(daemon), before);    // its connection at least
  ASSERT_EQ(::kill(child, SIGKILL), 0);  // our own child, by pid
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status));
  // Its connection closes, its buffers' and the IIO buffer's descriptions are released, and
  // the IIO buffer can be taken again (its attachments went with it).
  EXPECT_TRUE(testing_support::waitUntil([&] { return fdCount(daemon) == before; }))
      << fdCount(daemon) << " fds in the daemon, " << before << " before the child";
  UniqueFd dev = std::move(remote->open(Board::kAdcPath, O_RDWR).value());
  int ring = 0;
  EXPECT_TRUE(testing_support::waitUntil(
      [&] { return remote->ioctl(dev.get(), IIO_BUFFER_GET_FD_IOCTL, &ring).ok(); }));
}

#ifdef ZBUF_CLI_PATH
TEST_F(ZbufdProcess, ZbufStreamRunsItsMainJobAsAClient) {
  // The application in zbuf, the devices in zbufd: every path, both modes, every byte checked
  // at the far end (the host and the DAC are the daemon's), twice (the second pass starts where
  // the first left the daemon's streams).
  for (const char* path : {"iio-to-usb", "iio-to-app", "usb-to-dac"}) {
    const test::CliRun r =
        test::runZbuf(std::string("stream --daemon ") + socket + " --path " + path +
                          " --bytes 4M --block-size 64K --repeat 2 --json",
                      false);
    ASSERT_EQ(r.status, 0) << path << "\n" << r.out;
    auto doc = nlohmann::json::parse(r.out);
    EXPECT_EQ(doc["settings"]["daemon"], socket);
    ASSERT_EQ(doc["runs"].size(), 4U) << path;
    for (const auto& run : doc["runs"]) {
      EXPECT_EQ(run["bytes"].get<std::uint64_t>(), 4U << 20) << path;
      EXPECT_EQ(run["verified_bytes"].get<std::uint64_t>(), 4U << 20) << path;
      EXPECT_EQ(run["mismatches"].get<std::uint64_t>(), 0U) << path;
      EXPECT_EQ(run["errors"].get<std::uint64_t>(), 0U) << path;
      EXPECT_EQ(run["hw_cpu_s_per_gib"].get<double>(), 0.0) << "the hardware is the daemon's";
    }
  }
}
#endif

// systemd socket activation (sd_listen_fds(3)), as dist/systemd/zbufd.socket starts it: the
// listening socket arrives as fd 3 with LISTEN_PID and LISTEN_FDS; zbufd serves it, and leaves
// the socket file to its owner when it stops.
class ZbufdActivation : public ZbufdProcess {
 protected:
  void SetUp() override {
    dir = fs::temp_directory_path() / ("zbufd-activation-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    socket = (dir / "activated.sock").string();
  }
  // What systemd does for ListenSequentialPacket=: bind and listen.
  UniqueFd listen() const {
    UniqueFd s = UniqueFd::adopt(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, socket.c_str(), sizeof(addr.sun_path) - 1);
    EXPECT_EQ(::bind(s.get(), reinterpret_cast<const sockaddr*>(&addr),  // NOLINT: sockaddr API
                     sizeof(addr)),
              0);
    EXPECT_EQ(::listen(s.get(), 16), 0);
    return s;
  }
};

TEST_F(ZbufdActivation, ServesTheSocketSystemdPassesAndLeavesItsFile) {
  UniqueFd listening = listen();
  // LISTEN_PID must be the daemon's own pid: the shell sets it to its $$ and execs zbufd.
  daemon = spawn({"/bin/sh", "-c", "LISTEN_PID=$$ LISTEN_FDS=1 exec \"$0\" \"$@\"", ZBUFD_PATH}, {},
                 nullptr, listening.get());
  ASSERT_GT(daemon, 0);
  listening.reset();  // the daemon holds it now, as it would from systemd
  auto k = ipc::RemoteContext::connect(socket);
  ASSERT_TRUE(k.ok()) << k.error().describe();
  UniqueFd buf = allocate(**k, 4096);
  EXPECT_TRUE(buf.isValid());
  ASSERT_EQ(::kill(daemon, SIGTERM), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(daemon, &status, 0), daemon);
  daemon = -1;
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_TRUE(fs::exists(socket)) << "the socket file is systemd's, not zbufd's, to remove";
}

TEST_F(ZbufdActivation, AnFdMeantForAnotherProcessIsNotTaken) {
  UniqueFd listening = listen();
  // LISTEN_PID names another process (sd_listen_fds ignores the variables then): zbufd binds
  // its own socket and does not touch fd 3.
  const std::string own = (dir / "own.sock").string();
  daemon = spawn({ZBUFD_PATH, "--socket", own}, {"LISTEN_PID=1", "LISTEN_FDS=1"}, nullptr,
                 listening.get());
  ASSERT_GT(daemon, 0);
  ASSERT_TRUE(testing_support::waitUntil([&] { return fs::exists(own); }));
  auto k = ipc::RemoteContext::connect(own);
  EXPECT_TRUE(k.ok()) << k.error().describe();
}

#ifdef ZBUF_CLI_PATH
TEST_F(ZbufdProcess, ZbufInfoListsTheDaemonsBuffersAndWhoHoldsThem) {
  UniqueFd a = allocate(*remote, 64 * 1024);
  UniqueFd b = allocate(*remote, 4096);
  ASSERT_TRUE(a.isValid() && b.isValid());
  char name[] = "held-by-the-test";
  ASSERT_TRUE(remote->ioctl(a.get(), uapi::kDmaBufSetName, name).ok());
  const test::CliRun r = test::runZbuf("info --daemon " + socket + " --json", false);
  ASSERT_EQ(r.status, 0) << r.out;
  auto doc = nlohmann::json::parse(r.out);
  ASSERT_EQ(doc["buffers"].size(), 2U) << r.out;
  std::vector<std::uint64_t> inodes;
  for (const auto& buf : doc["buffers"]) {
    inodes.push_back(buf["ino"].get<std::uint64_t>());
  }
  EXPECT_EQ(doc["buffers"][0]["size"], 64 * 1024);
  EXPECT_EQ(doc["buffers"][0]["name"], "held-by-the-test");
  EXPECT_EQ(doc["total_bytes"], 64 * 1024 + 4096);
  // This process holds both, charged to it; zbuf info is a client too, holding no buffer.
  bool found = false;
  for (const auto& c : doc["clients"]) {
    if (c["pid"] == ::getpid()) {
      found = true;
      EXPECT_EQ(c["buffers"], 2);
      EXPECT_EQ(c["bytes"], 64 * 1024 + 4096);
      EXPECT_EQ(c["buffer_inodes"].get<std::vector<std::uint64_t>>(), inodes);
    } else {
      EXPECT_EQ(c["buffers"], 0) << c.dump();
    }
  }
  EXPECT_TRUE(found) << r.out;
  // The text: the kernel's listing, then the clients.
  const test::CliRun t = test::runZbuf("info --daemon " + socket, false);
  ASSERT_EQ(t.status, 0);
  EXPECT_NE(t.out.find("Dma-buf Objects:"), std::string::npos) << t.out;
  EXPECT_NE(t.out.find("held-by-the-test"), std::string::npos) << t.out;
  EXPECT_NE(t.out.find("Clients of zbufd"), std::string::npos) << t.out;
  // Released in the daemon, gone from the listing.
  ASSERT_TRUE(remote->close(std::move(a)).ok());
  const test::CliRun after = test::runZbuf("info --daemon " + socket + " --json", false);
  EXPECT_EQ(nlohmann::json::parse(after.out)["buffers"].size(), 1U) << after.out;
}
#endif

TEST_F(ZbufdProcess, AConfigFileSetsTheBoardAndTheCommandLineWins) {
  const std::string config = (dir / "zbufd.conf").string();
  {
    std::ofstream f(config);
    f << "# zbufd's board\nchannels = 2\nbenchmark = true\npattern = prbs\nfileio-blocks = 6\n";
  }
  const std::string other = (dir / "configured.sock").string();
  const pid_t d =
      spawn({ZBUFD_PATH, "--config", config, "--socket", other, "--channels", "8"}, {}, nullptr);
  ASSERT_GT(d, 0);
  ASSERT_TRUE(testing_support::waitUntil([&] { return fs::exists(other); }));
  std::string text;
  {
    auto k = ipc::RemoteContext::connect(other);
    ASSERT_TRUE(k.ok()) << k.error().describe();
    UniqueFd fd = std::move((*k)->open(std::string(Board::kBenchDir) + "/board", O_RDONLY).value());
    std::array<char, 4096> buf{};
    auto n = (*k)->read(fd.get(), std::as_writable_bytes(std::span(buf)));
    ASSERT_TRUE(n.ok());
    text.assign(buf.data(), *n);
  }
  ::kill(d, SIGTERM);  // our own child, by pid
  int status = 0;
  ::waitpid(d, &status, 0);
  EXPECT_NE(text.find("channels 8\n"), std::string::npos) << text;  // the command line's
  EXPECT_NE(text.find("benchmark 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("pattern prbs\n"), std::string::npos) << text;
  EXPECT_NE(text.find("fileio_blocks 6\n"), std::string::npos) << text;
  // A file that cannot be read, or an option zbufd does not know, is a usage error (status 2).
  for (const std::string& args : {std::string("/nonexistent/zbufd.conf"), config + ".bad"}) {
    if (args.ends_with(".bad")) {
      std::ofstream f(config + ".bad");
      f << "no-such-option = 1\n";
    }
    const pid_t bad =
        spawn({"/bin/sh", "-c",
               std::string(ZBUFD_PATH) + " " + args + " --socket " + (dir / "bad.sock").string()},
              {}, nullptr);
    ASSERT_GT(bad, 0);
    int st = 0;
    const bool ended =
        testing_support::waitUntil([&] { return ::waitpid(bad, &st, WNOHANG) == bad; });
    if (!ended) {
      ::kill(bad, SIGKILL);  // our own child, by pid: it started when it should have refused
      ::waitpid(bad, &st, 0);
    }
    EXPECT_TRUE(ended) << args << ": zbufd did not refuse it";
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) != 0) << args;
    EXPECT_FALSE(fs::exists(dir / "bad.sock")) << args;
  }
}

TEST_F(ZbufdProcess, SigtermStopsTheDaemonAndRemovesItsSocket) {
  UniqueFd buf = allocate(*remote, 4096);  // held across the stop
  ASSERT_EQ(::kill(daemon, SIGTERM), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(daemon, &status, 0), daemon);
  daemon = -1;
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_FALSE(fs::exists(socket));
  // The fd still maps: the memory is the client's too. Calls through the daemon fail.
  EXPECT_TRUE(sys::mmap(4096, PROT_READ, MAP_SHARED, buf.get(), 0).ok());
  const int code = remote->fstat(buf.get()).code();
  EXPECT_TRUE(code == ECONNRESET || code == EPIPE || code == ENOENT || code == ECONNREFUSED)
      << code;
}

}  // namespace
}  // namespace zbuf
