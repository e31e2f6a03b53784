// ctest-labels: concurrency
// The file table (uapi/file_table.h) with a file kind of the test's own: release running once,
// after the last description; lookup by the open file's identity; a context's end releasing
// every file. The operations' defaults and dispatch are file_test.cpp's.
#include "zbuf/uapi/file_table.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "support/file_kinds.h"
#include "zbuf/uapi/context.h"

namespace zbuf::uapi {
namespace {

using zbuf::testing::kBare;
using Counter = zbuf::testing::ReleaseCounter;
using FileLayer = zbuf::testing::FileLayerFixture;

TEST_F(FileLayer, ReleaseRunsOnceAfterTheLastDescription) {
  UniqueFd fd = install(kBare);
  auto file = ctx->lookup(fd.get()).value();
  auto second = ctx->files().openDescription(*file, O_RDONLY);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(file->descriptions(), 2);
  file.reset();
  ASSERT_TRUE(ctx->close(std::move(fd)).ok());
  EXPECT_EQ(counter->released.load(), 0);
  ASSERT_TRUE(ctx->close(std::move(*second)).ok());
  EXPECT_EQ(counter->released.load(), 1);
  EXPECT_EQ(ctx->files().size(), 0U);
  EXPECT_EQ(counter.use_count(), 1);  // the private data went with the file
}

TEST_F(FileLayer, AReleasedFileGivesNoNewDescription) {
  UniqueFd fd = install(kBare);
  FilePtr file = ctx->lookup(fd.get()).value();
  ASSERT_TRUE(ctx->close(std::move(fd)).ok());
  EXPECT_EQ(ctx->files().openDescription(*file, O_RDWR).code(), EBADF);
}

TEST_F(FileLayer, TheTableFindsByIdentity) {
  UniqueFd fd = install(kBare);
  FilePtr file = ctx->lookup(fd.get()).value();
  EXPECT_EQ(ctx->files().findByIdentity(file->device(), file->inode()), file);
  EXPECT_EQ(ctx->files().findByIdentity(file->device(), file->inode() + 1000000), nullptr);
  EXPECT_EQ(ctx->files().find(-1).code(), EBADF);
  auto memfd = sys::memfdCreate("foreign", MFD_CLOEXEC);
  ASSERT_TRUE(memfd.ok());
  EXPECT_EQ(ctx->files().find(memfd->get()).value(), nullptr);
  // A second file with the identity of a live one is refused.
  auto again = sys::dup(file->backingFd());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(ctx->files().insert(kBare, counter, std::move(*again)).code(), EEXIST);
}

TEST_F(FileLayer, DestroyingTheContextReleasesEveryFile) {
  UniqueFd a = install(kBare);
  UniqueFd b = install(kBare);
  ctx.reset();
  EXPECT_EQ(counter->released.load(), 2);
}

// A release that holds its own reference to the context while it runs (as FunctionFS's ep0
// release does when it removes the endpoint nodes), while every other owner lets go: the
// context then ends on the reaper thread, which must neither join itself (std::system_error,
// EDEADLK: seen in the ep0 tests) nor touch the table afterwards (ASan).
struct Holder {
  std::weak_ptr<Context> context;
  std::mutex m;
  std::condition_variable cv;
  bool inRelease = false;
  bool go = false;
};

// NOLINTNEXTLINE(cppcoreguidelines-virtual-class-destructor) final, and a static never destroyed
class HoldingOps final : public FileOperations {
 public:
  [[nodiscard]] std::string_view name() const noexcept override { return "holding"; }
  void release(File& file) const override {
    auto& h = file.data<Holder>();
    const ContextPtr keep = h.context.lock();
    std::unique_lock lock(h.m);
    h.inRelease = true;
    h.cv.notify_all();
    h.cv.wait(lock, [&] { return h.go; });
  }  // `keep` may be the context's last reference but for the reaper's own
};
const HoldingOps kHolding;

TEST(FileLayerLifetime, AContextWhoseLastOwnerIsTheReaperEndsCleanly) {
  auto holder = std::make_shared<Holder>();
  ContextPtr ctx = Context::create();
  holder->context = ctx;
  auto fd = ctx->installFile(kHolding, holder, "holding", O_RDWR);
  ASSERT_TRUE(fd.ok());
  ASSERT_EQ(::close(fd->release()), 0);  // a plain close: the reaper thread releases the file
  {
    std::unique_lock lock(holder->m);
    ASSERT_TRUE(
        holder->cv.wait_for(lock, std::chrono::seconds(20), [&] { return holder->inRelease; }));
  }
  const std::weak_ptr<Context> weak = ctx;
  ctx.reset();  // every owner but the release (and the reaper) lets go
  {
    const std::lock_guard lock(holder->m);
    holder->go = true;
  }
  holder->cv.notify_all();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!weak.expired() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();  // waits for the condition: the context's end on the reaper
  }
  EXPECT_TRUE(weak.expired());
}

}  // namespace
}  // namespace zbuf::uapi
