// bench_handoff: a one-way hand-off of a buffer between two processes, zbuf against iceoryx in
// the same run (issue 10; docs/daemon.md). A producer process pinned to CPU 0 fills the buffer
// and hands it over; a consumer process pinned to CPU 1 wakes with the buffer mapped and reads
// the producer's timestamp from it. The latency of one message is the consumer's steady_clock
// at the wake-up minus that timestamp. The consumer acknowledges each message through an ack
// channel of the same mechanism, and the producer sends the next one only after the ack, so
// each message is measured alone.
//
// zbuf: a zbufd process started here with --benchmark; the producer and the consumer each
// connect a RemoteContext of their own (both are forked before anything connects). One dma-buf
// from /dev/dma_heap/system, mapped by both, and two sw_sync timelines, data and ack; the
// producer makes them and passes them to the consumer by SCM_RIGHTS. Message i: the producer
// writes the payload and then the timestamp between DMA_BUF_IOCTL_SYNC START and END (write),
// then SW_SYNC_IOC_INC on the data timeline; so the measured window is the SYNC END, the INC and
// the wake-up, the whole publication. The consumer made its fence for point i beforehand and
// waits on the sync file with plain poll(2); its clock is read when poll returns, before the
// SYNC START/END (read) around the timestamp's read. Then it closes the sync file, makes the
// fence for point i + 1 and acks (INC on the ack timeline, which the producer waits on the same
// way, with its fence made before it signals).
//
// iceoryx: a RouDi started here (a child process running an in-process RouDi, its output to
// /dev/null), a mempool for the payload and one for the acks. The producer loans a chunk,
// writes the payload, takes the timestamp right before publish(); the consumer's clock is read
// when take() returns the chunk. The ack channel is a publisher/subscriber pair the other way.
//
// Wait modes: blocking (zbuf: poll(2) with a timeout; iceoryx: a WaitSet with the subscriber's
// HAS_DATA state, timedWait) and busy-polling (zbuf: poll(2) with timeout 0 in a loop;
// iceoryx: take() in a loop). Each repetition runs zbuf-block, iceoryx-block, zbuf-busy,
// iceoryx-busy, each in a fresh producer/consumer pair, --messages messages after 10% more as
// warm-up. The program prints each repetition's p50 and p99, the medians over the repetitions
// with their [min-max] and zbuf over iceoryx per mode; --json writes the same numbers.
//
// Usage: bench_handoff [--messages N] [--reps R] [--size BYTES] [--json PATH] [--zbufd PATH]
#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "iceoryx_hoofs/log/logmanager.hpp"
#include "iceoryx_hoofs/posix_wrapper/posix_access_rights.hpp"
#include "iceoryx_posh/iceoryx_posh_config.hpp"
#include "iceoryx_posh/internal/roudi/roudi.hpp"
#include "iceoryx_posh/popo/untyped_publisher.hpp"
#include "iceoryx_posh/popo/untyped_subscriber.hpp"
#include "iceoryx_posh/popo/wait_set.hpp"
#include "iceoryx_posh/roudi/iceoryx_roudi_components.hpp"
#include "iceoryx_posh/runtime/posh_runtime.hpp"
#include "stats.h"
#include "zbuf/base/sys.h"
#include "zbuf/ipc/remote_context.h"
#include "zbuf/uapi/abi.h"

