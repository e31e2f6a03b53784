#include "zbuf/ipc/ioctl_layout.h"

#include <gtest/gtest.h>
#include <sys/ioctl.h>

#include <cstddef>
#include <cstdint>

#include "zbuf/uapi/abi.h"

namespace zbuf::ipc {
namespace {

using uapi::iocNumber;
using uapi::kIocRead;
using uapi::kIocWrite;

// A request no table knows: zbuf's own 'Z' type, an unused number.
constexpr unsigned long unknown(unsigned long dir, unsigned long size) {
  return iocNumber(dir, 'Z', 0xEE, size);
}

TEST(IoctlLayout, DmaHeapAllocReturnsItsFdInTheStruct) {
  const IoctlLayout l = layoutOf(uapi::kDmaHeapIoctlAlloc);
  EXPECT_EQ(l.kind, ArgKind::Struct);
  EXPECT_EQ(l.size, sizeof(uapi::DmaHeapAllocationData));
  EXPECT_TRUE(l.copyIn);
  EXPECT_TRUE(l.copyOut);
  EXPECT_FALSE(l.returnsFd);
  ASSERT_EQ(l.fdCount, 1U);
  EXPECT_EQ(l.fds[0].offset, offsetof(uapi::DmaHeapAllocationData, fd));
  EXPECT_EQ(l.fds[0].direction, FdDirection::Out);
}

TEST(IoctlLayout, SyncMergeTakesOneFdAndGivesOne) {
  const IoctlLayout l = layoutOf(uapi::kSyncIocMerge);
  EXPECT_EQ(l.kind, ArgKind::Struct);
  EXPECT_EQ(l.size, sizeof(uapi::SyncMergeData));
  EXPECT_TRUE(l.copyIn);
  EXPECT_TRUE(l.copyOut);
  ASSERT_EQ(l.fdCount, 2U);
  EXPECT_EQ(l.fds[0].offset, offsetof(uapi::SyncMergeData, fd2));
  EXPECT_EQ(l.fds[0].direction, FdDirection::In);
  EXPECT_EQ(l.fds[1].offset, offsetof(uapi::SyncMergeData, fence));
  EXPECT_EQ(l.fds[1].direction, FdDirection::Out);
}

TEST(IoctlLayout, ImportAndExportSyncFileDifferInTheFdsDirection) {
  const IoctlLayout in = layoutOf(uapi::kDmaBufIoctlImportSyncFile);
  ASSERT_EQ(in.fdCount, 1U);
  EXPECT_EQ(in.fds[0].offset, offsetof(uapi::DmaBufImportSyncFile, fd));
  EXPECT_EQ(in.fds[0].direction, FdDirection::In);
  EXPECT_TRUE(in.copyIn);
  EXPECT_FALSE(in.copyOut);
  const IoctlLayout out = layoutOf(uapi::kDmaBufIoctlExportSyncFile);
  ASSERT_EQ(out.fdCount, 1U);
  EXPECT_EQ(out.fds[0].offset, offsetof(uapi::DmaBufExportSyncFile, fd));
  EXPECT_EQ(out.fds[0].direction, FdDirection::Out);
  EXPECT_TRUE(out.copyOut);
}

TEST(IoctlLayout, UdmabufCreateSendsAMemfdAndReturnsAnFd) {
  const IoctlLayout l = layoutOf(uapi::kUdmabufCreate);
  EXPECT_EQ(l.kind, ArgKind::Struct);
  EXPECT_EQ(l.size, sizeof(uapi::UdmabufCreate));
  EXPECT_TRUE(l.returnsFd);
  EXPECT_TRUE(l.copyIn);
  EXPECT_FALSE(l.copyOut);
  ASSERT_EQ(l.fdCount, 1U);
  EXPECT_EQ(l.fds[0].offset, offsetof(uapi::UdmabufCreate, memfd));
  EXPECT_EQ(l.fds[0].direction, FdDirection::In);
}

TEST(IoctlLayout, UdmabufCreateListIsItsHeaderAndReturnsAnFd) {
  const IoctlLayout l = layoutOf(uapi::kUdmabufCreateList);
  EXPECT_EQ(l.kind, ArgKind::UdmabufList);
  EXPECT_EQ(l.size, sizeof(uapi::UdmabufCreateList));
  EXPECT_TRUE(l.returnsFd);
  EXPECT_EQ(l.fdCount, 0U) << "the items' memfds are laid out by count, not as fields";
}

TEST(IoctlLayout, SetNameIsAStringInEitherSpelling) {
  for (const unsigned long request :
       {uapi::kDmaBufSetNameA, uapi::kDmaBufSetNameB, uapi::kDmaBufSetName}) {
    const IoctlLayout l = layoutOf(request);
    EXPECT_EQ(l.kind, ArgKind::String) << std::hex << request;
    EXPECT_TRUE(l.copyIn);
    EXPECT_FALSE(l.copyOut);
    EXPECT_EQ(l.fdCount, 0U);
  }
}

TEST(IoctlLayout, SyncFileInfoHasItsOwnKind) {
  const IoctlLayout l = layoutOf(uapi::kSyncIocFileInfo);
  EXPECT_EQ(l.kind, ArgKind::SyncFileInfo);
  EXPECT_EQ(l.size, sizeof(uapi::SyncFileInfo));
  EXPECT_TRUE(l.copyIn);
  EXPECT_TRUE(l.copyOut);
}

TEST(IoctlLayout, PerFdRequestsStayLocal) {
  for (const unsigned long request :
       {static_cast<unsigned long>(FIONBIO), static_cast<unsigned long>(FIOASYNC),
        static_cast<unsigned long>(FIOCLEX), static_cast<unsigned long>(FIONCLEX)}) {
    EXPECT_EQ(layoutOf(request).kind, ArgKind::Local) << std::hex << request;
  }
}

TEST(IoctlLayout, AnUnknownRequestIsLaidOutFromItsEncoding) {
  const IoctlLayout rw = layoutOf(unknown(kIocRead | kIocWrite, 40));
  EXPECT_EQ(rw.kind, ArgKind::Struct);
  EXPECT_EQ(rw.size, 40U);
  EXPECT_TRUE(rw.copyIn);
  EXPECT_TRUE(rw.copyOut);
  EXPECT_EQ(rw.fdCount, 0U);
  EXPECT_FALSE(rw.returnsFd);

  const IoctlLayout w = layoutOf(unknown(kIocWrite, 12));  // _IOW: the driver reads it
  EXPECT_EQ(w.kind, ArgKind::Struct);
  EXPECT_EQ(w.size, 12U);
  EXPECT_TRUE(w.copyIn);
  EXPECT_FALSE(w.copyOut);

  const IoctlLayout r = layoutOf(unknown(kIocRead, 8));  // _IOR: the driver writes it
  EXPECT_EQ(r.kind, ArgKind::Struct);
  EXPECT_EQ(r.size, 8U);
  EXPECT_FALSE(r.copyIn);
  EXPECT_TRUE(r.copyOut);

  // The largest size the 14-bit field holds.
  EXPECT_EQ(layoutOf(unknown(kIocRead, (1U << 14) - 1)).size, (1U << 14) - 1);
}

TEST(IoctlLayout, ARequestWithoutAnEncodedSizeTakesItsArgumentByValue) {
  const IoctlLayout io = layoutOf(unknown(0, 0));  // _IO
  EXPECT_EQ(io.kind, ArgKind::Value);
  EXPECT_EQ(io.size, 0U);
  EXPECT_FALSE(io.copyIn);
  EXPECT_FALSE(io.copyOut);
  EXPECT_EQ(layoutOf(uapi::kFunctionfsFifoFlush).kind, ArgKind::Value);
  // A direction but no size, and a size but no direction: by value as well.
  EXPECT_EQ(layoutOf(unknown(kIocRead | kIocWrite, 0)).kind, ArgKind::Value);
  EXPECT_EQ(layoutOf(unknown(0, 16)).kind, ArgKind::Value);
  // A legacy number with no _IOC encoding (TCGETS).
  EXPECT_EQ(layoutOf(0x5401).kind, ArgKind::Value);
}

TEST(IoctlLayout, TheRequestIsCutTo32Bits) {
  const unsigned long high = 0xFFFFFFFFUL << 32;
  const IoctlLayout known = layoutOf(high | uapi::kDmaHeapIoctlAlloc);
  EXPECT_EQ(known.kind, ArgKind::Struct);
  EXPECT_EQ(known.size, sizeof(uapi::DmaHeapAllocationData));
  EXPECT_EQ(known.fdCount, 1U);
  EXPECT_EQ(layoutOf(high | uapi::kSyncIocFileInfo).kind, ArgKind::SyncFileInfo);
  EXPECT_EQ(layoutOf(high | unknown(0, 0)).kind, ArgKind::Value);
  EXPECT_EQ(layoutOf(high | unknown(kIocWrite, 24)).size, 24U);
}

}  // namespace
}  // namespace zbuf::ipc
