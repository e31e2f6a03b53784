// ctest-labels: concurrency
// The file layer itself (uapi/file.h, uapi/file_table.h) with a file kind of the test's own: the
// VFS's answers for the slots a kind leaves empty, a kind's own read and llseek on the file
// position, recognition by operations, and release running once, after the last description.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/mman.h>

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "zbuf/uapi/context.h"

namespace zbuf::uapi {
namespace {

struct Counter {
  std::atomic<int> released{0};
};

// Only a name and a release: every other slot is the VFS's default.
class BareOps final : public FileOperations {
 public:
  [[nodiscard]] std::string_view name() const noexcept override { return "bare"; }
  void release(File& file) const override { ++file.data<Counter>().released; }
};

// A read-only text file of 10 bytes with a position, like a small sysfs attribute.
class TextOps final : public FileOperations {
 public:
  [[nodiscard]] std::string_view name() const noexcept override { return "text"; }
  Result<std::size_t> read(const OpenFile& /*f*/, std::span<std::byte> out,
                           std::int64_t& pos) const override {
    static constexpr std::string_view kText = "0123456789";
    if (pos >= static_cast<std::int64_t>(kText.size())) {
      return std::size_t{0};
    }
    const std::size_t n = std::min(out.size(), kText.size() - static_cast<std::size_t>(pos));
    std::memcpy(out.data(), kText.data() + pos, n);
    pos += static_cast<std::int64_t>(n);
    return n;
  }
  Result<std::int64_t> llseek(const OpenFile& /*f*/, std::int64_t offset, int whence,
                              std::int64_t& pos) const override {
    if (whence != SEEK_SET || offset < 0) {
      return Error(EINVAL, "text_llseek", "only SEEK_SET to a non-negative offset");
    }
    pos = offset;
    return pos;
  }
};

const BareOps kBare;
const TextOps kText;

class FileLayer : public ::testing::Test {
 protected:
  UniqueFd install(const FileOperations& ops, int flags = O_RDWR) {
    auto fd = ctx->installFile(ops, counter, "test", flags);
    EXPECT_TRUE(fd.ok()) << fd.error().describe();
    return fd.ok() ? std::move(*fd) : UniqueFd();
  }

  std::shared_ptr<Counter> counter = std::make_shared<Counter>();
  ContextPtr ctx = Context::create();
};

TEST_F(FileLayer, EmptySlotsGiveTheVfsAnswers) {
  UniqueFd fd = install(kBare);
  std::array<std::byte, 4> buf{};
  int arg = 0;
  EXPECT_EQ(ctx->ioctl(fd.get(), 0x1234, &arg).code(), ENOTTY);
  EXPECT_EQ(ctx->read(fd.get(), buf).code(), EINVAL);
  EXPECT_EQ(ctx->write(fd.get(), buf).code(), EINVAL);
  EXPECT_EQ(ctx->mmap(fd.get(), 4096, PROT_READ, MAP_SHARED).code(), ENODEV);
  EXPECT_EQ(ctx->lseek(fd.get(), 0, SEEK_SET).code(), ESPIPE);
  std::array<struct pollfd, 1> fds{{{fd.get(), POLLIN | POLLOUT | POLLPRI, 0}}};
  EXPECT_EQ(ctx->poll(fds, 0).value(), 1);
  EXPECT_EQ(fds[0].revents, POLLIN | POLLOUT);  // DEFAULT_POLLMASK, as asked
  EXPECT_EQ(ctx->fdPath(fd.get()).value(), "anon_inode:bare");
  EXPECT_EQ(ctx->fstat(fd.get()).value().size, 0U);
  EXPECT_EQ(ctx->fdinfo(fd.get()).value().rfind("pos:\t0\nflags:\t02000002\n", 0), 0U);
}

TEST_F(FileLayer, AKindIsRecognisedByItsOperations) {
  UniqueFd bare = install(kBare);
  UniqueFd text = install(kText, O_RDONLY);
  auto a = ctx->lookup(bare.get());
  auto b = ctx->lookup(text.get());
  ASSERT_TRUE(a.ok() && *a && b.ok() && *b);
  EXPECT_TRUE((*a)->is(kBare));
  EXPECT_FALSE((*a)->is(kText));
  EXPECT_TRUE((*b)->is(kText));
  EXPECT_FALSE((*b)->is(dmaBufFileOperations()));
  EXPECT_EQ((*a)->dataPtr<Counter>(), counter);
  auto files = ctx->files().list();
  ASSERT_EQ(files.size(), 2U);
  EXPECT_EQ(ctx->bufferFromFd(bare.get()).code(), EINVAL);  // not a dma-buf
}

TEST_F(FileLayer, ReadAndLseekMoveTheFilePosition) {
  UniqueFd fd = install(kText, O_RDONLY);
  std::array<std::byte, 4> buf{};
  EXPECT_EQ(ctx->read(fd.get(), buf).value(), 4U);
  EXPECT_EQ(std::memcmp(buf.data(), "0123", 4), 0);
  EXPECT_EQ(ctx->read(fd.get(), buf).value(), 4U);
  EXPECT_EQ(std::memcmp(buf.data(), "4567", 4), 0);
  EXPECT_NE(ctx->fdinfo(fd.get()).value().find("pos:\t8\n"), std::string::npos);
  EXPECT_EQ(ctx->read(fd.get(), buf).value(), 2U);
  EXPECT_EQ(ctx->read(fd.get(), buf).value(), 0U);  // end of file
  EXPECT_EQ(ctx->lseek(fd.get(), 1, SEEK_SET).value(), 1);
  EXPECT_EQ(ctx->read(fd.get(), buf).value(), 4U);
  EXPECT_EQ(std::memcmp(buf.data(), "1234", 4), 0);
  EXPECT_EQ(ctx->lseek(fd.get(), 0, SEEK_END).code(), EINVAL);
  EXPECT_EQ(ctx->write(fd.get(), buf).code(), EBADF);  // O_RDONLY, before the kind is asked
}

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