namespace {

using zbuf::bench::percentile;
using zbuf::bench::Spread;
using zbuf::bench::spread;

using namespace zbuf;
using Clock = std::chrono::steady_clock;

constexpr const char* kUsage =
    "usage: bench_handoff [--messages N] [--reps R] [--size BYTES] [--json PATH] [--zbufd PATH]\n"
    "  --messages N   measured messages per case, at least 10 (5000; 10% more run as warm-up)\n"
    "  --reps R       repetitions of the four cases, alternating (5)\n"
    "  --size BYTES   the payload, 16 to 67108864 (4096)\n"
    "  --json PATH    write the numbers as JSON to PATH too\n"
    "  --zbufd PATH   the zbufd to start (the one built with this program)\n";
constexpr const char* kSwSyncPath = "/sys/kernel/debug/sync/sw_sync";
constexpr int kProducerCpu = 0;
constexpr int kConsumerCpu = 1;
constexpr int kWaitMs = 5000;                            // a message not handed over by then fails
constexpr std::chrono::seconds kSetupTimeout{10};        // the daemons' start, the subscriptions
constexpr std::uint32_t kAckChunk = 128;                 // the iceoryx mempool of the acks
constexpr std::uint32_t kChunks = 16;                    // chunks per iceoryx mempool
constexpr std::size_t kMaxSize = std::size_t{64} << 20;  // 16 chunks of it in /dev/shm

struct Options {
  std::size_t messages = 5000;
  int reps = 5;
  std::size_t size = 4096;
  std::string json;
  std::string zbufd = ZBUFD_PATH;
};

enum class Mode { Block, Busy };
enum class Impl { Zbuf, Iceoryx };
struct Case {
  Impl impl;
  Mode mode;
  const char* name;  // the JSON key
  const char* title;
};
// One repetition's order.
constexpr std::array<Case, 4> kCases{
    {{Impl::Zbuf, Mode::Block, "zbuf_block", "zbuf block"},
     {Impl::Iceoryx, Mode::Block, "iceoryx_block", "iceoryx block"},
     {Impl::Zbuf, Mode::Busy, "zbuf_busy", "zbuf busy"},
     {Impl::Iceoryx, Mode::Busy, "iceoryx_busy", "iceoryx busy"}}};

// At the start of every message's payload.
struct Header {
  std::uint64_t seq;
  std::int64_t sentNs;  // the producer's steady_clock
};

pid_t gMain = 0;         // the measuring process (children are told apart from it by pid)
std::string gTempDir;    // removed when the measuring process fails
int gRoudiControl = -1;  // the write end RouDi's child waits on; children close their copy

[[noreturn]] void die(const std::string& what) {
  std::fflush(stdout);
  fmt::print(stderr, "bench_handoff: {}\n", what);
  if (::getpid() == gMain && !gTempDir.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(gTempDir, ec);
  }
  std::exit(1);  // a child runs its static destructors too: iceoryx's runtime deregisters
}

// fork(2) with stdio flushed first (a child must not print the parent's buffered lines again).
pid_t forkFlushed() {
  std::fflush(stdout);
  std::fflush(stderr);
  const pid_t pid = ::fork();
  if (pid < 0) {
    die(fmt::format("fork: {}", std::strerror(errno)));
  }
  return pid;
}

template <typename T>
T check(Result<T> r, const char* what) {
  if (!r.ok()) {
    die(fmt::format("{}: {}", what, r.error().describe()));
  }
  return std::move(r).value();
}
void check(const Result<void>& r, const char* what) {
  if (!r.ok()) {
    die(fmt::format("{}: {}", what, r.error().describe()));
  }
}

std::int64_t nowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

std::size_t warmUp(const Options& o) {
  return o.messages / 10;
}

// --- child processes -------------------------------------------------------------------------
// A child of the measuring process: it dies with it (the backstop; children end by themselves).
void becomeChild(int deathSignal) {
  ::prctl(PR_SET_PDEATHSIG, deathSignal);
  if (::getppid() != gMain) {
    ::_exit(1);  // the parent went before the prctl
  }
  if (gRoudiControl >= 0) {
    ::close(gRoudiControl);
  }
}

void pin(int cpu, const char* who) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (::sched_setaffinity(0, sizeof set, &set) != 0) {
    die(fmt::format("{}: sched_setaffinity to cpu {}: {}", who, cpu, std::strerror(errno)));
  }
}

// The end of a case: each side tells the other it is done and waits for the other's word, so
// neither tears down (closes its files, its ports) while the other still uses them.
void barrier(int peer) {
  const char done = 'd';
  (void)::send(peer, &done, 1, MSG_NOSIGNAL);
  char c = 0;
  while (::recv(peer, &c, 1, 0) < 0 && errno == EINTR) {
  }
}

// --- zbuf --------------------------------------------------------------------------------------
std::size_t bufferBytes(const Options& o) {
  const std::size_t page = sys::pageSize();
  return (o.size + page - 1) / page * page;
}

UniqueFd createFence(uapi::FdCalls& k, int timeline, std::size_t point) {
  uapi::SwSyncCreateFenceData data{};
  data.value = static_cast<std::uint32_t>(point);
  data.fence = -1;
  (void)check(k.ioctl(timeline, uapi::kSwSyncIocCreateFence, &data), "SW_SYNC_IOC_CREATE_FENCE");
  return UniqueFd::adopt(data.fence);
}

void inc(uapi::FdCalls& k, int timeline) {
  std::uint32_t one = 1;
  (void)check(k.ioctl(timeline, uapi::kSwSyncIocInc, &one), "SW_SYNC_IOC_INC");
}

