// A soak of zbufd: 8 client processes at a time stream the ADC through the daemon (the main job's
// iio-to-app zero-copy loop on a RemoteContext, every byte checked in the client) or, while the
// ADC is taken by another, work the heaps (allocate, map, write, sync, export and merge sync
// files), for a bounded time, while this test SIGKILLs some of them at random and starts new
// ones. Every client that ends by itself must have seen every byte right; and once they are all
// gone the daemon holds nothing of them: no buffer in its bufinfo, no file charged to a client,
// no fd more than before.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/spawn.h"
#include "support/wait_until.h"
#include "zbuf/core/bufinfo.h"
#include "zbuf/daemon/server.h"
#include "zbuf/ipc/remote_context.h"
#include "zbuf/stream/pipeline.h"
#include "zbuf/uapi/abi.h"
#include "zbuf/uapi/context.h"

namespace zbuf {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr int kExitMismatch = 3;
constexpr int kExitBroken = 4;

Result<std::string> readWhole(uapi::FdCalls& k, const char* path) {
  ZBUF_ASSIGN_OR_RETURN(auto fd, k.open(path, O_RDONLY | O_CLOEXEC));
  std::string text;
  std::array<char, 8192> chunk{};
  for (;;) {
    auto n = k.read(fd.get(), std::as_writable_bytes(std::span(chunk)));
    if (!n.ok() || *n == 0) {
      (void)k.close(std::move(fd));
      if (!n.ok()) {
        return std::move(n).error();
      }
      return text;
    }
    text.append(chunk.data(), *n);
  }
}

// The heaps' work of a client that found the ADC taken: a buffer written through its mapping
// and read back inside SYNC brackets, a sync file exported and merged with itself.
bool heapWork(uapi::FdCalls& k, std::mt19937& rng) {
  auto heap = k.open("/dev/dma_heap/system", O_RDONLY | O_CLOEXEC);
  if (!heap.ok()) {
    return false;
  }
  uapi::DmaHeapAllocationData data{};
  data.len = 4096U * (1 + rng() % 16);
  data.fdFlags = O_RDWR | O_CLOEXEC;
  const bool allocated = k.ioctl(heap->get(), uapi::kDmaHeapIoctlAlloc, &data).ok();
  (void)k.close(std::move(*heap));
  if (!allocated) {
    return false;
  }
  UniqueFd buf = UniqueFd::adopt(static_cast<int>(data.fd));
  {
    auto map = k.mmap(buf.get(), data.len, PROT_READ | PROT_WRITE, MAP_SHARED, 0);
    if (!map.ok()) {
      return false;
    }
    const auto value = static_cast<std::byte>(rng());
    uapi::DmaBufSync start{uapi::kDmaBufSyncStart | uapi::kDmaBufSyncRw};
    uapi::DmaBufSync end{uapi::kDmaBufSyncEnd | uapi::kDmaBufSyncRw};
    (void)k.ioctl(buf.get(), uapi::kDmaBufIoctlSync, &start);
    std::memset(map->bytes().data(), static_cast<int>(value), data.len);
    (void)k.ioctl(buf.get(), uapi::kDmaBufIoctlSync, &end);
    for (std::byte b : map->bytes()) {
      if (b != value) {
        return false;
      }
    }
  }  // unmapped
  uapi::DmaBufExportSyncFile exp{uapi::kDmaBufSyncRead, -1};
  if (!k.ioctl(buf.get(), uapi::kDmaBufIoctlExportSyncFile, &exp).ok()) {
    return false;
  }
  UniqueFd sync = UniqueFd::adopt(exp.fd);
  uapi::SyncMergeData merge{};
  std::strcpy(merge.name, "soak");  // NOLINT: a literal shorter than the field
  merge.fd2 = exp.fd;
  if (!k.ioctl(sync.get(), uapi::kSyncIocMerge, &merge).ok()) {
    return false;
  }
  (void)k.close(merge.fence);
  (void)k.close(std::move(sync));
  return k.close(std::move(buf)).ok();
}

// A soak client: until its deadline, streams the ADC (when it can take it) or works the heaps.
[[noreturn]] void soakClient(const char* socket) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlives the test
  std::mt19937 rng(static_cast<unsigned>(::getpid()));
  auto k = ipc::RemoteContext::connect(socket);
  if (!k.ok()) {
    ::_exit(kExitBroken);
  }
  const std::shared_ptr<uapi::FdCalls> kernel = *k;
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(200 + rng() % 600);
  std::uint64_t verified = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    StreamConfig c;
    c.path = StreamPath::IioToApp;
    c.blockBytes = 16384U << (rng() % 3);
    c.blocks = 2 + rng() % 3;
    c.bytes = c.blockBytes * (8 + rng() % 24);
    auto p = Pipeline::create(c, kernel);
    if (!p.ok()) {
      ::_exit(kExitBroken);
    }
    auto r = p->run(StreamMode::Dmabuf);
    if (!r.ok()) {
      // The ADC is another client's (EBUSY): the heaps, then try again.
      if (r.code() != EBUSY || !heapWork(*kernel, rng)) {
        ::_exit(kExitBroken);
      }
      continue;
    }
    if (r->mismatches != 0 || r->verifiedBytes != r->bytes) {
      ::_exit(kExitMismatch);
    }
    verified += r->verifiedBytes;
  }
  // What it checked, for the test's count (the pipe keeps it after the exit).
  const std::string report = std::to_string(verified) + "\n";
  const ssize_t written = ::write(STDOUT_FILENO, report.data(), report.size());
  ::_exit(written == static_cast<ssize_t>(report.size()) ? 0 : kExitBroken);
}

