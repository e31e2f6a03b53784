// bench_daemon_cycle: the zero-copy block cycle of an application, embedded against through
// zbufd, side by side in one run (issue 10's numbers; docs/daemon.md). One cycle is what the
// main job's loop does per block with one buffer in flight: IIO_BUFFER_DMABUF_ENQUEUE on the
// ADC's buffer, then poll(2)-style wait for the block's fence (POLLIN on the dma-buf), measured
// from before the enqueue to the wake-up. The board is in benchmark mode (the hardware neither
// generates nor checks), so the cycle is the calls' and the hand-offs' cost, not the copy's.
//
// Embedded: a Context and a Board in this process. Daemon: a zbufd process started here with
// --benchmark, reached through ipc::RemoteContext. The two alternate, `--reps` times each, and
// the program prints each repetition's p50 and p99, then the medians with their spread and the
// daemon's over embedded.
//
// Usage: bench_daemon_cycle [--cycles N] [--reps R] [--block BYTES] [--zbufd PATH]
#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "stats.h"
#include "zbuf/devices/board.h"
#include "zbuf/devices/iio/iio_uapi.h"
#include "zbuf/ipc/remote_context.h"
#include "zbuf/uapi/abi.h"
#include "zbuf/uapi/context.h"

namespace {

using zbuf::bench::percentile;
using zbuf::bench::Spread;
using zbuf::bench::spread;

using namespace zbuf;
using Clock = std::chrono::steady_clock;

struct Options {
  std::size_t cycles = 5000;
  int reps = 5;
  std::uint64_t block = 16384;
  std::string zbufd = ZBUFD_PATH;
};

[[noreturn]] void die(const std::string& what) {
  fmt::print(stderr, "bench_daemon_cycle: {}\n", what);
  std::exit(1);
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

void writeAttr(uapi::FdCalls& k, const std::string& path, const std::string& value) {
  UniqueFd fd = check(k.open(path, O_WRONLY | O_CLOEXEC), "open attribute");
  (void)check(k.write(fd.get(), std::as_bytes(std::span(value))), "write attribute");
  check(k.close(std::move(fd)), "close attribute");
}

// One repetition: `cycles` block cycles on `k`, each one's nanoseconds.
std::vector<double> measure(uapi::FdCalls& k, const Options& o) {
  const std::string sysfs = Board::kAdcSysfs;
  UniqueFd dev = check(k.open(Board::kAdcPath, O_RDWR | O_CLOEXEC), "open the ADC");
  writeAttr(k, sysfs + "/buffer0/enable", "0");
  writeAttr(k, sysfs + "/buffer0/length", "4096");
  int ring = 0;
  (void)check(k.ioctl(dev.get(), IIO_BUFFER_GET_FD_IOCTL, &ring), "GET_FD");
  UniqueFd heap = check(k.open("/dev/dma_heap/system", O_RDONLY | O_CLOEXEC), "open the heap");
  uapi::DmaHeapAllocationData alloc{};
  alloc.len = o.block;
  alloc.fdFlags = O_RDWR | O_CLOEXEC;
  (void)check(k.ioctl(heap.get(), uapi::kDmaHeapIoctlAlloc, &alloc), "ALLOC");
  int buf = static_cast<int>(alloc.fd);
  (void)check(k.ioctl(ring, IIO_BUFFER_DMABUF_ATTACH_IOCTL, &buf), "ATTACH");
  writeAttr(k, sysfs + "/buffer0/enable", "1");
  std::vector<double> ns;
  ns.reserve(o.cycles);
  const std::size_t warmUp = o.cycles / 10;
  for (std::size_t i = 0; i < o.cycles + warmUp; ++i) {
    iio::iio_dmabuf req{};
    req.fd = static_cast<std::uint32_t>(buf);
    req.bytes_used = o.block;
    const auto t0 = Clock::now();
    (void)check(k.ioctl(ring, IIO_BUFFER_DMABUF_ENQUEUE_IOCTL, &req), "ENQUEUE");
    std::array<struct pollfd, 1> p{{{buf, POLLIN, 0}}};
    (void)check(k.poll(p, 5000), "poll");
    const auto t1 = Clock::now();
    if (p[0].revents == 0) {
      die("a block did not complete within 5 s");
    }
    if (i >= warmUp) {
      ns.push_back(std::chrono::duration<double, std::nano>(t1 - t0).count());
    }
  }
  writeAttr(k, sysfs + "/buffer0/enable", "0");
  (void)k.ioctl(ring, IIO_BUFFER_DMABUF_DETACH_IOCTL, &buf);
  (void)k.close(buf);
  (void)k.close(ring);
  (void)k.close(std::move(heap));
  (void)k.close(std::move(dev));
  return ns;
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const std::string value = argv[i + 1];
    if (flag == "--cycles") {
      o.cycles = std::stoul(value);
    } else if (flag == "--reps") {
      o.reps = std::stoi(value);
    } else if (flag == "--block") {
      o.block = std::stoull(value);
    } else if (flag == "--zbufd") {
      o.zbufd = value;
    } else {
      die("usage: bench_daemon_cycle [--cycles N] [--reps R] [--block BYTES] [--zbufd PATH]");
    }
  }
  if (o.cycles < 10 || o.reps < 1 || o.block == 0) {
    die("--cycles at least 10, --reps at least 1, --block above 0");
  }
  return o;
}

}  // namespace