void cpuAccess(uapi::FdCalls& k, int buf, std::uint64_t flags) {
  uapi::DmaBufSync sync{};
  sync.flags = flags;
  (void)check(k.ioctl(buf, uapi::kDmaBufIoctlSync, &sync), "DMA_BUF_IOCTL_SYNC");
}

// Waits for the sync file `fd` with plain poll(2): one call with a timeout (blocking), or calls
// with timeout 0 until it is ready (busy). False if it did not signal within kWaitMs.
bool waitSignalled(int fd, Mode mode) {
  struct pollfd p {
    fd, POLLIN, 0
  };
  if (mode == Mode::Block) {
    for (;;) {
      const int n = ::poll(&p, 1, kWaitMs);
      if (n > 0) {
        return (p.revents & POLLIN) != 0;
      }
      if (n == 0 || errno != EINTR) {
        return false;
      }
    }
  }
  const auto deadline = Clock::now() + std::chrono::milliseconds(kWaitMs);
  for (unsigned spins = 1;; ++spins) {
    const int n = ::poll(&p, 1, 0);
    if (n > 0) {
      return (p.revents & POLLIN) != 0;
    }
    if (n < 0 && errno != EINTR) {
      return false;
    }
    if (spins % 1024 == 0 && Clock::now() > deadline) {
      return false;
    }
  }
}

int zbufProducer(const Options& o, Mode mode, int peer, const std::string& socket) {
  auto k = check(ipc::RemoteContext::connect(socket), "producer: connect to zbufd");
  UniqueFd heap = check(k->open("/dev/dma_heap/system", O_RDONLY | O_CLOEXEC), "open the heap");
  uapi::DmaHeapAllocationData alloc{};
  alloc.len = bufferBytes(o);
  alloc.fdFlags = O_RDWR | O_CLOEXEC;
  (void)check(k->ioctl(heap.get(), uapi::kDmaHeapIoctlAlloc, &alloc), "DMA_HEAP_IOCTL_ALLOC");
  UniqueFd buf = UniqueFd::adopt(static_cast<int>(alloc.fd));
  check(k->close(std::move(heap)), "close the heap");
  UniqueFd data = check(k->open(kSwSyncPath, O_RDWR | O_CLOEXEC), "open sw_sync (data)");
  UniqueFd ack = check(k->open(kSwSyncPath, O_RDWR | O_CLOEXEC), "open sw_sync (ack)");
  const std::array<std::byte, 3> word{std::byte{'f'}, std::byte{'d'}, std::byte{'s'}};
  const std::array<int, 3> fds{buf.get(), data.get(), ack.get()};
  (void)check(sys::sendWithFds(peer, word, fds), "producer: pass the fds");
  sys::Mapping map =
      check(k->mmap(buf.get(), bufferBytes(o), PROT_READ | PROT_WRITE, MAP_SHARED, 0), "mmap");
  std::byte* const bytes = map.data();
  const std::size_t total = o.messages + warmUp(o);
  UniqueFd ackFence = createFence(*k, ack.get(), 1);  // point i: ready for message i
  for (std::size_t i = 1; i <= total; ++i) {
    if (!waitSignalled(ackFence.get(), mode)) {
      die(fmt::format("zbuf producer: no ack before message {} within {} ms", i, kWaitMs));
    }
    check(k->close(std::move(ackFence)), "close the ack fence");
    ackFence = createFence(*k, ack.get(), i + 1);  // before the signal, out of the window
    cpuAccess(*k, buf.get(), uapi::kDmaBufSyncStart | uapi::kDmaBufSyncWrite);
    std::memset(bytes + sizeof(Header), static_cast<int>(i & 0xff), o.size - sizeof(Header));
    const Header h{i, nowNs()};
    std::memcpy(bytes, &h, sizeof h);
    cpuAccess(*k, buf.get(), uapi::kDmaBufSyncEnd | uapi::kDmaBufSyncWrite);
    inc(*k, data.get());
  }
  if (!waitSignalled(ackFence.get(), mode)) {
    die("zbuf producer: no ack of the last message");
  }
  check(k->close(std::move(ackFence)), "close the ack fence");
  barrier(peer);
  map = sys::Mapping();
  check(k->close(std::move(buf)), "close the dma-buf");
  check(k->close(std::move(data)), "close the data timeline");
  check(k->close(std::move(ack)), "close the ack timeline");
  return 0;
}

