// The kernel's answers on a buffer fd through the fd-level calls (reference section 12): read
// and write EINVAL, the two-position lseek, fstat's size, fdinfo's lines, the /dmabuf:<name>
// link, a read-only fd's mappings, and a heap's buffer found again from the fd it was
// installed as (dma_buf_get).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/memfd.h>
#include <sys/mman.h>

#include <array>
#include <cstring>
#include <string>

#include "uapi/uapi_helpers.h"
#include "zbuf/base/sys.h"
#include "zbuf/heaps/system_heap.h"
#include "zbuf/heaps/udmabuf.h"
#include "zbuf/uapi/context.h"
#include "zbuf/uapi/dma_buf.h"

namespace zbuf::uapi {
namespace {

using zbuf::testing::installSystemBuffer;

class BufferFile : public ::testing::Test {
 protected:
  ContextPtr ctx = Context::create();
  Context::Scope scope{*ctx};
};

TEST_F(BufferFile, ReadAndWriteAreEinval) {
  UniqueFd fd = installSystemBuffer(*ctx);
  std::array<std::byte, 16> buf{};
  EXPECT_EQ(ctx->read(fd.get(), buf).code(), EINVAL);
  EXPECT_EQ(ctx->write(fd.get(), buf).code(), EINVAL);
  // The memory is untouched and the position did not move.
  EXPECT_NE(ctx->fdinfo(fd.get()).value().find("pos:\t0\n"), std::string::npos);
}

TEST_F(BufferFile, TheAccessModeIsCheckedFirst) {
  UniqueFd ro = installSystemBuffer(*ctx, 4096, O_RDONLY | O_CLOEXEC);
  std::array<std::byte, 4> buf{};
  EXPECT_EQ(ctx->write(ro.get(), buf).code(), EBADF);  // vfs_write: not open for writing
  EXPECT_EQ(ctx->read(ro.get(), buf).code(), EINVAL);
  UniqueFd wo = installSystemBuffer(*ctx, 4096, O_WRONLY | O_CLOEXEC);
  EXPECT_EQ(ctx->read(wo.get(), buf).code(), EBADF);
  EXPECT_EQ(ctx->write(wo.get(), buf).code(), EINVAL);
}

TEST_F(BufferFile, LseekTakesOffsetZeroWithSetOrEndAndDoesNotMove) {
  UniqueFd fd = installSystemBuffer(*ctx, 3 * 4096);
  EXPECT_EQ(ctx->lseek(fd.get(), 0, SEEK_END).value(), 3 * 4096);
  EXPECT_EQ(ctx->lseek(fd.get(), 0, SEEK_SET).value(), 0);
  EXPECT_EQ(ctx->lseek(fd.get(), 0, SEEK_CUR).code(), EINVAL);
  EXPECT_EQ(ctx->lseek(fd.get(), 4096, SEEK_SET).code(), EINVAL);
  EXPECT_EQ(ctx->lseek(fd.get(), -1, SEEK_END).code(), EINVAL);
  EXPECT_EQ(ctx->lseek(fd.get(), 0, SEEK_DATA).code(), EINVAL);
  ASSERT_TRUE(ctx->lseek(fd.get(), 0, SEEK_END).ok());
  EXPECT_NE(ctx->fdinfo(fd.get()).value().find("pos:\t0\n"), std::string::npos);
}

TEST_F(BufferFile, FstatGivesTheBufferSize) {
  UniqueFd fd = installSystemBuffer(*ctx, 5000);  // page-rounded by the heap
  auto st = ctx->fstat(fd.get());
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->size, 8192U);
  EXPECT_EQ(st->inode, sys::fstat(fd.get())->inode);
}

TEST_F(BufferFile, FdinfoShowsTheKernelsLines) {
  UniqueFd fd = installSystemBuffer(*ctx, 8192);
  auto info = ctx->fdinfo(fd.get());
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->rfind("pos:\t0\nflags:\t02000002\n", 0), 0U) << *info;
  EXPECT_NE(info->find("\nsize:\t8192\n"), std::string::npos) << *info;
  EXPECT_NE(info->find("\ncount:\t1\n"), std::string::npos) << *info;
  EXPECT_NE(info->find("\nexp_name:\tsystem\n"), std::string::npos) << *info;
  EXPECT_EQ(info->find("\nname:"), std::string::npos) << "never named: no name line";
  ASSERT_TRUE(setName(fd.get(), "cam0").ok());
  info = ctx->fdinfo(fd.get());
  ASSERT_TRUE(info.ok());
  EXPECT_NE(info->find("\nname:\tcam0\n"), std::string::npos) << *info;
  ASSERT_TRUE(setName(fd.get(), "").ok());
  EXPECT_NE(ctx->fdinfo(fd.get()).value().find("\nname:\t\n"), std::string::npos);
}

TEST_F(BufferFile, FdinfoCountsOpenDescriptionsAndShowsEachOnesFlags) {
  UniqueFd rw = installSystemBuffer(*ctx);
  auto ro = ctx->installBuffer(ctx->bufferFromFd(rw.get()).value(), O_RDONLY);
  ASSERT_TRUE(ro.ok());
  auto info = ctx->fdinfo(ro->get());
  ASSERT_TRUE(info.ok());
  EXPECT_NE(info->find("flags:\t00\n"), std::string::npos) << *info;  // O_RDONLY, no CLOEXEC
  EXPECT_NE(info->find("\ncount:\t2\n"), std::string::npos) << *info;
}

