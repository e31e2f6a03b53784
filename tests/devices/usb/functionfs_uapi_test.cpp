// The FunctionFS uAPI as the emulation uses it (devices/usb/functionfs_uapi.h): the request
// numbers of the endpoint and ep0 files, the DMABUF transfer request's layout, the descriptor
// magics and flags, against include/uapi/linux/usb/functionfs.h (and the system's header where
// it has the names).
#include "zbuf/devices/usb/functionfs_uapi.h"

#include <gtest/gtest.h>

#include <cstddef>

namespace zbuf::usb {
namespace {

TEST(FunctionfsUapi, TheDmabufRequestsAreTheKernels) {
  EXPECT_EQ(kFunctionfsDmabufAttach, 0x40046783UL);    // _IOW('g', 131, int)
  EXPECT_EQ(kFunctionfsDmabufDetach, 0x40046784UL);    // _IOW('g', 132, int)
  EXPECT_EQ(kFunctionfsDmabufTransfer, 0x40106785UL);  // _IOW('g', 133, struct ...)
  EXPECT_EQ(sizeof(DmabufTransferReq), 16U);
  EXPECT_EQ(offsetof(DmabufTransferReq, fd), 0U);
  EXPECT_EQ(offsetof(DmabufTransferReq, flags), 4U);
  EXPECT_EQ(offsetof(DmabufTransferReq, length), 8U);
  EXPECT_EQ(kDmabufTransferMask, 0U);  // no flags defined
}

TEST(FunctionfsUapi, TheOtherRequestsAreTheKernels) {
  EXPECT_EQ(kFunctionfsFifoStatus, 0x6701UL);
  EXPECT_EQ(kFunctionfsFifoFlush, 0x6702UL);
  EXPECT_EQ(kFunctionfsClearHalt, 0x6703UL);
  EXPECT_EQ(kFunctionfsInterfaceRevmap, 0x6780UL);
  EXPECT_EQ(kFunctionfsEndpointRevmap, 0x6781UL);
  EXPECT_EQ(kFunctionfsEndpointDesc, 0x80096782UL);
#ifdef FUNCTIONFS_ENDPOINT_DESC
  EXPECT_EQ(kFunctionfsEndpointDesc, static_cast<unsigned long>(FUNCTIONFS_ENDPOINT_DESC));
  EXPECT_EQ(kFunctionfsClearHalt, static_cast<unsigned long>(FUNCTIONFS_CLEAR_HALT));
#endif
}

TEST(FunctionfsUapi, DescriptorMagicsFlagsAndEventsAreTheKernels) {
  EXPECT_EQ(kFfsDescriptorsMagic, 1U);    // FUNCTIONFS_DESCRIPTORS_MAGIC
  EXPECT_EQ(kFfsStringsMagic, 2U);        // FUNCTIONFS_STRINGS_MAGIC
  EXPECT_EQ(kFfsDescriptorsMagicV2, 3U);  // FUNCTIONFS_DESCRIPTORS_MAGIC_V2
  EXPECT_EQ(kFfsHasFsDesc, 1U);
  EXPECT_EQ(kFfsHasHsDesc, 2U);
  EXPECT_EQ(kFfsHasSsDesc, 4U);
  EXPECT_EQ(kFfsHasMsOsDesc, 8U);
  EXPECT_EQ(kFfsVirtualAddr, 16U);
  EXPECT_EQ(kFfsEventfd, 32U);
  EXPECT_EQ(kFfsAllCtrlRecip, 64U);
  EXPECT_EQ(kFfsConfig0Setup, 128U);
  EXPECT_EQ(sizeof(UsbCtrlRequest), 8U);
  EXPECT_EQ(sizeof(UsbFunctionfsEvent), 12U);
  EXPECT_EQ(sizeof(UsbEndpointDescriptor), 9U);  // with bRefresh and bSynchAddress
  EXPECT_EQ(kUsbDtEndpoint, 5U);
  EXPECT_EQ(kUsbEndpointDirIn, 0x80U);
}

}  // namespace
}  // namespace zbuf::usb
