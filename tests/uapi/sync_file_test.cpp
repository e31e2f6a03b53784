// The sync-file uAPI through zbuf::uapi::ioctl with the kernel's own structs and request
// numbers, and every error path with its errno.
#include "zbuf/uapi/sync_file.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <linux/sync_file.h>
#include <poll.h>
#include <sys/mman.h>

#include <cstring>
#include <vector>

#include "zbuf/base/sys.h"
#include "zbuf/uapi/calls.h"

namespace zbuf::uapi {
namespace {

using namespace std::chrono_literals;

struct Files {
  std::shared_ptr<TimelineFence> a = Timeline::create("drv", "ta")->createFence();
  std::shared_ptr<TimelineFence> b = Timeline::create("drv", "tb")->createFence();
  UniqueFd fa = *Context::current().installSyncFile(a);
  UniqueFd fb = *Context::current().installSyncFile(b);
  ~Files() {
    a->signal();
    b->signal();
  }
};

TEST(UapiSyncFile, MergeWithKernelStruct) {
  Files f;
  sync_merge_data data{};
  std::strcpy(data.name, "merged");
  data.fd2 = f.fb.get();
  auto r = ioctl(f.fa.get(), SYNC_IOC_MERGE, &data);
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_EQ(*r, 0);
  UniqueFd merged = UniqueFd::adopt(data.fence);
  ASSERT_TRUE(merged.isValid());
  EXPECT_EQ(*sys::getFdFlags(merged.get()) & FD_CLOEXEC, FD_CLOEXEC);
  EXPECT_EQ(syncFileInfo(merged.get())->name, "merged");
}

TEST(UapiSyncFile, MergeFlagsOrPadIsEinval) {
  Files f;
  sync_merge_data data{};
  data.fd2 = f.fb.get();
  data.flags = 1;
  EXPECT_EQ(ioctl(f.fa.get(), SYNC_IOC_MERGE, &data).code(), EINVAL);
  data.flags = 0;
  data.pad = 1;
  EXPECT_EQ(ioctl(f.fa.get(), SYNC_IOC_MERGE, &data).code(), EINVAL);
}

TEST(UapiSyncFile, MergeWithANonSyncFileIsEnoent) {
  Files f;
  auto memfd = sys::memfdCreate("x", MFD_CLOEXEC);
  ASSERT_TRUE(memfd.ok());
  sync_merge_data data{};
  data.fd2 = memfd->get();
  EXPECT_EQ(ioctl(f.fa.get(), SYNC_IOC_MERGE, &data).code(), ENOENT);
  data.fd2 = -1;
  EXPECT_EQ(ioctl(f.fa.get(), SYNC_IOC_MERGE, &data).code(), ENOENT);
}

TEST(UapiSyncFile, MergeNameIsForcedNulTerminated) {
  Files f;
  sync_merge_data data{};
  std::memset(data.name, 'x', sizeof data.name);
  data.fd2 = f.fb.get();
  ASSERT_TRUE(ioctl(f.fa.get(), SYNC_IOC_MERGE, &data).ok());
  UniqueFd merged = UniqueFd::adopt(data.fence);
  EXPECT_EQ(syncFileInfo(merged.get())->name, std::string(31, 'x'));
}

TEST(UapiSyncFile, NullArgumentIsEfault) {
  Files f;
  EXPECT_EQ(ioctl(f.fa.get(), SYNC_IOC_MERGE, nullptr).code(), EFAULT);
  EXPECT_EQ(ioctl(f.fa.get(), SYNC_IOC_FILE_INFO, nullptr).code(), EFAULT);
  EXPECT_EQ(ioctl(f.fa.get(), kSyncIocSetDeadline, nullptr).code(), EFAULT);
}

TEST(UapiSyncFile, FileInfoCountOnlyWithZeroFences) {
  Files f;
  sync_file_info info{};
  ASSERT_TRUE(ioctl(f.fa.get(), SYNC_IOC_FILE_INFO, &info).ok());
  EXPECT_EQ(info.num_fences, 1U);
  EXPECT_EQ(info.status, 0);
  EXPECT_EQ(std::string(info.name), fmt::format("drv-ta{}-{}", f.a->context(), f.a->seqno()));
  f.a->signal();
  info.num_fences = 0;
  ASSERT_TRUE(ioctl(f.fa.get(), SYNC_IOC_FILE_INFO, &info).ok());
  EXPECT_EQ(info.status, 1);
}

TEST(UapiSyncFile, FileInfoFillsEveryLeaf) {
  Files f;
  auto merged = mergeSyncFiles("m", f.fa.get(), f.fb.get());
  ASSERT_TRUE(merged.ok());
  f.a->signalWithTimestamp(777);
  std::vector<sync_fence_info> leaves(3);
  sync_file_info info{};
  info.num_fences = 3;
  info.sync_fence_info = reinterpret_cast<std::uintptr_t>(leaves.data());
  ASSERT_TRUE(ioctl(merged->get(), SYNC_IOC_FILE_INFO, &info).ok());
  EXPECT_EQ(info.num_fences, 2U);
  EXPECT_EQ(info.status, 0);  // b is pending: the first leaf with status <= 0 wins
  EXPECT_STREQ(info.name, "m");
  EXPECT_STREQ(leaves[0].obj_name, "ta");
  EXPECT_STREQ(leaves[0].driver_name, "drv");
  EXPECT_EQ(leaves[0].status, 1);
  EXPECT_EQ(leaves[0].timestamp_ns, 777U);
  EXPECT_EQ(leaves[0].flags, 0U);
  EXPECT_STREQ(leaves[1].obj_name, "tb");
  EXPECT_EQ(leaves[1].status, 0);
  EXPECT_EQ(leaves[1].timestamp_ns, 0U);
}

TEST(UapiSyncFile, FileInfoFlagsOrPadIsEinval) {
  Files f;
  sync_file_info info{};
  info.flags = 1;
  EXPECT_EQ(ioctl(f.fa.get(), SYNC_IOC_FILE_INFO, &info).code(), EINVAL);
  info.flags = 0;
  info.pad = 1;
  EXPECT_EQ(ioctl(f.fa.get(), SYNC_IOC_FILE_INFO, &info).code(), EINVAL);
}

TEST(UapiSyncFile, FileInfoWithTooFewFencesIsEinval) {
  Files f;
  auto merged = mergeSyncFiles("m", f.fa.get(), f.fb.get());
  ASSERT_TRUE(merged.ok());
  sync_fence_info one{};
  sync_file_info info{};
  info.num_fences = 1;
  info.sync_fence_info = reinterpret_cast<std::uintptr_t>(&one);
  EXPECT_EQ(ioctl(merged->get(), SYNC_IOC_FILE_INFO, &info).code(), EINVAL);
}

TEST(UapiSyncFile, FileInfoWithANullArrayIsEfault) {
  Files f;
  sync_file_info info{};
  info.num_fences = 1;
  EXPECT_EQ(ioctl(f.fa.get(), SYNC_IOC_FILE_INFO, &info).code(), EFAULT);
}

TEST(UapiSyncFile, SetDeadlinePadIsEinvalElseAccepted) {
  Files f;
  SyncSetDeadline d{};
  d.deadlineNs = sys::monotonicNs() + 1'000'000;
  EXPECT_TRUE(ioctl(f.fa.get(), kSyncIocSetDeadline, &d).ok());
  d.pad = 1;
  EXPECT_EQ(ioctl(f.fa.get(), kSyncIocSetDeadline, &d).code(), EINVAL);
}

TEST(UapiSyncFile, UnknownOrWrongSizeRequestsAreEnotty) {
  Files f;
  sync_file_info info{};
  // nr 0..2 are intentionally unused; nr 4 with another size is another request.
  EXPECT_EQ(ioctl(f.fa.get(), iocNumber(kIocRead | kIocWrite, '>', 0, 8), &info).code(), ENOTTY);
  EXPECT_EQ(ioctl(f.fa.get(), iocNumber(kIocRead | kIocWrite, '>', 4, 48), &info).code(), ENOTTY);
  EXPECT_EQ(ioctl(f.fa.get(), kDmaBufIoctlSync, &info).code(), ENOTTY);
}

TEST(UapiSyncFile, CallsOnOtherFdsAreEnottyAndOnClosedFdsEbadf) {
  auto memfd = sys::memfdCreate("x", MFD_CLOEXEC);
  ASSERT_TRUE(memfd.ok());
  sync_file_info info{};
  EXPECT_EQ(ioctl(memfd->get(), SYNC_IOC_FILE_INFO, &info).code(), ENOTTY);
  EXPECT_EQ(syncFileInfo(memfd->get(), reinterpret_cast<SyncFileInfo*>(&info)).code(), ENOTTY);
  EXPECT_EQ(syncFileInfo(memfd->get()).code(), ENOTTY);
  EXPECT_EQ(mergeSyncFiles("m", memfd->get(), memfd->get()).code(), ENOTTY);
  SyncSetDeadline d{};
  EXPECT_EQ(syncSetDeadline(memfd->get(), &d).code(), ENOTTY);
  EXPECT_EQ(ioctl(-1, SYNC_IOC_FILE_INFO, &info).code(), EBADF);
}

TEST(UapiSyncFile, ConvenienceInfoListsLeaves) {
  Files f;
  auto info = syncFileInfo(f.fa.get());
  ASSERT_TRUE(info.ok());
  ASSERT_EQ(info->fences.size(), 1U);
  EXPECT_EQ(info->fences[0].objName, "ta");
}

}  // namespace
}  // namespace zbuf::uapi
