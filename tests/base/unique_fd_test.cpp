#include "zbuf/base/unique_fd.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include "zbuf/base/shared_fd.h"
#include "zbuf/base/sys.h"

namespace zbuf {
namespace {

bool isOpen(int fd) {
  return ::fcntl(fd, F_GETFD) >= 0;
}

TEST(UniqueFd, ClosesOnDestruction) {
  int raw = -1;
  {
    auto fd = sys::eventfd(0, 0);
    ASSERT_TRUE(fd.ok());
    raw = fd->get();
    EXPECT_TRUE(isOpen(raw));
  }
  EXPECT_FALSE(isOpen(raw));
}

TEST(UniqueFd, ReleaseHandsOwnershipBack) {
  auto fd = sys::eventfd(0, 0);
  ASSERT_TRUE(fd.ok());
  const int raw = fd->release();
  EXPECT_FALSE(fd->isValid());
  EXPECT_TRUE(isOpen(raw));
  UniqueFd again = UniqueFd::adopt(raw);
  EXPECT_EQ(again.get(), raw);
}

TEST(UniqueFd, MoveTransfersOwnership) {
  auto fd = sys::eventfd(0, 0);
  ASSERT_TRUE(fd.ok());
  const int raw = fd->get();
  UniqueFd moved = std::move(*fd);
  EXPECT_EQ(moved.get(), raw);
  EXPECT_FALSE(fd->isValid());  // NOLINT(bugprone-use-after-move): checking the moved-from state
  moved = UniqueFd();
  EXPECT_FALSE(isOpen(raw));
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

}  // namespace
}  // namespace zbuf