int zbufConsumer(const Options& o, Mode mode, int peer, const std::string& socket, double* out) {
  std::array<std::byte, 16> word{};
  auto got = check(sys::recvWithFds(peer, word, 3), "consumer: receive the fds");
  if (got.fds.size() != 3) {
    die("zbuf consumer: the producer passed no fds");
  }
  auto k = check(ipc::RemoteContext::connect(socket), "consumer: connect to zbufd");
  UniqueFd buf = std::move(got.fds[0]);
  UniqueFd data = std::move(got.fds[1]);
  UniqueFd ack = std::move(got.fds[2]);
  sys::Mapping map =
      check(k->mmap(buf.get(), bufferBytes(o), PROT_READ, MAP_SHARED, 0), "consumer: mmap");
  const std::byte* const bytes = map.data();
  const std::size_t total = o.messages + warmUp(o);
  const std::size_t warm = warmUp(o);
  UniqueFd fence = createFence(*k, data.get(), 1);
  inc(*k, ack.get());  // ready for message 1
  for (std::size_t i = 1; i <= total; ++i) {
    if (!waitSignalled(fence.get(), mode)) {
      die(fmt::format("zbuf consumer: message {} did not come within {} ms", i, kWaitMs));
    }
    const std::int64_t woke = nowNs();
    cpuAccess(*k, buf.get(), uapi::kDmaBufSyncStart | uapi::kDmaBufSyncRead);
    Header h{};
    std::memcpy(&h, bytes, sizeof h);
    cpuAccess(*k, buf.get(), uapi::kDmaBufSyncEnd | uapi::kDmaBufSyncRead);
    check(k->close(std::move(fence)), "close the sync file");
    if (h.seq != i) {
      die(fmt::format("zbuf consumer: message {} carries sequence {}", i, h.seq));
    }
    if (i > warm) {
      out[i - warm - 1] = static_cast<double>(woke - h.sentNs);
    }
    fence = i < total ? createFence(*k, data.get(), i + 1) : UniqueFd();
    inc(*k, ack.get());  // message i read; ready for i + 1
  }
  barrier(peer);
  map = sys::Mapping();
  check(k->close(std::move(buf)), "close the dma-buf");
  check(k->close(std::move(data)), "close the data timeline");
  check(k->close(std::move(ack)), "close the ack timeline");
  return 0;
}

// --- iceoryx -----------------------------------------------------------------------------------
std::uint32_t ioxPayloadPool(const Options& o) {
  return static_cast<std::uint32_t>((o.size + 7) / 8 * 8);
}

iox::capro::ServiceDescription service(const std::string& tag, const char* event) {
  return {iox::capro::IdString_t(iox::cxx::TruncateToCapacity, "Handoff"),
          iox::capro::IdString_t(iox::cxx::TruncateToCapacity, tag.c_str()),
          iox::capro::IdString_t(iox::cxx::TruncateToCapacity, event)};
}

void initRuntime(const std::string& name) {
  iox::runtime::PoshRuntime::initRuntime(iox::RuntimeName_t(iox::cxx::TruncateToCapacity, name));
}

// The next chunk of `sub`: take() until one comes, in between waiting on `waitSet` (blocking)
// or not at all (busy). nullptr if none came within `timeout`.
const void* takeNext(iox::popo::UntypedSubscriber& sub, iox::popo::WaitSet<>& waitSet, Mode mode,
                     Clock::duration timeout) {
  const auto deadline = Clock::now() + timeout;
  for (unsigned spins = 1;; ++spins) {
    auto r = sub.take();
    if (!r.has_error()) {
      return r.value();
    }
    if (r.get_error() != iox::popo::ChunkReceiveResult::NO_CHUNK_AVAILABLE) {
      return nullptr;
    }
    if (mode == Mode::Block) {
      if (Clock::now() > deadline) {
        return nullptr;
      }
      (void)waitSet.timedWait(iox::units::Duration::fromMilliseconds(kWaitMs));
    } else if (spins % 1024 == 0 && Clock::now() > deadline) {
      return nullptr;
    }
  }
}

void attach(iox::popo::WaitSet<>& waitSet, iox::popo::UntypedSubscriber& sub, Mode mode) {
  if (mode == Mode::Block &&
      waitSet.attachState(sub, iox::popo::SubscriberState::HAS_DATA).has_error()) {
    die("iceoryx: attach the subscriber to the WaitSet");
  }
}

