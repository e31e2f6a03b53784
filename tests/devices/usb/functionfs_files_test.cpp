// The FunctionFS function as files of a context (devices/usb/functionfs_files.h): the mount and
// its paths (EBUSY, EEXIST), the files' defaults (no llseek, no mmap, the default poll), and the
// kinds of the files recognised by their operations.
#include "zbuf/devices/usb/functionfs_files.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/mman.h>

#include "ffs_rig.h"

namespace zbuf::usb {
namespace {

using testing::Rig;

TEST(FunctionFs, MountHasEp0AndTheBuiltInEndpointsAndNoMore) {
  Rig rig({.configure = false});
  EXPECT_EQ(rig.function->dataEndpoints(), 2U);
  EXPECT_TRUE(rig.open("ep0").ok());
  EXPECT_TRUE(rig.open("ep1").ok());
  EXPECT_TRUE(rig.open("ep2").ok());
  EXPECT_EQ(rig.open("ep3").code(), ENOENT);
  EXPECT_EQ(rig.ctx->open("/dev/usb-ffs/other/ep0", O_RDWR).code(), ENOENT);
  auto fd = rig.mustOpen("ep1");
  EXPECT_EQ(rig.ctx->fdPath(fd.get()).value(), "/dev/usb-ffs/test/ep1");
  EXPECT_EQ(rig.ctx->lseek(fd.get(), 0, SEEK_SET).code(), ESPIPE);
}

TEST(FunctionFs, MountingTwiceIsEbusyAndATakenPathEexist) {
  Rig rig;
  EXPECT_EQ(mountFunctionFs(*rig.ctx, rig.function, "/dev/usb-ffs/again").code(), EBUSY);
  auto other = FunctionFs::create();
  EXPECT_EQ(mountFunctionFs(*rig.ctx, other, rig.mount).code(), EEXIST);
}

TEST(FunctionFs, EndpointFilesHaveNoMmapAndPollAsDefault) {
  Rig rig;
  auto in = rig.mustOpen("ep1");
  EXPECT_EQ(rig.ctx->mmap(in.get(), 4096, PROT_READ, MAP_SHARED).code(), ENODEV);
  struct pollfd p {
    in.get(), POLLIN | POLLOUT, 0
  };
  EXPECT_EQ(rig.ctx->poll({&p, 1}, 0).value(), 1);
  EXPECT_EQ(p.revents, POLLIN | POLLOUT);
}

TEST(FunctionFsFiles, TheFilesAreRecognisedByTheirOperations) {
  Rig rig;
  auto ep0 = rig.mustOpen("ep0");
  auto ep1 = rig.mustOpen("ep1");
  auto a = rig.ctx->lookup(ep0.get());
  auto b = rig.ctx->lookup(ep1.get());
  ASSERT_TRUE(a.ok() && *a && b.ok() && *b);
  EXPECT_TRUE((*a)->is(ep0FileOperations()));
  EXPECT_FALSE((*a)->is(endpointFileOperations()));
  EXPECT_TRUE((*b)->is(endpointFileOperations()));
  EXPECT_FALSE((*b)->is(ep0FileOperations()));
  EXPECT_NE(&ep0FileOperations(), &endpointFileOperations());
}

TEST(FunctionFsFiles, Ep0HasNoLlseekAndNoMmap) {
  Rig rig;
  auto ep0 = rig.mustOpen("ep0");
  EXPECT_EQ(rig.ctx->lseek(ep0.get(), 0, SEEK_SET).code(), ESPIPE);
  EXPECT_EQ(rig.ctx->mmap(ep0.get(), 4096, PROT_READ, MAP_SHARED).code(), ENODEV);
}

}  // namespace
}  // namespace zbuf::usb
