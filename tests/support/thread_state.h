// Thread states read from /proc, for tests that must act only once another thread (or a child
// process) has got as far as a blocking wait: a fence wait, a lock, a poll, a blocking read. A
// test that signals a fence "while the waiter waits" or checks that something "has not happened
// yet" waits for that state instead of sleeping and hoping the other thread got there.
//
// Asleep means the kernel's state S (interruptible sleep: futex, poll, read, nanosleep ...).
// A thread that has just been woken counts as running at once (the waker sets its state
// before returning), so "the worker was woken by my submit and is asleep again" means it has
// looked at the work and gone back to wait. A thread may also sleep briefly on its way to the
// wait (a contended lock), and the watcher then acts early: a test must pass either way; the
// state makes the interesting order likely, not certain.
#pragma once

#include <dirent.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <string>
#include <string_view>

#include "support/wait_until.h"

namespace zbuf::testing_support {

// The calling thread's kernel id (gettid).
inline pid_t threadId() noexcept {
  return static_cast<pid_t>(::syscall(SYS_gettid));
}

enum class ThreadState { Running, Asleep, Gone };

// The state of thread (or process) `tid`: Asleep in state S; Gone if it has ended (or is a
// zombie); Running otherwise (running, runnable, or in an uninterruptible wait).
inline ThreadState threadState(pid_t tid) {
  std::ifstream stat("/proc/" + std::to_string(tid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) {
    return ThreadState::Gone;
  }
  // "tid (comm) S ...": the name may hold spaces and parentheses, the state follows the last ')'.
  const auto close = line.rfind(')');
  if (close == std::string::npos || close + 2 >= line.size()) {
    return ThreadState::Gone;
  }
  switch (line[close + 2]) {
    case 'S':
      return ThreadState::Asleep;
    case 'Z':
    case 'X':
      return ThreadState::Gone;
    default:
      return ThreadState::Running;
  }
}

// Waits (bounded) until thread `tid` is asleep or gone. True if it is asleep.
inline bool waitUntilAsleep(pid_t tid, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
  ThreadState state = ThreadState::Running;
  waitUntil([&] { return (state = threadState(tid)) != ThreadState::Running; }, limit);
  return state == ThreadState::Asleep;
}

// The id of this process's only thread named `name` (as pthread_setname_np keeps it: 15
// characters at most); 0 if there is none or more than one.
inline pid_t threadNamed(std::string_view name) {
  pid_t found = 0;
  DIR* dir = ::opendir("/proc/self/task");
  if (dir == nullptr) {
    return 0;
  }
  while (const dirent* e = ::readdir(dir)) {
    if (e->d_name[0] == '.') {
      continue;
    }
    std::ifstream comm(std::string("/proc/self/task/") + e->d_name + "/comm");
    std::string line;
    if (std::getline(comm, line) && line == name) {
      if (found != 0) {
        found = 0;
        break;
      }
      found = static_cast<pid_t>(std::stol(e->d_name));
    }
  }
  ::closedir(dir);
  return found;
}

// Waits (bounded) until this process has one thread named `name` (a thread names itself once
// it runs, so it may not have its name yet) and that thread is asleep. True if so.
inline bool waitUntilAsleep(std::string_view name,
                            std::chrono::milliseconds limit = std::chrono::seconds(10)) {
  return waitUntil(
      [&] {
        const pid_t tid = threadNamed(name);
        return tid != 0 && threadState(tid) == ThreadState::Asleep;
      },
      limit);
}

// A thread's id, published by the thread itself (mark(), just before the blocking call) for
// another thread to wait on with waitUntilAsleep().
class ThreadMark {
 public:
  void mark() noexcept { tid_.store(threadId(), std::memory_order_release); }
  // Waits (bounded) until the thread has marked itself and is then asleep or gone (it returned
  // without blocking, or ended). True if it is asleep.
  [[nodiscard]] bool waitUntilAsleep(
      std::chrono::milliseconds limit = std::chrono::seconds(10)) const {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    if (!waitUntil([&] { return tid_.load(std::memory_order_acquire) != 0; }, limit)) {
      return false;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    return testing_support::waitUntilAsleep(tid_.load(),
                                            std::max(left, std::chrono::milliseconds(0)));
  }

 private:
  std::atomic<pid_t> tid_{0};
};

}  // namespace zbuf::testing_support
