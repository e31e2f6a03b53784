// ctest-labels: concurrency
#include "zbuf/base/shared_fd.h"

#include <fcntl.h>
#include <gtest/gtest.h>

#include <thread>
#include <utility>
#include <vector>

#include "zbuf/base/sys.h"

namespace zbuf {
namespace {

bool isOpen(int fd) {
  return ::fcntl(fd, F_GETFD) >= 0;
}

bool isCloseOnExec(int fd) {
  const int flags = ::fcntl(fd, F_GETFD);
  return flags >= 0 && (flags & FD_CLOEXEC) != 0;
}

TEST(SharedFd, ClosesWhenTheLastCopyGoes) {
  auto fd = sys::eventfd(0, 0);
  ASSERT_TRUE(fd.ok());
  const int raw = fd->get();
  SharedFd a = SharedFd::adopt(std::move(*fd));
  {
    SharedFd b = a;  // NOLINT(performance-unnecessary-copy-initialization): the copy is the test
    EXPECT_EQ(a, b);
    EXPECT_EQ(a.useCount(), 2);
  }
  EXPECT_TRUE(isOpen(raw));
  a = SharedFd();
  EXPECT_FALSE(isOpen(raw));
}

TEST(SharedFd, DuplicateKeepsTheCallersFdAndDupGivesANewOne) {
  auto fd = sys::eventfd(0, 0);
  ASSERT_TRUE(fd.ok());
  auto shared = SharedFd::duplicate(fd->get());
  ASSERT_TRUE(shared.ok());
  EXPECT_NE(shared->get(), fd->get());
  auto copy = shared->dup();
  ASSERT_TRUE(copy.ok());
  EXPECT_NE(copy->get(), shared->get());
  EXPECT_TRUE(isOpen(fd->get()));
}

TEST(SharedFd, EmptyDupIsEbadf) {
  SharedFd empty;
  EXPECT_EQ(empty.dup().code(), EBADF);
  EXPECT_EQ(SharedFd::duplicate(-1).code(), EBADF);
}

TEST(SharedFd, EmptyIsInvalid) {
  const SharedFd empty;
  EXPECT_EQ(empty.get(), -1);
  EXPECT_FALSE(empty.isValid());
  EXPECT_FALSE(static_cast<bool>(empty));
  EXPECT_EQ(empty.useCount(), 0);
  const SharedFd adoptedEmpty = SharedFd::adopt(UniqueFd());
  EXPECT_FALSE(adoptedEmpty.isValid());
  EXPECT_EQ(adoptedEmpty.dup().code(), EBADF);
  EXPECT_EQ(empty, adoptedEmpty);
}

TEST(SharedFd, CopiesShareTheFdNumber) {
  auto fd = sys::eventfd(0, 0);
  ASSERT_TRUE(fd.ok());
  const int raw = fd->get();
  const SharedFd a = SharedFd::adopt(std::move(*fd));
  EXPECT_TRUE(a.isValid());
  EXPECT_TRUE(static_cast<bool>(a));
  EXPECT_EQ(a.get(), raw);
  EXPECT_EQ(a.useCount(), 1);
  SharedFd b = a;
  SharedFd c = std::move(b);  // a move adds no owner
  EXPECT_EQ(c.get(), raw);
  EXPECT_EQ(a.useCount(), 2);
  EXPECT_NE(a, SharedFd());
}

TEST(SharedFd, DupIsTheSameOpenFileAndCloseOnExec) {
  auto fd = sys::eventfd(0, 0);
  ASSERT_TRUE(fd.ok());
  auto shared = SharedFd::duplicate(fd->get());
  ASSERT_TRUE(shared.ok());
  EXPECT_TRUE(isCloseOnExec(shared->get()));
  auto copy = shared->dup();
  ASSERT_TRUE(copy.ok());
  EXPECT_TRUE(isCloseOnExec(copy->get()));
  // A count written through one is read through the others: one eventfd, three fds.
  ASSERT_TRUE(sys::eventfdWrite(copy->get(), 5).ok());
  ASSERT_TRUE(sys::eventfdWrite(shared->get(), 2).ok());
  auto count = sys::eventfdRead(fd->get());
  ASSERT_TRUE(count.ok());
  EXPECT_EQ(*count, 7U);
  // The dup outlives the SharedFd it came from.
  const int dupped = copy->get();
  *shared = SharedFd();
  EXPECT_TRUE(isOpen(dupped));
}

TEST(SharedFd, DuplicateOfAClosedFdIsEbadf) {
  int raw = -1;
  {
    auto fd = sys::eventfd(0, 0);
    ASSERT_TRUE(fd.ok());
    raw = fd->get();
  }
  ASSERT_FALSE(isOpen(raw));
  EXPECT_EQ(SharedFd::duplicate(raw).code(), EBADF);
}

TEST(SharedFd, CopiesMayComeAndGoOnSeveralThreads) {
  auto fd = sys::eventfd(0, 0);
  ASSERT_TRUE(fd.ok());
  const int raw = fd->get();
  const SharedFd shared = SharedFd::adopt(std::move(*fd));
  constexpr int kThreads = 4;
  constexpr int kCopies = 2000;
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&shared] {
      for (int i = 0; i < kCopies; ++i) {
        SharedFd copy = shared;  // NOLINT(performance-unnecessary-copy-initialization): the test
        if (copy.get() != shared.get()) {
          ADD_FAILURE() << "a copy has another fd";
          return;
        }
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  EXPECT_EQ(shared.useCount(), 1);
  EXPECT_TRUE(isOpen(raw));
}

}  // namespace
}  // namespace zbuf
