// The backends (uapi/backend.h): names, what the running kernel has, the kernel backend's
// refusal naming the missing piece, auto's choice of provider. Where the kernel has the heaps
// (the lane's VM), tests/lane checks that auto's buffers are the kernel's.
#include "zbuf/uapi/backend.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "zbuf/uapi/abi.h"
#include "zbuf/uapi/kernel_calls.h"

namespace zbuf::uapi {
namespace {

bool exists(const char* path) {
  return ::access(path, F_OK) == 0;
}

TEST(Backend, NamesRoundTrip) {
  for (const Backend b : {Backend::Emulated, Backend::Kernel, Backend::Auto}) {
    EXPECT_EQ(parseBackend(backendName(b)).value(), b);
  }
  auto bad = parseBackend("real");
  ASSERT_EQ(bad.code(), EINVAL);
  EXPECT_NE(bad.error().describe().find("emulated, kernel or auto"), std::string::npos);
  EXPECT_EQ(parseBackend("").code(), EINVAL);
  EXPECT_EQ(parseBackend("Kernel").code(), EINVAL);
}

TEST(Backend, ProbeReadsTheRunningKernel) {
  const KernelPieces pieces = probeKernel();
  EXPECT_EQ(pieces.udmabuf, exists("/dev/udmabuf"));
  EXPECT_EQ(pieces.swSync, exists("/sys/kernel/debug/sync/sw_sync"));
  for (const auto& heap : pieces.heaps) {
    EXPECT_TRUE(exists(("/dev/dma_heap/" + heap).c_str())) << heap;
  }
  EXPECT_TRUE(std::is_sorted(pieces.heaps.begin(), pieces.heaps.end()));
  EXPECT_EQ(pieces.heaps.empty(), !std::filesystem::exists("/dev/dma_heap") ||
                                      std::filesystem::is_empty("/dev/dma_heap"));
  for (const auto& dev : pieces.iio) {
    EXPECT_TRUE(dev.starts_with("iio:device")) << dev;
  }
}

TEST(Backend, KernelPaths) {
  EXPECT_TRUE(isKernelPath("/dev/dma_heap/system"));
  EXPECT_TRUE(isKernelPath("/dev/udmabuf"));
  EXPECT_TRUE(isKernelPath("/sys/kernel/debug/sync/sw_sync"));
  EXPECT_FALSE(isKernelPath("/dev/dma_heap/"));
  EXPECT_FALSE(isKernelPath("/dev/iio:device0"));  // only the emulation has an IIO DMABUF device
  EXPECT_FALSE(isKernelPath("/dev/null"));
}

TEST(Backend, TheKernelBackendNamesWhatIsMissing) {
  auto r = requireKernelPath("/dev/dma_heap/zbuf-no-such-heap");
  ASSERT_EQ(r.code(), ENODEV);
  EXPECT_NE(r.error().describe().find("/dev/dma_heap/zbuf-no-such-heap"), std::string::npos);
  EXPECT_NE(r.error().describe().find("dma-heap"), std::string::npos);
  EXPECT_TRUE(requireKernelPath("/dev/null").ok());
  const std::vector<std::string> needed{"/dev/null", "/dev/zbuf-no-such-node"};
  auto k = openBackend(Backend::Kernel, Context::create(), needed);
  ASSERT_EQ(k.code(), ENODEV);
  EXPECT_NE(k.error().describe().find("/dev/zbuf-no-such-node"), std::string::npos);
  if (!exists("/dev/dma_heap/system")) {
    auto heap = requireKernelPath("/dev/dma_heap/system");
    ASSERT_EQ(heap.code(), ENODEV);
    EXPECT_NE(heap.error().describe().find("CONFIG_DMABUF_HEAPS_SYSTEM"), std::string::npos);
  }
  if (!exists("/dev/udmabuf")) {
    EXPECT_NE(requireKernelPath("/dev/udmabuf").error().describe().find("CONFIG_UDMABUF"),
              std::string::npos);
  }
}

TEST(Backend, OpenBackendGivesEachImplementation) {
  auto ctx = Context::create();
  auto emulated = openBackend(Backend::Emulated, ctx);
  ASSERT_TRUE(emulated.ok());
  EXPECT_EQ(emulated->get(), ctx.get());
  auto kernel = openBackend(Backend::Kernel, ctx);
  ASSERT_TRUE(kernel.ok());
  EXPECT_NE(dynamic_cast<KernelCalls*>(kernel->get()), nullptr);
  auto autoCalls = openBackend(Backend::Auto, ctx);
  ASSERT_TRUE(autoCalls.ok());
  auto* a = dynamic_cast<AutoCalls*>(autoCalls->get());
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(&a->context(), ctx.get());
}

TEST(Backend, AutoTakesTheEmulationWhereTheKernelHasNoNode) {
  auto ctx = Context::create();
  AutoCalls calls(ctx);
  // A heap name the kernel has no node for, which the emulation has neither: the emulation's
  // ENOENT.
  EXPECT_EQ(calls.open("/dev/dma_heap/zbuf-no-such-heap", O_RDONLY).code(), ENOENT);
  // The emulation's hugepage heap is no real kernel's: auto opens the emulated one.
  auto huge = calls.open("/dev/dma_heap/hugepage", O_RDONLY);
  ASSERT_TRUE(huge.ok()) << huge.error().describe();
  EXPECT_NE(ctx->lookup(huge->get()).value(), nullptr);
  // Whichever provider the system heap comes from, the buffer works through the same calls.
  auto heap = calls.open("/dev/dma_heap/system", O_RDONLY);
  ASSERT_TRUE(heap.ok());
  const bool real = ctx->lookup(heap->get()).value() == nullptr;
  EXPECT_EQ(real, exists("/dev/dma_heap/system"));
  DmaHeapAllocationData data{};
  data.len = 4096;
  data.fdFlags = O_RDWR | O_CLOEXEC;
  ASSERT_TRUE(calls.ioctl(heap->get(), kDmaHeapIoctlAlloc, &data).ok());
  EXPECT_EQ(calls.lseek(static_cast<int>(data.fd), 0, SEEK_END).value(), 4096);
  const std::string info = calls.fdinfo(static_cast<int>(data.fd)).value();
  EXPECT_NE(info.find("exp_name:\tsystem"), std::string::npos) << info;
  EXPECT_TRUE(calls.fdPath(static_cast<int>(data.fd)).value().starts_with("/dmabuf:"));
  EXPECT_TRUE(calls.close(static_cast<int>(data.fd)).ok());
  // Foreign fds go to the kernel through the emulated context.
  auto null = calls.open("/dev/null", O_RDONLY);
  EXPECT_EQ(null.code(), ENOENT);  // not a node of either: the emulation answers for the path
}

}  // namespace
}  // namespace zbuf::uapi
