// ctest-labels: concurrency
// How long a file and the buffer behind it live (uapi/file_table.h): as in the kernel, while an
// fd or a mapping refers to them, whichever way the application closes. Each test checks both
// listings: the context's files (ctx.files().list(), what /proc/<pid>/fd would show) and the
// process's buffers (bufinfo, the kernel's db_list), and the Buffer object itself.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

#include "uapi/uapi_helpers.h"
#include "zbuf/uapi/context.h"

namespace zbuf::uapi {
namespace {

using zbuf::testing::bufferListed;
using zbuf::testing::installSystemBuffer;
using zbuf::testing::waitUntil;

class Lifetime : public ::testing::Test {
 protected:
  // A buffer fd in this test's own context, and what the test watches it by.
  struct Watched {
    UniqueFd fd;
    std::weak_ptr<Buffer> buffer;
    std::uint64_t inode = 0;
  };

  Watched watchedBuffer(std::uint64_t size = 4096, int flags = O_RDWR | O_CLOEXEC) {
    Watched w;
    w.fd = installSystemBuffer(*ctx, size, flags);
    auto buffer = ctx->bufferFromFd(w.fd.get());
    EXPECT_TRUE(buffer.ok());
    if (buffer.ok()) {
      w.buffer = *buffer;
      w.inode = (*buffer)->inode();
    }
    return w;
  }

  // The buffer is gone everywhere: no file in the context, not in bufinfo, object destroyed.
  void expectReleased(const Watched& w) {
    EXPECT_EQ(ctx->files().size(), 0U);
    EXPECT_TRUE(w.buffer.expired());
    EXPECT_FALSE(bufferListed(w.inode));
  }
  // The file and the buffer are still there.
  void expectAlive(const Watched& w, long descriptions) {
    auto files = ctx->files().list();
    ASSERT_EQ(files.size(), 1U);
    EXPECT_EQ(files[0].kind, "dmabuf");
    EXPECT_EQ(files[0].descriptions, descriptions);
    EXPECT_FALSE(w.buffer.expired());
    EXPECT_TRUE(bufferListed(w.inode));
  }