TEST_F(BufferFile, TheLinkNameIsDmabufColonName) {
  UniqueFd fd = installSystemBuffer(*ctx);
  EXPECT_EQ(ctx->fdPath(fd.get()).value(), "/dmabuf:");
  ASSERT_TRUE(setName(fd.get(), "frames").ok());
  EXPECT_EQ(ctx->fdPath(fd.get()).value(), "/dmabuf:frames");
  auto dup = sys::dup(fd.get());
  ASSERT_TRUE(dup.ok());
  EXPECT_EQ(ctx->fdPath(dup->get()).value(), "/dmabuf:frames");
}

TEST_F(BufferFile, AReadOnlyFdRefusesAWritableSharedMapping) {
  UniqueFd fd = installSystemBuffer(*ctx, 4096, O_RDONLY | O_CLOEXEC);
  EXPECT_EQ(ctx->mmap(fd.get(), 4096, PROT_READ | PROT_WRITE, MAP_SHARED).code(), EACCES);
  EXPECT_EQ(ctx->mmap(fd.get(), 4096, PROT_WRITE, MAP_SHARED).code(), EACCES);
  auto map = ctx->mmap(fd.get(), 4096, PROT_READ, MAP_SHARED);
  ASSERT_TRUE(map.ok()) << map.error().describe();
  // A private writable mapping of a read-only fd is allowed (mmap(2)'s rule; the system heap
  // maps privately, copy-on-write, as on 6.12), and its writes stay in it.
  auto priv = ctx->mmap(fd.get(), 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE);
  ASSERT_TRUE(priv.ok()) << priv.error().describe();
  std::memset(priv->data(), 0x77, 16);
  EXPECT_EQ(map->data()[0], std::byte{0});
}

TEST_F(BufferFile, APlainReadOnlyMappingOfItsFdCannotBeMadeWritable) {
  UniqueFd fd = installSystemBuffer(*ctx, 4096, O_RDONLY | O_CLOEXEC);
  // mmap(2) and mprotect(2) themselves: the fd is a real read-only description, so the kernel
  // refuses a writable shared mapping of it, now or later.
  EXPECT_EQ(sys::mmap(4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0).code(), EACCES);
  auto map = sys::mmap(4096, PROT_READ, MAP_SHARED, fd.get(), 0);
  ASSERT_TRUE(map.ok());
  ASSERT_NE(::mprotect(map->data(), 4096, PROT_READ | PROT_WRITE), 0);
  EXPECT_EQ(errno, EACCES);
}

TEST_F(BufferFile, AWriteOnlyFdCannotBeMapped) {
  UniqueFd fd = installSystemBuffer(*ctx, 4096, O_WRONLY | O_CLOEXEC);
  EXPECT_EQ(ctx->mmap(fd.get(), 4096, PROT_WRITE, MAP_SHARED).code(), EACCES);
  EXPECT_EQ(ctx->mmap(fd.get(), 4096, PROT_READ, MAP_SHARED).code(), EACCES);
}

TEST_F(BufferFile, ItIsRecognisedByItsOperations) {
  UniqueFd fd = installSystemBuffer(*ctx);
  auto file = ctx->lookup(fd.get());
  ASSERT_TRUE(file.ok());
  ASSERT_NE(*file, nullptr);
  EXPECT_TRUE((*file)->is(dmaBufFileOperations()));
  EXPECT_FALSE((*file)->is(syncFileOperations()));
  EXPECT_EQ((*file)->ops().name(), "dmabuf");
}

// A read-only allocation installed as a read-only dma-buf file: its fd finds the same buffer.
TEST_F(BufferFile, AReadOnlyHeapBufferIsFoundFromItsReadOnlyFd) {
  auto b = SystemHeap::instance()->allocate(4096, O_RDONLY);
  ASSERT_TRUE(b.ok());
  auto fd = ctx->installBuffer(*b, O_RDONLY | O_CLOEXEC);
  ASSERT_TRUE(fd.ok()) << fd.error().describe();
  auto found = ctx->bufferFromFd(fd->get());
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(found->get(), b->get());
}

// A udmabuf installed as a dma-buf file is found from its fd; the memfd it wraps is not it.
TEST_F(BufferFile, AnInstalledUdmabufIsFoundAndItsMemfdIsNot) {
  auto memfd = sys::memfdCreate("udmabuf-test", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  ASSERT_TRUE(memfd.ok());
  ASSERT_TRUE(sys::ftruncate(memfd->get(), 4 * 4096).ok());
  ASSERT_TRUE(sys::addSeals(memfd->get(), F_SEAL_SHRINK).ok());
  Udmabuf u;
  auto b = u.create(memfd->get(), 0, 4096, 2 * 4096);
  ASSERT_TRUE(b.ok()) << b.error().describe();
  auto fd = ctx->installBuffer(*b);
  ASSERT_TRUE(fd.ok()) << fd.error().describe();
  EXPECT_EQ(ctx->bufferFromFd(fd->get()).value(), *b);
  EXPECT_EQ(ctx->bufferFromFd(memfd->get()).code(), EINVAL);
}

}  // namespace
}  // namespace zbuf::uapi