static int run(int argc, char** argv) {
  const Options o = parse(argc, argv);
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / fmt::format("zbuf-cycle-{}", ::getpid());
  fs::create_directories(dir);
  const std::string socket = (dir / "zbufd.sock").string();
  const pid_t daemon = ::fork();
  if (daemon == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);  // it goes with this program, however that ends
    ::execl(o.zbufd.c_str(), o.zbufd.c_str(), "--socket", socket.c_str(), "--benchmark",
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  for (int i = 0; i < 1000 && !fs::exists(socket); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));  // its start, bounded at 10 s
  }
  auto remote = check(ipc::RemoteContext::connect(socket), "connect to zbufd");
  auto ctx = uapi::Context::create();
  BoardConfig bc;
  bc.benchmark = true;
  auto board = check(Board::create(*ctx, bc), "the embedded board");

  double load[3] = {0, 0, 0};
  (void)::getloadavg(load, 3);
  fmt::print("bench_daemon_cycle: {} cycles of {} bytes, {} repetitions alternating, load {:.2f}\n",
             o.cycles, o.block, o.reps, load[0]);
  fmt::print("{:>4}  {:>10}  {:>10}  {:>10}  {:>10}\n", "rep", "emb p50", "emb p99", "zbufd p50",
             "zbufd p99");
  std::vector<double> e50;
  std::vector<double> e99;
  std::vector<double> d50;
  std::vector<double> d99;
  for (int rep = 1; rep <= o.reps; ++rep) {
    const auto e = measure(*ctx, o);
    const auto d = measure(*remote, o);
    e50.push_back(percentile(e, 0.5) / 1000);
    e99.push_back(percentile(e, 0.99) / 1000);
    d50.push_back(percentile(d, 0.5) / 1000);
    d99.push_back(percentile(d, 0.99) / 1000);
    fmt::print("{:>4}  {:>8.1f}us  {:>8.1f}us  {:>8.1f}us  {:>8.1f}us\n", rep, e50.back(),
               e99.back(), d50.back(), d99.back());
  }
  const auto show = [](const char* what, const std::vector<double>& v) {
    const Spread s = spread(v);
    fmt::print("  {:<14} {:8.1f} us  [{:.1f}-{:.1f}]\n", what, s.median, s.min, s.max);
  };
  fmt::print("medians over the repetitions [min-max]:\n");
  show("embedded p50", e50);
  show("embedded p99", e99);
  show("zbufd p50", d50);
  show("zbufd p99", d99);
  fmt::print("  zbufd / embedded: p50 {:.2f}x, p99 {:.2f}x\n",
             spread(d50).median / spread(e50).median, spread(d99).median / spread(e99).median);
  (void)::getloadavg(load, 3);
  fmt::print("load at the end {:.2f}\n", load[0]);
  board.reset();
  remote.reset();
  ::kill(daemon, SIGTERM);  // our own child
  int status = 0;
  ::waitpid(daemon, &status, 0);
  std::error_code ec;
  fs::remove_all(dir, ec);
  return 0;
}

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    fmt::print(stderr, "bench_daemon_cycle: {}\n", e.what());
  }
  return 1;
}