void sendAck(iox::popo::UntypedPublisher& pub, std::uint64_t seq) {
  auto chunk = pub.loan(sizeof seq);
  if (chunk.has_error()) {
    die("iceoryx: loan an ack chunk");
  }
  std::memcpy(chunk.value(), &seq, sizeof seq);
  pub.publish(chunk.value());
}

void takeAck(iox::popo::UntypedSubscriber& sub, iox::popo::WaitSet<>& waitSet, Mode mode,
             std::uint64_t expected, Clock::duration timeout) {
  const void* chunk = takeNext(sub, waitSet, mode, timeout);
  if (chunk == nullptr) {
    die(fmt::format("iceoryx producer: no ack {} in time", expected));
  }
  std::uint64_t seq = 0;
  std::memcpy(&seq, chunk, sizeof seq);
  sub.release(chunk);
  if (seq != expected) {
    die(fmt::format("iceoryx producer: ack {} where {} was due", seq, expected));
  }
}

int ioxProducer(const Options& o, Mode mode, int peer, const std::string& tag) {
  initRuntime("handoff_producer_" + tag);
  iox::popo::UntypedPublisher pub(service(tag, "Data"));
  iox::popo::UntypedSubscriber ackSub(service(tag, "Ack"));
  iox::popo::WaitSet<> waitSet;
  attach(waitSet, ackSub, mode);
  const std::size_t total = o.messages + warmUp(o);
  takeAck(ackSub, waitSet, mode, 1, kSetupTimeout);  // the consumer is subscribed and ready
  for (std::size_t i = 1; i <= total; ++i) {
    if (i > 1) {
      takeAck(ackSub, waitSet, mode, i, std::chrono::milliseconds(kWaitMs));
    }
    auto chunk = pub.loan(static_cast<std::uint32_t>(o.size));
    if (chunk.has_error()) {
      die(fmt::format("iceoryx producer: loan {} bytes", o.size));
    }
    auto* const bytes = static_cast<std::byte*>(chunk.value());
    std::memset(bytes + sizeof(Header), static_cast<int>(i & 0xff), o.size - sizeof(Header));
    const Header h{i, nowNs()};
    std::memcpy(bytes, &h, sizeof h);
    pub.publish(chunk.value());
  }
  takeAck(ackSub, waitSet, mode, total + 1, std::chrono::milliseconds(kWaitMs));
  barrier(peer);
  return 0;
}

