// Target dma_buf: the dma-buf file's ioctls (SYNC, SET_NAME_A/B, EXPORT_SYNC_FILE,
// IMPORT_SYNC_FILE, any other number), read/write, llseek, poll and mmap, on buffers with
// implicit fences a device added and sync files of fences the harness signals.
#include <cstring>
#include <string>

#include "common_ops.h"
#include "zbuf/uapi/dma_buf.h"

namespace zbuf::fuzz {
namespace {

using namespace zbuf::uapi;

void check(Session& s, const IoctlCall& call, const Result<long>& r) {
  if (call.target.kind != Kind::DmaBuf || !r.ok() || call.arg == nullptr) {
    return;
  }
  if (call.cmd == kDmaBufIoctlSync) {
    std::uint64_t flags = 0;
    std::memcpy(&flags, call.arg, sizeof flags);
    if ((flags & ~kDmaBufSyncValidFlagsMask) != 0 || (flags & kDmaBufSyncRw) == 0) {
      fail("DMA_BUF_IOCTL_SYNC with flags {:#x} succeeded; the kernel says EINVAL", flags);
    }
  } else if (call.cmd == kDmaBufSetNameA || call.cmd == kDmaBufSetNameB) {
    const auto* text = reinterpret_cast<const char*>(call.arg);
    const std::size_t len = ::strnlen(text, kDmaBufNameLen);
    if (len == kDmaBufNameLen) {
      fail("DMA_BUF_SET_NAME with no NUL in 32 bytes succeeded; the kernel says EINVAL");
    }
    auto got = uapi::name(call.target.fd);
    if (!got.ok() || *got != std::string(text, len)) {
      fail("DMA_BUF_SET_NAME('{}') succeeded but the name reads back as '{}'",
           std::string(text, len), got.ok() ? *got : std::string("<error>"));
    }
  } else if (call.cmd == kDmaBufIoctlExportSyncFile || call.cmd == kDmaBufIoctlImportSyncFile) {
    std::uint32_t flags = 0;
    std::memcpy(&flags, call.arg, sizeof flags);
    if ((flags & ~kDmaBufSyncRw) != 0 || flags == 0) {
      fail("{:#x} with flags {:#x} succeeded; the kernel says EINVAL", call.cmd, flags);
    }
    if (call.cmd == kDmaBufIoctlExportSyncFile) {
      expectReturnedFd(s, readI32(call.arg + 4), Kind::SyncFile, true,
                       "DMA_BUF_IOCTL_EXPORT_SYNC_FILE");
    } else if (!s.ctx().syncFileFence(readI32(call.arg + 4)).ok()) {
      fail("DMA_BUF_IOCTL_IMPORT_SYNC_FILE of fd {} (no sync file) succeeded",
           readI32(call.arg + 4));
    }
  }
}

Rules rules() {
  Rules r;
  r.requests = {{kDmaBufIoctlSync, sizeof(DmaBufSync)},
                {kDmaBufSetNameA, 32},
                {kDmaBufSetNameB, 32},
                {kDmaBufIoctlExportSyncFile, sizeof(DmaBufExportSyncFile)},
                {kDmaBufIoctlImportSyncFile, sizeof(DmaBufImportSyncFile)},
                {kSyncIocMerge, sizeof(SyncMergeData)}};
  r.ioctlErrnos = kernelIoctlErrnos;
  r.rwErrnos = kernelRwErrnos;
  r.returnedFd = kernelReturnedFd;
  r.ioctlCheck = check;
  r.fixUp = [](Session& s, IoctlCall& call, Input& in) {
    if (call.cmd == kDmaBufIoctlImportSyncFile) {
      setFdField(s, call, 4, in);
    } else if (call.cmd == kSyncIocMerge) {
      setFdField(s, call, 32, in);
    }
  };
  r.before = beforeSync;
  r.extraOps = 5;
  r.extra = [](Session& s, std::uint8_t op, Input& in) {
    switch (op) {
      case 0:
        newBuffer(s, in);
        return;
      case 1:
        newSyncFile(s, in);
        return;
      case 2:
        signalOne(s, in);
        return;
      case 3:
        deviceFence(s, in);
        return;
      default:
        newForeign(s, in);
        return;
    }
  };
  return r;
}

}  // namespace
}  // namespace zbuf::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace zbuf::fuzz;
  Session s(rules());
  Input in(data, size);
  Input setup(data, size);
  newBuffer(s, setup);
  newSyncFile(s, setup);
  s.run(in);
  s.finish();
  return 0;
}
