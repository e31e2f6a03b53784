#include "zbuf/base/unique_fd.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

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

}  // namespace
}  // namespace zbuf
