// Accounting: a registry (guarded by gMutex) of the CPU clocks of live hardware threads, and the
// summed final CPU time of exited ones. A thread leaves the registry and adds its final time in
// one critical section, so a reader never counts a thread twice or not at all.
#include "zbuf/base/hw_thread.h"

#include <pthread.h>

#include <algorithm>
#include <ctime>
#include <vector>

#include "zbuf/base/mutex.h"
#include "zbuf/base/sys.h"

namespace zbuf {
namespace {

Mutex gMutex;
// CPU clocks of running hardware threads.
// Never destroyed, and made on first use: a hardware thread of an object nobody freed (a
// test's leftover, a device of the never-destroyed embedded context) may end during the exit
// handlers, after a static vector would be gone (ThreadSanitizer saw that use after free), and
// a thread may start before this file's statics are initialised. Guarded by gMutex; clang's
// analysis cannot check a function's result, so the three users take the lock by hand.
std::vector<clockid_t>& liveClocks() {
  static auto* clocks = new std::vector<clockid_t>();  // NOLINT(cppcoreguidelines-owning-memory)
  return *clocks;
}
// CPU time of hardware threads that ended.
std::chrono::nanoseconds gExited ZBUF_GUARDED_BY(gMutex){0};

Mutex gAffinityMutex;
// CPUs new hardware threads pin themselves to; empty: none.
std::vector<unsigned> gAffinity ZBUF_GUARDED_BY(gAffinityMutex);

std::chrono::nanoseconds readClock(clockid_t clock) {
  struct timespec ts {};
  if (::clock_gettime(clock, &ts) != 0) {
    return std::chrono::nanoseconds{0};
  }
  return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
}

// Registers the calling thread for its lifetime.
class Registration {
 public:
  Registration() {
    ::pthread_getcpuclockid(::pthread_self(), &clock_);
    const MutexLocker lock(gMutex);
    liveClocks().push_back(clock_);
  }
  ~Registration() {
    const MutexLocker lock(gMutex);
    gExited += sys::threadCpuTime();
    auto& live = liveClocks();
    live.erase(std::find(live.begin(), live.end(), clock_));
  }
  Registration(const Registration&) = delete;
  Registration& operator=(const Registration&) = delete;
  Registration(Registration&&) = delete;
  Registration& operator=(Registration&&) = delete;

 private:
  clockid_t clock_{};
};

std::chrono::nanoseconds hardwareTimeLocked() ZBUF_REQUIRES(gMutex) {
  std::chrono::nanoseconds total = gExited;
  for (clockid_t c : liveClocks()) {
    total += readClock(c);
  }
  return total;
}

}  // namespace

HardwareThread::HardwareThread(std::string name, std::function<void()> body)
    : thread_([name = std::move(name), body = std::move(body)] {
        sys::setThreadName(name);
        if (const std::vector<unsigned> cpus = affinity(); !cpus.empty()) {
          // A refused set leaves the thread where its creator may run (setAffinity's contract).
          (void)sys::setThreadAffinity(cpus);
        }
        const Registration registration;
        body();
      }) {}

HardwareThread::~HardwareThread() {
  join();
}

HardwareThread& HardwareThread::operator=(HardwareThread&& other) noexcept {
  if (this != &other) {
    join();
    thread_ = std::move(other.thread_);
  }
  return *this;
}

void HardwareThread::setAffinity(std::vector<unsigned> cpus) {
  const MutexLocker lock(gAffinityMutex);
  gAffinity = std::move(cpus);
}

std::vector<unsigned> HardwareThread::affinity() {
  const MutexLocker lock(gAffinityMutex);
  return gAffinity;
}

void HardwareThread::join() {
  if (thread_.joinable()) {
    thread_.join();
  }
}

namespace cpu {

std::chrono::nanoseconds hardwareTime() {
  const MutexLocker lock(gMutex);
  return hardwareTimeLocked();
}

std::chrono::nanoseconds applicationTime() {
  return split().application;
}

Split split() {
  const MutexLocker lock(gMutex);
  const auto hw = hardwareTimeLocked();
  const auto process = sys::processCpuTime();
  return Split{std::max(std::chrono::nanoseconds{0}, process - hw), hw};
}

}  // namespace cpu
}  // namespace zbuf