[[maybe_unused]] const bool kIsSoakChild = [] {
  if (const char* s = std::getenv("ZBUF_SOAK_CHILD"); s != nullptr) {
    soakClient(s);
  }
  return false;
}();

TEST(ZbufdSoak, EightClientsStreamAndDieAndTheDaemonKeepsNothingOfThem) {
  const fs::path dir = fs::temp_directory_path() / ("zbufd-soak-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string socket = (dir / "zbufd.sock").string();
  const pid_t daemon = testing_support::spawn({ZBUFD_PATH, "--socket", socket}, {}, nullptr);
  ASSERT_GT(daemon, 0);
  // Stopped however the test ends (an assertion that returns early included): a daemon left
  // running would hold ctest's output pipe open.
  struct StopDaemon {
    pid_t pid;
    ~StopDaemon() {
      if (pid > 0 && ::kill(pid, SIGTERM) == 0) {  // our own child, by pid, if not reaped
        int status = 0;
        (void)::waitpid(pid, &status, 0);
      }
    }
  } stopDaemon{daemon};
  ASSERT_TRUE(testing_support::waitUntil([&] { return fs::exists(socket); }));
  auto k = ipc::RemoteContext::connect(socket);
  ASSERT_TRUE(k.ok()) << k.error().describe();
  const std::size_t fdsBefore = testing_support::fdCount(daemon);

  std::mt19937 rng(12345);
  struct Client {
    bool killed = false;
    UniqueFd out;  // its report
  };
  std::map<pid_t, Client> live;
  std::uint64_t verified = 0;
  int ended = 0;
  int killed = 0;
  int failed = 0;
  const auto stopAt = std::chrono::steady_clock::now() + 3s;
  auto reap = [&](bool block) {
    for (;;) {
      int status = 0;
      const pid_t pid = ::waitpid(-1, &status, block ? 0 : WNOHANG);
      if (pid <= 0 || pid == daemon) {
        if (pid == daemon) {
          ADD_FAILURE() << "zbufd ended during the soak, status " << status;
        }
        return;
      }
      auto it = live.find(pid);
      if (it == live.end()) {
        continue;
      }
      if (WIFEXITED(status)) {
        ++ended;
        std::array<char, 64> report{};
        const ssize_t n = ::read(it->second.out.get(), report.data(), report.size() - 1);
        verified += n > 0 ? std::strtoull(report.data(), nullptr, 10) : 0;
        if (WEXITSTATUS(status) != 0) {
          ++failed;
          ADD_FAILURE() << "client " << pid << " exited " << WEXITSTATUS(status)
                        << (WEXITSTATUS(status) == kExitMismatch ? " (a byte was wrong)" : "");
        }
      } else if (WIFSIGNALED(status) && !it->second.killed) {
        ++failed;
        ADD_FAILURE() << "client " << pid << " died of signal " << WTERMSIG(status);
      } else {
        ++killed;
      }
      live.erase(it);
      if (block || live.empty()) {
        return;
      }
    }
  };
  while (std::chrono::steady_clock::now() < stopAt) {
    while (live.size() < 8) {
      int out = -1;
      const pid_t c =
          testing_support::spawn({"/proc/self/exe"}, {"ZBUF_SOAK_CHILD=" + socket}, &out);
      ASSERT_GT(c, 0);
      live.emplace(c, Client{false, UniqueFd::adopt(out)});
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20 + rng() % 80));  // the soak's pace
    if (rng() % 3 == 0) {
      auto victim = std::next(live.begin(), static_cast<long>(rng() % live.size()));
      if (!victim->second.killed && ::kill(victim->first, SIGKILL) == 0) {  // ours, by pid
        victim->second.killed = true;
      }
    }
    reap(false);
  }
  while (!live.empty()) {
    reap(true);
  }
  EXPECT_EQ(failed, 0);
  EXPECT_GT(ended, 0) << "no client ended by itself";
  EXPECT_GT(killed, 0) << "no client was killed";
  EXPECT_GT(verified, 0U) << "no client streamed";
  // Nothing of the dead is left: no buffer, no file charged to a client but ours, no fd more.
  EXPECT_TRUE(testing_support::waitUntil([&] {
    auto text = readWhole(**k, uapi::kBufInfoPath);
    auto info = text.ok() ? parseBufInfo(*text) : Result<BufInfo>(text.error());
    return info.ok() && info->buffers.empty();
  })) << readWhole(**k, uapi::kBufInfoPath).value_or("?");
  EXPECT_TRUE(testing_support::waitUntil([&] {
    return testing_support::fdCount(daemon) <= fdsBefore;
  })) << testing_support::fdCount(daemon)
      << " fds in the daemon, " << fdsBefore << " before";
  auto clients = readWhole(**k, daemon::kClientsPath);
  ASSERT_TRUE(clients.ok());
  std::istringstream lines(*clients);
  std::string line;
  std::getline(lines, line);
  while (std::getline(lines, line)) {
    // pid comm files ...: only this process (reading the file now) may hold anything.
    if (std::stol(line) != ::getpid()) {
      EXPECT_NE(line.find("\t0\t0\t0\t"), std::string::npos) << line;
    }
  }
  std::cout << ended << " clients ended by themselves, " << killed << " were killed; " << verified
            << " bytes streamed and checked by the clients that ended\n";
  k->reset();
  ASSERT_EQ(::kill(daemon, SIGTERM), 0);  // our own child, by pid
  int status = 0;
  EXPECT_EQ(::waitpid(daemon, &status, 0), daemon);
  stopDaemon.pid = -1;  // reaped: its pid is no longer ours
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  std::error_code ec;
  fs::remove_all(dir, ec);
}

}  // namespace
}  // namespace zbuf
