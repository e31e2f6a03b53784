// The virtio host's UUID registry (virtio_host.h): the asynchronous round trip, duplicates,
// release, the same-user policy and shutdown, on the host object itself.
// ctest-labels: concurrency
#include "zbuf/devices/virtio/virtio_host.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <future>
#include <thread>

#include "zbuf/heaps/system_heap.h"

namespace zbuf::virtio {
namespace {

using namespace std::chrono_literals;

BufferPtr buffer() {
  return SystemHeap::instance()->allocate(4096).value();
}

// A completion that hands its status to the test.
struct Outcome {
  std::promise<int> promise;
  std::future<int> future = promise.get_future();
  VirtioHost::Completion done() {
    return [this](int error) { promise.set_value(error); };
  }
};

TEST(VirtioHost, AUuidResolvesOnlyOnceItsRegistrationCompleted) {
  auto host = VirtioHost::create({.registrationLatency = 300ms});
  const BufferPtr b = buffer();
  const Uuid uuid = randomUuid();
  Outcome registered;
  const auto start = std::chrono::steady_clock::now();
  host->requestRegistration(uuid, b, 0, registered.done());
  // Sent, not answered: known to the host as pending, not resolvable yet.
  EXPECT_EQ(host->stats().pending, 1U);
  EXPECT_EQ(host->resolve(uuid, /*nonBlocking=*/true, 0).code(), EAGAIN);
  // A blocking resolve waits for the answer, then gets the very buffer.
  auto resolved = host->resolve(uuid, false, 0);
  ASSERT_TRUE(resolved.ok()) << resolved.error().describe();
  EXPECT_EQ(resolved->get(), b.get());
  EXPECT_GE(std::chrono::steady_clock::now() - start, 300ms);
  EXPECT_EQ(registered.future.get(), 0);
  const VirtioHostStats s = host->stats();
  EXPECT_EQ(s.registered, 1U);
  EXPECT_EQ(s.pending, 0U);
  EXPECT_EQ(s.resolved, 1U);
  EXPECT_EQ(host->describe(),
            toString(uuid) + " registered 0 " + std::to_string(b->inode()) + "\n");
}

TEST(VirtioHost, ADuplicateRegistrationFailsWithEexistAndTheFirstStays) {
  auto host = VirtioHost::create({});
  const BufferPtr first = buffer();
  const BufferPtr second = buffer();
  const Uuid uuid = randomUuid();
  Outcome a;
  Outcome b;
  host->requestRegistration(uuid, first, 0, a.done());
  host->requestRegistration(uuid, second, 0, b.done());
  EXPECT_EQ(a.future.get(), 0);
  EXPECT_EQ(b.future.get(), EEXIST);
  EXPECT_EQ(host->resolve(uuid, false, 0).value().get(), first.get());
  // The duplicate's release does not remove the first's entry.
  host->unregister(uuid, second->inode());
  EXPECT_EQ(host->resolve(uuid, false, 0).value().get(), first.get());
  EXPECT_EQ(host->stats().duplicates, 1U);
}

TEST(VirtioHost, AnUnknownOrReleasedUuidIsEnoent) {
  auto host = VirtioHost::create({});
  EXPECT_EQ(host->resolve(randomUuid(), false, 0).code(), ENOENT);
  const BufferPtr b = buffer();
  const Uuid uuid = randomUuid();
  Outcome done;
  host->requestRegistration(uuid, b, 0, done.done());
  ASSERT_EQ(done.future.get(), 0);
  host->unregister(uuid, b->inode());
  EXPECT_EQ(host->resolve(uuid, false, 0).code(), ENOENT);
  EXPECT_EQ(host->stats().entries, 0U);
  EXPECT_EQ(host->stats().unknown, 2U);
}

TEST(VirtioHost, OnlyTheSameUserOrRootResolves) {
  auto host = VirtioHost::create({});
  const BufferPtr b = buffer();
  const Uuid uuid = randomUuid();
  Outcome done;
  host->requestRegistration(uuid, b, 1000, done.done());
  ASSERT_EQ(done.future.get(), 0);
  auto other = host->resolve(uuid, false, 1001);
  EXPECT_EQ(other.code(), EACCES);
  EXPECT_NE(other.error().describe().find("uid 1000"), std::string::npos)
      << other.error().describe();
  EXPECT_TRUE(host->resolve(uuid, false, 1000).ok());
  EXPECT_TRUE(host->resolve(uuid, false, 0).ok());
  EXPECT_EQ(host->stats().refused, 1U);
}

TEST(VirtioHost, ABufferReleasedWhileRegisteringLeavesNothingAndWakesItsWaiters) {
  auto host = VirtioHost::create({.registrationLatency = 200ms});
  const BufferPtr b = buffer();
  const Uuid uuid = randomUuid();
  Outcome done;
  host->requestRegistration(uuid, b, 0, done.done());
  std::atomic<int> waiterError{-1};
  std::thread waiter([&] { waiterError = host->resolve(uuid, false, 0).code(); });
  // The waiter may not be asleep yet: either way it ends with ENOENT (asleep: woken by the
  // removal; not yet: the entry is gone when it looks).
  host->unregister(uuid, b->inode());
  waiter.join();
  EXPECT_EQ(waiterError.load(), ENOENT);
  EXPECT_EQ(done.future.get(), ENOENT);  // the answer came for a buffer that is gone
  EXPECT_EQ(host->stats().entries, 0U);
  EXPECT_EQ(host->stats().registered, 0U);
  EXPECT_EQ(host->stats().orphaned, 1U);
}

TEST(VirtioHost, ShutdownFailsWhatIsInFlight) {
  auto host = VirtioHost::create({.registrationLatency = 10s});
  const BufferPtr b = buffer();
  Outcome done;
  host->requestRegistration(randomUuid(), b, 0, done.done());
  host.reset();  // does not wait the 10 s
  EXPECT_EQ(done.future.get(), ESHUTDOWN);
}

}  // namespace
}  // namespace zbuf::virtio