  ContextPtr ctx = Context::create();
  Context::Scope scope{*ctx};
};

TEST_F(Lifetime, ZbufsCloseReleasesAtOnce) {
  Watched w = watchedBuffer();
  expectAlive(w, 1);
  ASSERT_TRUE(ctx->close(std::move(w.fd)).ok());
  // No reap, no wait: the close itself released it.
  EXPECT_TRUE(w.buffer.expired());
  EXPECT_FALSE(bufferListed(w.inode));
  EXPECT_EQ(ctx->files().size(), 0U);
}

TEST_F(Lifetime, ZbufsCloseReleasesBeforeItReturnsEvenWhenTheReaperReadTheEvent) {
  // The reaper thread wakes on the same close event; close() must still return only after the
  // release, whichever thread read the event (this raced before reap() waited for releases).
  int late = 0;
  for (int i = 0; i < 500; ++i) {
    Watched w = watchedBuffer();
    ASSERT_TRUE(ctx->close(std::move(w.fd)).ok());
    late += w.buffer.expired() ? 0 : 1;
  }
  EXPECT_EQ(late, 0);
}

TEST_F(Lifetime, ClosingAnFdThatIsNotOpenIsEbadf) {
  Watched w = watchedBuffer();
  const int number = w.fd.get();
  ASSERT_TRUE(ctx->close(w.fd.release()).ok());
  EXPECT_EQ(ctx->close(number).code(), EBADF);
  EXPECT_EQ(ctx->close(-1).code(), EBADF);
}

TEST_F(Lifetime, PlainCloseIsSeenByTheNextListing) {
  Watched w = watchedBuffer();
  ASSERT_EQ(::close(w.fd.release()), 0);  // close(2), behind the context's back
  // list() and size() reap first: the close is accounted for, whatever the reaper did.
  EXPECT_TRUE(ctx->files().list().empty());
  expectReleased(w);
}

TEST_F(Lifetime, PlainCloseIsSeenByReap) {
  Watched w = watchedBuffer();
  ASSERT_EQ(::close(w.fd.release()), 0);
  (void)ctx->files().reap();  // 1, or 0 if the reaper thread was first; released either way
  EXPECT_TRUE(w.buffer.expired());
  expectReleased(w);
}

TEST_F(Lifetime, TheReaperThreadNoticesAPlainCloseWithoutAnyFurtherCall) {
  Watched w = watchedBuffer();
  { UniqueFd gone = std::move(w.fd); }  // a UniqueFd going out of scope: close(2)
  // Nothing here touches the context: only the reaper thread can release the buffer.
  EXPECT_TRUE(waitUntil([&] { return w.buffer.expired(); }))
      << "the reaper did not release the buffer within 10 s";
  EXPECT_FALSE(bufferListed(w.inode));
  EXPECT_EQ(ctx->files().size(), 0U);
}

TEST_F(Lifetime, TheReaperReleasesManyPlainClosesAndTheTableStaysEmpty) {
  std::vector<std::weak_ptr<Buffer>> buffers;
  for (int i = 0; i < 200; ++i) {
    Watched w = watchedBuffer();
    buffers.push_back(w.buffer);
    // w.fd closes here with close(2).
  }
  EXPECT_TRUE(waitUntil([&] {
    return std::all_of(buffers.begin(), buffers.end(), [](auto& b) { return b.expired(); });
  }));
  EXPECT_EQ(ctx->files().size(), 0U);
}

TEST_F(Lifetime, ADupSharesTheDescriptionAndTheFileLivesUntilTheLastFd) {
  Watched w = watchedBuffer();
  auto dup = sys::dup(w.fd.get());
  ASSERT_TRUE(dup.ok());
  auto dup2 = sys::dup(w.fd.get());
  ASSERT_TRUE(dup2.ok());
  ASSERT_TRUE(ctx->close(std::move(w.fd)).ok());
  expectAlive(w, 1);  // one description, three fds of it
  EXPECT_EQ(ctx->bufferFromFd(dup->get()).value(), w.buffer.lock());
  ASSERT_TRUE(ctx->close(std::move(*dup)).ok());
  expectAlive(w, 1);
  dup2->reset();  // the last one with close(2)
  expectReleased(w);
}

TEST_F(Lifetime, EachInstallIsADescriptionAndTheFileLivesUntilTheLastCloses) {
  Watched w = watchedBuffer();
  auto second = ctx->installBuffer(w.buffer.lock(), O_RDONLY | O_CLOEXEC);
  ASSERT_TRUE(second.ok());
  expectAlive(w, 2);
  ASSERT_TRUE(ctx->close(std::move(w.fd)).ok());
  expectAlive(w, 1);
  ASSERT_TRUE(ctx->close(std::move(*second)).ok());
  expectReleased(w);
}

// inotify merges an event into an equal unread one: the reopen's IN_OPEN must not merge with
// the IN_OPEN of installBuffer's own description (openDescription reads its own at once).
TEST_F(Lifetime, AReopenThroughProcIsCountedAsADescription) {
  Watched w = watchedBuffer();
  const std::string path = "/proc/self/fd/" + std::to_string(w.fd.get());
  auto reopened = sys::open(path.c_str(), O_RDONLY | O_CLOEXEC);  // open(2) behind zbuf's back
  ASSERT_TRUE(reopened.ok()) << reopened.error().describe();
  expectAlive(w, 2);  // the IN_OPEN counted it
  EXPECT_EQ(ctx->bufferFromFd(reopened->get()).value(), w.buffer.lock());
  EXPECT_EQ(*sys::getFileFlags(reopened->get()) & O_ACCMODE, O_RDONLY);
  ASSERT_TRUE(ctx->close(std::move(w.fd)).ok());
  expectAlive(w, 1);  // the reopened description keeps it
  ASSERT_TRUE(ctx->close(std::move(*reopened)).ok());
  expectReleased(w);
}

// What cannot be seen, bounded (docs/uapi.md, "Merged events"): two descriptions of one access
// mode closed with close(2) back to back give two equal IN_CLOSE_NOWRITE events, and inotify
// merges the second into the first when neither is read yet, so the count can stay at 1. Such a
// file is still listed (with the description the table believes open) and lives until its
// context ends, never longer: ending the context releases every one of them.
TEST(LifetimeBound, FilesWhoseClosesMergedLiveUntilTheContextEndsAndNoLonger) {
  std::vector<std::weak_ptr<Buffer>> buffers;
  std::vector<std::uint64_t> inodes;
  std::size_t leaked = 0;
  {
    ContextPtr ctx = Context::create();
    const Context::Scope scope{*ctx};
    for (int i = 0; i < 200; ++i) {
      UniqueFd first = installSystemBuffer(*ctx, 4096, O_RDONLY | O_CLOEXEC);
      auto buffer = ctx->bufferFromFd(first.get());
      ASSERT_TRUE(buffer.ok());
      auto second = ctx->installBuffer(*buffer, O_RDONLY | O_CLOEXEC);
      ASSERT_TRUE(second.ok());
      buffers.push_back(*buffer);
      inodes.push_back((*buffer)->inode());
      buffer->reset();
      ASSERT_EQ(::close(first.release()), 0);
      ASSERT_EQ(::close(second->release()), 0);
    }
    // Every close is read by now (size() reaps): what is left is what merged.
    leaked = ctx->files().size();
    for (const FileInfo& f : ctx->files().list()) {
      EXPECT_EQ(f.kind, "dmabuf");
      EXPECT_EQ(f.descriptions, 1);  // one close was lost in a merge, never both
    }
    const auto alive = static_cast<std::size_t>(
        std::count_if(buffers.begin(), buffers.end(), [](auto& b) { return !b.expired(); }));
    EXPECT_EQ(alive, leaked);
  }
  // The context is gone: every buffer with it, merged or not.
  for (std::size_t i = 0; i < buffers.size(); ++i) {
    EXPECT_TRUE(buffers[i].expired()) << "round " << i;
    EXPECT_FALSE(bufferListed(inodes[i])) << "round " << i;
  }
  std::printf("[ info ] %zu of %zu rounds merged their closes\n", leaked, buffers.size());
}

TEST_F(Lifetime, AForkedChildsCopyKeepsTheFileUntilTheChildExits) {
  Watched w = watchedBuffer();
  auto go = sys::pipe();
  ASSERT_TRUE(go.ok());
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // The child holds its copy of every fd (the buffer's included) until the parent says go,
    // then exits by itself. Only plain system calls here: the parent's threads are not in the
    // child.
    ::close(go->second.get());
    char byte = 0;
    const ssize_t n = ::read(go->first.get(), &byte, 1);
    ::_exit(n == 1 ? 0 : 1);
  }
  go->first.reset();
  ASSERT_TRUE(ctx->close(std::move(w.fd)).ok());
  expectAlive(w, 1);  // the child's fd refers to the same description
  const char byte = 'g';
  ASSERT_EQ(::write(go->second.get(), &byte, 1), 1);
  int status = 0;
  pid_t reaped = 0;
  EXPECT_TRUE(waitUntil([&] {
    reaped = ::waitpid(pid, &status, WNOHANG);
    return reaped != 0;
  })) << "the child did not exit within 10 s";
  if (reaped == 0) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
  }
  ASSERT_EQ(reaped, pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  // The child's exit closed the last description before waitpid returned.
  expectReleased(w);
}

TEST_F(Lifetime, AMappingThroughTheContextKeepsTheBufferAfterEveryFdIsClosed) {
  Watched w = watchedBuffer(8192);
  auto map = ctx->mmap(w.fd.get(), 8192, PROT_READ | PROT_WRITE, MAP_SHARED);
  ASSERT_TRUE(map.ok()) << map.error().describe();
  ASSERT_TRUE(ctx->close(std::move(w.fd)).ok());
  // The file is gone (no fd refers to it), the buffer is not: the mapping holds it, as the
  // kernel's vma holds the dma-buf.
  EXPECT_EQ(ctx->files().size(), 0U);
  EXPECT_FALSE(w.buffer.expired());
  EXPECT_TRUE(bufferListed(w.inode));
  std::memcpy(map->data() + 4096, "still", 5);
  EXPECT_EQ(std::memcmp(map->data() + 4096, "still", 5), 0);
  *map = sys::Mapping();  // munmap
  EXPECT_TRUE(w.buffer.expired());
  EXPECT_FALSE(bufferListed(w.inode));
}

TEST_F(Lifetime, APlainMappingOfTheFdKeepsItsDescriptionAndSoTheFile) {
  Watched w = watchedBuffer();
  auto map = sys::mmap(4096, PROT_READ, MAP_SHARED, w.fd.get(), 0);  // mmap(2) itself
  ASSERT_TRUE(map.ok());
  ASSERT_TRUE(ctx->close(std::move(w.fd)).ok());
  expectAlive(w, 1);      // the vma holds the description: no close event yet
  *map = sys::Mapping();  // munmap drops the last reference
  expectReleased(w);
}

TEST_F(Lifetime, ASyncFileLivesByTheSameRules) {
  auto fence = Timeline::create("drv", "tl")->createFence();
  auto fd = ctx->installSyncFile(fence);
  ASSERT_TRUE(fd.ok());
  const long held = fence.use_count();
  auto dup = sys::dup(fd->get());
  ASSERT_TRUE(dup.ok());
  ASSERT_TRUE(ctx->close(std::move(*fd)).ok());
  ASSERT_EQ(ctx->files().size(), 1U);
  EXPECT_EQ(ctx->files().list()[0].kind, "sync_file");
  EXPECT_EQ(fence.use_count(), held);
  dup->reset();  // close(2)
  EXPECT_EQ(ctx->files().size(), 0U);
  EXPECT_EQ(fence.use_count(), held - 1);
  fence->signal();  // its callback went with the file
}

TEST(LifetimeOfAContext, DestroyingTheContextReleasesWhatIsLeft) {
  auto ctx = Context::create();
  UniqueFd fd = installSystemBuffer(*ctx);
  std::weak_ptr<Buffer> buffer = ctx->bufferFromFd(fd.get()).value();
  const std::uint64_t inode = buffer.lock()->inode();
  auto sync = ctx->installSyncFile(Fence::stub());
  ASSERT_TRUE(sync.ok());
  ctx.reset();
  // The fds are still open (the process owns them), but the kernel that answered for them is
  // gone, and with it what they referred to.
  EXPECT_TRUE(buffer.expired());
  EXPECT_FALSE(bufferListed(inode));
  EXPECT_TRUE(fd.isValid());
}

}  // namespace
}  // namespace zbuf::uapi