int ioxConsumer(const Options& o, Mode mode, int peer, const std::string& tag, double* out) {
  initRuntime("handoff_consumer_" + tag);
  iox::popo::UntypedSubscriber sub(service(tag, "Data"));
  iox::popo::UntypedPublisher ackPub(service(tag, "Ack"));
  iox::popo::WaitSet<> waitSet;
  attach(waitSet, sub, mode);
  // Both ways connected (RouDi's discovery) before the first ack: no message is published to
  // a subscriber that is not there yet.
  const auto deadline = Clock::now() + kSetupTimeout;
  while (!ackPub.hasSubscribers() ||
         sub.getSubscriptionState() != iox::SubscribeState::SUBSCRIBED) {
    if (Clock::now() > deadline) {
      die("iceoryx consumer: the producer's ports did not connect");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  const std::size_t total = o.messages + warmUp(o);
  const std::size_t warm = warmUp(o);
  sendAck(ackPub, 1);
  for (std::size_t i = 1; i <= total; ++i) {
    const void* chunk = takeNext(sub, waitSet, mode, std::chrono::milliseconds(kWaitMs));
    const std::int64_t woke = nowNs();
    if (chunk == nullptr) {
      die(fmt::format("iceoryx consumer: message {} did not come within {} ms", i, kWaitMs));
    }
    Header h{};
    std::memcpy(&h, chunk, sizeof h);
    sub.release(chunk);
    if (h.seq != i) {
      die(fmt::format("iceoryx consumer: message {} carries sequence {}", i, h.seq));
    }
    if (i > warm) {
      out[i - warm - 1] = static_cast<double>(woke - h.sentNs);
    }
    sendAck(ackPub, i + 1);
  }
  barrier(peer);
  return 0;
}

// RouDi in a child process: its own output to /dev/null; it tells `ready` once it runs and
// ends when `control` reaches end of file (this program closes it, or is gone).
pid_t startRoudi(const Options& o) {
  std::array<int, 2> ready{-1, -1};
  std::array<int, 2> control{-1, -1};
  if (::pipe2(ready.data(), O_CLOEXEC) != 0 || ::pipe2(control.data(), O_CLOEXEC) != 0) {
    die(fmt::format("pipe2: {}", std::strerror(errno)));
  }
  const pid_t pid = forkFlushed();
  if (pid == 0) {
    becomeChild(SIGTERM);
    ::close(ready[0]);
    ::close(control[1]);
    const int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    ::dup2(null, STDOUT_FILENO);
    ::dup2(null, STDERR_FILENO);
    {
      iox::mepoo::MePooConfig mepoo;
      mepoo.addMemPool({kAckChunk, kChunks});
      if (ioxPayloadPool(o) > kAckChunk) {
        mepoo.addMemPool({ioxPayloadPool(o), kChunks});
      }
      iox::RouDiConfig_t config;
      const auto group = iox::posix::PosixGroup::getGroupOfCurrentProcess();
      config.m_sharedMemorySegments.push_back({group.getName(), group.getName(), mepoo});
      iox::roudi::IceOryxRouDiComponents components(config);
      iox::roudi::RouDi roudi(components.rouDiMemoryManager, components.portManager,
                              iox::roudi::RouDi::RoudiStartupParameters{
                                  iox::roudi::MonitoringMode::ON, /*killProcessesInDestructor=*/
                                  false});
      const char r = 'r';
      (void)::write(ready[1], &r, 1);
      ::close(ready[1]);
      for (char c = 0;;) {
        const ssize_t n = ::read(control[0], &c, 1);
        if (n == 0 || (n < 0 && errno != EINTR)) {
          break;
        }
      }
    }
    ::_exit(0);
  }
  ::close(ready[1]);
  ::close(control[0]);
  gRoudiControl = control[1];
  // Its start: the word, or end of file if it failed (e.g. another RouDi holds the lock).
  struct pollfd p {
    ready[0], POLLIN, 0
  };
  char r = 0;
  const int n = ::poll(&p, 1, static_cast<int>(kSetupTimeout.count() * 1000));
  if (n != 1 || ::read(ready[0], &r, 1) != 1) {
    die("RouDi did not start (is another RouDi running? /tmp/roudi, /dev/shm/iceoryx_mgmt)");
  }
  ::close(ready[0]);
  return pid;
}

// --- the measuring process -----------------------------------------------------------------
int waitChild(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      return -1;
    }
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// One case: a consumer and a producer process; the consumer's latencies, in nanoseconds.
std::vector<double> runCase(const Options& o, const Case& c, int rep, const std::string& socket) {
  const std::size_t bytes = o.messages * sizeof(double);
  void* shared = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (shared == MAP_FAILED) {
    die(fmt::format("mmap: {}", std::strerror(errno)));
  }
  auto* const out = static_cast<double*>(shared);
  std::array<int, 2> sv{-1, -1};
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv.data()) != 0) {
    die(fmt::format("socketpair: {}", std::strerror(errno)));
  }
  const std::string tag = fmt::format("{}_r{}_{}", ::getpid(), rep, c.name);
  const auto spawn = [&](bool consumer) {
    const pid_t pid = forkFlushed();
    if (pid != 0) {
      return pid;
    }
    becomeChild(SIGKILL);
    const int peer = consumer ? sv[1] : sv[0];
    ::close(consumer ? sv[0] : sv[1]);
    pin(consumer ? kConsumerCpu : kProducerCpu, consumer ? "consumer" : "producer");
    int rc = 0;
    if (c.impl == Impl::Zbuf) {
      rc = consumer ? zbufConsumer(o, c.mode, peer, socket, out)
                    : zbufProducer(o, c.mode, peer, socket);
    } else {
      rc = consumer ? ioxConsumer(o, c.mode, peer, tag, out) : ioxProducer(o, c.mode, peer, tag);
    }
    std::exit(rc);  // exit, not _exit: iceoryx's runtime deregisters from RouDi
  };
  const pid_t consumer = spawn(true);
  const pid_t producer = spawn(false);
  ::close(sv[0]);
  ::close(sv[1]);
  const int rc = waitChild(consumer);
  const int rp = waitChild(producer);
  if (rc != 0 || rp != 0) {
    die(fmt::format("{} (repetition {}): consumer exit {}, producer exit {}", c.title, rep, rc,
                    rp));
  }
  std::vector<double> ns(out, out + o.messages);
  ::munmap(shared, bytes);
  return ns;
}

[[noreturn]] void usage(const std::string& why) {
  if (!why.empty()) {
    fmt::print(stderr, "bench_handoff: {}\n", why);
  }
  fmt::print(stderr, "{}", kUsage);
  std::exit(2);
}

