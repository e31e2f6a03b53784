// A file and its operations (uapi/file.h) with kinds of the test's own: the VFS's answers for
// the slots a kind leaves empty; a kind recognised by its operations (is_dma_buf_file's f_op
// test); a kind's read and llseek on the file position; what a kind adds to fstat, fdinfo and
// the fd's link; the open file description's flags as the operations see them, read per call.
#include "zbuf/uapi/file.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <string>

#include "support/file_kinds.h"
#include "zbuf/uapi/context.h"

namespace zbuf::uapi {
namespace {

using zbuf::testing::kBare;
using Counter = zbuf::testing::ReleaseCounter;
using FileLayer = zbuf::testing::FileLayerFixture;

// A read-only text file of 10 bytes with a position, like a small sysfs attribute; fstat,
// fdinfo and the link show what it adds.
// NOLINTNEXTLINE(cppcoreguidelines-virtual-class-destructor) final, and a static never destroyed
class TextOps final : public FileOperations {
 public:
  static constexpr std::string_view kContent = "0123456789";

  [[nodiscard]] std::string_view name() const noexcept override { return "text"; }
  Result<std::size_t> read(const OpenFile& /*f*/, std::span<std::byte> out,
                           std::int64_t& pos) const override {
    if (pos >= static_cast<std::int64_t>(kContent.size())) {
      return std::size_t{0};
    }
    const std::size_t n = std::min(out.size(), kContent.size() - static_cast<std::size_t>(pos));
    std::memcpy(out.data(), kContent.data() + pos, n);
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
  void stat(const File& /*file*/, FileStat& st) const override { st.size = kContent.size(); }
  void showFdinfo(const File& /*file*/, std::string& out) const override {
    out += "text_size:\t10\n";
  }
  [[nodiscard]] std::string linkName(const File& /*file*/) const override {
    return "/sys/test/text";
  }
};

// An ioctl that answers with what the operations see of the caller's open file description.
// NOLINTNEXTLINE(cppcoreguidelines-virtual-class-destructor) final, and a static never destroyed
class FlagsOps final : public FileOperations {
 public:
  static constexpr unsigned kNonBlocking = 1;
  static constexpr unsigned kAccessMode = 2;
  static constexpr unsigned kFd = 3;

