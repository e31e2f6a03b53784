// HardwareThread: a named thread whose CPU time counts as emulated hardware, not application.
//
// The emulated devices (DMA engines, the USB link and host) run on HardwareThreads so that
// reports can separate the application's CPU time from the hardware's: application CPU =
// process CPU - hardware CPU. The accounting covers live hardware threads (read through their
// CPU clocks) and exited ones (their final CPU time is added up when they end).
//
// Thread-safety: the accounting functions are thread-safe. A HardwareThread object is owned by
// one thread (start/join from the same owner), like std::thread.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#pragma GCC visibility push(default)  // the public API: exported (cmake/ZbufLayers.cmake)

namespace zbuf {

class HardwareThread {
 public:
  HardwareThread() noexcept = default;
  // Starts `body` on a new thread named `name` (at most 15 characters are kept).
  HardwareThread(std::string name, std::function<void()> body);
  ~HardwareThread();
  HardwareThread(HardwareThread&&) noexcept = default;
  HardwareThread& operator=(HardwareThread&& other) noexcept;
  HardwareThread(const HardwareThread&) = delete;
  HardwareThread& operator=(const HardwareThread&) = delete;

  [[nodiscard]] bool joinable() const noexcept { return thread_.joinable(); }
  void join();

  // The CPUs every HardwareThread started from now on pins itself to, first thing, as the
  // emulated hardware's own cores (zbuf stream --affinity). Empty (the default): no pinning; a
  // thread may run where its creator may. Threads already running keep their CPUs. A set the
  // kernel refuses (no CPU of it available to the process) leaves the thread unpinned:
  // callers check the set against sys::threadAffinity() first. Thread-safe.
  static void setAffinity(std::vector<unsigned> cpus);
  [[nodiscard]] static std::vector<unsigned> affinity();

 private:
  std::thread thread_;
};

namespace cpu {
// CPU time of every hardware thread so far (live and exited).
[[nodiscard]] std::chrono::nanoseconds hardwareTime();
// CPU time of the process minus hardwareTime(): the application's share.
[[nodiscard]] std::chrono::nanoseconds applicationTime();
// Both, read together.
struct Split {
  std::chrono::nanoseconds application;
  std::chrono::nanoseconds hardware;
};
[[nodiscard]] Split split();
}  // namespace cpu

}  // namespace zbuf
#pragma GCC visibility pop