std::size_t number(const std::string& flag, const std::string& value, std::size_t min,
                   std::size_t max) {
  std::size_t used = 0;
  unsigned long long n = 0;
  try {
    n = std::stoull(value, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != value.size() || value[0] == '-' || n < min || n > max) {
    usage(fmt::format("{} {}: a number from {} to {}", flag, value, min, max));
  }
  return n;
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "-h" || flag == "--help") {
      fmt::print("{}", kUsage);
      std::exit(0);
    }
    if (i + 1 >= argc) {
      usage(flag.starts_with("--") ? flag + " needs a value" : "unknown argument " + flag);
    }
    const std::string value = argv[++i];
    if (flag == "--messages") {
      o.messages = number(flag, value, 10, 100'000'000);
    } else if (flag == "--reps") {
      o.reps = static_cast<int>(number(flag, value, 1, 1000));
    } else if (flag == "--size") {
      o.size = number(flag, value, sizeof(Header), kMaxSize);
    } else if (flag == "--json") {
      o.json = value;
    } else if (flag == "--zbufd") {
      o.zbufd = value;
    } else {
      usage("unknown flag " + flag);
    }
  }
  // sw_sync points are 32-bit
  if (o.messages + warmUp(o) + 2 > UINT32_MAX) {
    usage("--messages too large");
  }
  return o;
}

pid_t startZbufd(const Options& o, const std::string& socket, const std::string& log) {
  const pid_t pid = forkFlushed();
  if (pid == 0) {
    becomeChild(SIGTERM);  // it goes with this program, however that ends
    const int null = ::open("/dev/null", O_RDWR);
    const int err = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ::dup2(null, STDOUT_FILENO);
    ::dup2(err >= 0 ? err : null, STDERR_FILENO);
    ::execl(o.zbufd.c_str(), o.zbufd.c_str(), "--socket", socket.c_str(), "--benchmark",
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  // Its start: a connection that succeeds (then dropped: nothing here holds one when forking).
  const auto deadline = Clock::now() + kSetupTimeout;
  for (;;) {
    auto k = ipc::RemoteContext::connect(socket);
    if (k.ok()) {
      break;
    }
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid || Clock::now() > deadline) {
      std::ifstream in(log);
      const std::string text((std::istreambuf_iterator<char>(in)),
                             std::istreambuf_iterator<char>());
      die(fmt::format("zbufd ({}) did not start: {}{}", o.zbufd, k.error().describe(),
                      text.empty() ? "" : "\n" + text));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return pid;
}

void requireCpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) != 0 || !CPU_ISSET(kProducerCpu, &set) ||
      !CPU_ISSET(kConsumerCpu, &set)) {
    die(fmt::format("needs CPUs {} and {} (producer and consumer)", kProducerCpu, kConsumerCpu));
  }
}

std::array<double, 3> loadAverage() {
  std::array<double, 3> load{0, 0, 0};
  (void)::getloadavg(load.data(), 3);
  return load;
}

}  // namespace