  [[nodiscard]] std::string_view name() const noexcept override { return "flags"; }
  Result<long> ioctl(const OpenFile& f, unsigned cmd, void* /*arg*/) const override {
    switch (cmd) {
      case kNonBlocking:
        return f.nonBlocking() ? 1L : 0L;
      case kAccessMode:
        return long{f.accessMode()};
      case kFd:
        return long{f.fd()};
      default:
        return Error(ENOTTY, "flags_ioctl", "no such request");
    }
  }
};

const TextOps kText;
const FlagsOps kFlags;

static_assert(IsFileOperations<TextOps> && IsFileOperations<FlagsOps>);
static_assert(!IsFileOperations<int>);

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
  EXPECT_EQ(&(*b)->ops(), &kText);
  EXPECT_EQ((*a)->dataPtr<Counter>(), counter);
  EXPECT_EQ(&(*a)->data<Counter>(), counter.get());
  auto files = ctx->files().list();
  ASSERT_EQ(files.size(), 2U);
  EXPECT_EQ(ctx->bufferFromFd(bare.get()).code(), EINVAL);  // not a dma-buf
}

TEST_F(FileLayer, ReadAndLseekMoveTheFilePosition) {
  UniqueFd fd = install(kText, O_RDONLY);
  FilePtr file = ctx->lookup(fd.get()).value();
  std::array<std::byte, 4> buf{};
  EXPECT_EQ(ctx->read(fd.get(), buf).value(), 4U);
  EXPECT_EQ(std::memcmp(buf.data(), "0123", 4), 0);
  EXPECT_EQ(ctx->read(fd.get(), buf).value(), 4U);
  EXPECT_EQ(std::memcmp(buf.data(), "4567", 4), 0);
  EXPECT_EQ(file->position().load(), 8);
  EXPECT_NE(ctx->fdinfo(fd.get()).value().find("pos:\t8\n"), std::string::npos);
  EXPECT_EQ(ctx->read(fd.get(), buf).value(), 2U);
  EXPECT_EQ(ctx->read(fd.get(), buf).value(), 0U);  // end of file
  EXPECT_EQ(ctx->lseek(fd.get(), 1, SEEK_SET).value(), 1);
  EXPECT_EQ(ctx->read(fd.get(), buf).value(), 4U);
  EXPECT_EQ(std::memcmp(buf.data(), "1234", 4), 0);
  EXPECT_EQ(ctx->lseek(fd.get(), 0, SEEK_END).code(), EINVAL);
  EXPECT_EQ(ctx->write(fd.get(), buf).code(), EBADF);  // O_RDONLY, before the kind is asked
}

TEST_F(FileLayer, AKindAddsToFstatFdinfoAndTheLink) {
  UniqueFd fd = install(kText, O_RDONLY);
  FilePtr file = ctx->lookup(fd.get()).value();
  auto st = ctx->fstat(fd.get());
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->size, TextOps::kContent.size());
  // The defaults the kind did not touch: the backing file's identity, and an anonymous
  // inode's mode (0600 and no file type, as anon_inode_getfile's inode shows in fstat(2)).
  EXPECT_EQ(st->inode, file->inode());
  EXPECT_EQ(st->device, file->device());
  struct stat backing {};
  ASSERT_EQ(::fstat(file->backingFd(), &backing), 0);
  EXPECT_EQ(st->inode, backing.st_ino);
  EXPECT_EQ(st->mode, unsigned{S_IRUSR | S_IWUSR});
  auto info = ctx->fdinfo(fd.get());
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->rfind("pos:\t0\nflags:\t", 0), 0U);
  EXPECT_NE(info->find("\ntext_size:\t10\n"), std::string::npos) << *info;
  EXPECT_EQ(ctx->fdPath(fd.get()).value(), "/sys/test/text");
}

TEST_F(FileLayer, TheOperationsSeeTheCallersDescriptionAndItsFlagsPerCall) {
  UniqueFd fd = install(kFlags, O_RDONLY);
  EXPECT_EQ(ctx->ioctl(fd.get(), FlagsOps::kAccessMode, nullptr).value(), O_RDONLY);
  EXPECT_EQ(ctx->ioctl(fd.get(), FlagsOps::kNonBlocking, nullptr).value(), 0);
  EXPECT_EQ(ctx->ioctl(fd.get(), FlagsOps::kFd, nullptr).value(), fd.get());
  // O_NONBLOCK set on the description after the open is what the next call sees (F_GETFL is
  // read per call, as the kernel reads f_flags).
  ASSERT_EQ(::fcntl(fd.get(), F_SETFL, O_NONBLOCK), 0);
  EXPECT_EQ(ctx->ioctl(fd.get(), FlagsOps::kNonBlocking, nullptr).value(), 1);
  // A second description of the same file has its own flags and its own fd.
  FilePtr file = ctx->lookup(fd.get()).value();
  auto second = ctx->files().openDescription(*file, O_RDWR);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(ctx->ioctl(second->get(), FlagsOps::kAccessMode, nullptr).value(), O_RDWR);
  EXPECT_EQ(ctx->ioctl(second->get(), FlagsOps::kNonBlocking, nullptr).value(), 0);
  EXPECT_EQ(ctx->ioctl(second->get(), FlagsOps::kFd, nullptr).value(), second->get());
  EXPECT_EQ(file->descriptions(), 2);
  EXPECT_EQ(ctx->ioctl(fd.get(), 99, nullptr).code(), ENOTTY);
}

}  // namespace
}  // namespace zbuf::uapi
