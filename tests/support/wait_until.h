// waitUntil: a bounded wait on a condition that another thread or process makes true, for
// tests that have no event of their own to block on (no fence, no condition variable). It checks
// the condition every 200 us; the limit is generous because it matters only when the test fails.
#pragma once

#include <chrono>
#include <thread>

namespace zbuf::testing_support {

// Waits until `done()` holds, for at most `limit`. Returns whether it held.
template <typename Pred>
bool waitUntil(Pred done, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) {
      return false;
    }
    // The poll interval of a bounded wait on `done()`, not a guess at how long anything takes.
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  return true;
}

}  // namespace zbuf::testing_support