static int run(int argc, char** argv) {
  const Options o = parse(argc, argv);
  gMain = ::getpid();
  requireCpus();
  iox::log::LogManager::GetLogManager().SetDefaultLogLevel(iox::log::LogLevel::kError,
                                                           iox::log::LogLevelOutput::kHideLogLevel);
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / fmt::format("zbuf-handoff-{}", ::getpid());
  fs::create_directories(dir);
  gTempDir = dir.string();
  const std::string socket = (dir / "zbufd.sock").string();
  const pid_t daemon = startZbufd(o, socket, (dir / "zbufd.log").string());
  const pid_t roudi = startRoudi(o);

  const auto loadStart = loadAverage();
  fmt::print(
      "bench_handoff: one-way hand-off of {} bytes, producer cpu {} -> consumer cpu {}, {} "
      "messages (+{} warm-up) x {} repetitions alternating, load {:.2f} {:.2f} {:.2f}\n",
      o.size, kProducerCpu, kConsumerCpu, o.messages, warmUp(o), o.reps, loadStart[0], loadStart[1],
      loadStart[2]);
  std::string head1 = "     ";
  std::string head2 = "rep  ";
  for (const Case& c : kCases) {
    head1 += fmt::format("  {:<20}", c.title);
    head2 += fmt::format("  {:>9} {:>10}", "p50", "p99");
  }
  fmt::print("{}\n{}\n", head1, head2);

  // p50s[case][rep], p99s[case][rep], in microseconds
  std::array<std::vector<double>, kCases.size()> p50s;
  std::array<std::vector<double>, kCases.size()> p99s;
  nlohmann::ordered_json reps = nlohmann::ordered_json::array();
  for (int rep = 1; rep <= o.reps; ++rep) {
    std::string line = fmt::format("{:>3}  ", rep);
    nlohmann::ordered_json r{{"rep", rep}};
    for (std::size_t c = 0; c < kCases.size(); ++c) {
      const auto ns = runCase(o, kCases[c], rep, socket);
      p50s[c].push_back(percentile(ns, 0.5) / 1000);
      p99s[c].push_back(percentile(ns, 0.99) / 1000);
      line += fmt::format("  {:>7.1f}us {:>8.1f}us", p50s[c].back(), p99s[c].back());
      r[kCases[c].name] = {{"p50", p50s[c].back()}, {"p99", p99s[c].back()}};
    }
    fmt::print("{}\n", line);
    std::fflush(stdout);
    reps.push_back(r);
  }

  fmt::print("medians over the repetitions [min-max], microseconds:\n");
  nlohmann::ordered_json medians = nlohmann::ordered_json::object();
  const auto spreadJson = [](const Spread& s) {
    return nlohmann::ordered_json{{"median", s.median}, {"min", s.min}, {"max", s.max}};
  };
  for (std::size_t c = 0; c < kCases.size(); ++c) {
    const Spread s50 = spread(p50s[c]);
    const Spread s99 = spread(p99s[c]);
    fmt::print("  {:<14} p50 {:8.1f} [{:.1f}-{:.1f}]   p99 {:8.1f} [{:.1f}-{:.1f}]\n",
               kCases[c].title, s50.median, s50.min, s50.max, s99.median, s99.min, s99.max);
    medians[kCases[c].name] = {{"p50", spreadJson(s50)}, {"p99", spreadJson(s99)}};
  }
  // kCases: zbuf then iceoryx, per mode
  nlohmann::ordered_json ratios = nlohmann::ordered_json::object();
  std::string ratioLine = "  zbuf / iceoryx:";
  for (std::size_t c = 0; c + 1 < kCases.size(); c += 2) {
    const double r50 = spread(p50s[c]).median / spread(p50s[c + 1]).median;
    const double r99 = spread(p99s[c]).median / spread(p99s[c + 1]).median;
    const char* mode = kCases[c].mode == Mode::Block ? "block" : "busy";
    ratioLine += fmt::format("  {} p50 {:.2f}x p99 {:.2f}x{}", mode, r50, r99, c == 0 ? ";" : "");
    ratios[mode] = {{"p50", r50}, {"p99", r99}};
  }
  fmt::print("{}\n", ratioLine);
  const auto loadEnd = loadAverage();
  fmt::print("load at the end {:.2f} {:.2f} {:.2f}\n", loadEnd[0], loadEnd[1], loadEnd[2]);
  std::fflush(stdout);

  ::close(gRoudiControl);  // RouDi's child ends by itself on the end of file
  gRoudiControl = -1;
  const int roudiExit = waitChild(roudi);
  ::kill(daemon, SIGTERM);  // our own child, by its pid: zbufd stops on SIGTERM
  const int daemonExit = waitChild(daemon);
  std::error_code ec;
  fs::remove_all(dir, ec);
  gTempDir.clear();

  if (!o.json.empty()) {
    const nlohmann::ordered_json doc{
        {"benchmark", "bench_handoff"},
        {"unit", "us"},
        {"size", o.size},
        {"messages", o.messages},
        {"warm_up", warmUp(o)},
        {"reps", o.reps},
        {"producer_cpu", kProducerCpu},
        {"consumer_cpu", kConsumerCpu},
        {"order", {"zbuf_block", "iceoryx_block", "zbuf_busy", "iceoryx_busy"}},
        {"load_start", loadStart},
        {"load_end", loadEnd},
        {"repetitions", reps},
        {"medians", medians},
        {"ratios_zbuf_over_iceoryx", ratios},
    };
    std::ofstream file(o.json);
    file << doc.dump(2) << '\n';
    if (!file) {
      die("write " + o.json);
    }
  }
  if (roudiExit != 0 || daemonExit != 0) {
    fmt::print(stderr, "bench_handoff: RouDi exit {}, zbufd exit {}\n", roudiExit, daemonExit);
    return 1;
  }
  return 0;
}

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    fmt::print(stderr, "bench_handoff: {}\n", e.what());
  }
  return 1;
}
