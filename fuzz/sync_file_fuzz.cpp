// Target sync_file: the sync file's ioctls (MERGE, FILE_INFO with and without the fence array,
// SET_DEADLINE, any other number) and poll, on sync files of pending, signalled and failed
// fences and on their merges.
#include <array>
#include <cstring>

#include "common_ops.h"

namespace zbuf::fuzz {
namespace {

using namespace zbuf::uapi;

void checkInfo(Session& s, const IoctlCall& call, std::uint32_t askedFences) {
  const auto& infos = s.fenceInfos();
  SyncFileInfo info{};
  std::memcpy(&info, call.arg, sizeof info);
  if (info.flags != 0 || info.pad != 0) {
    fail("SYNC_IOC_FILE_INFO with flags/pad {:#x}/{:#x} succeeded; the kernel says EINVAL",
         info.flags, info.pad);
  }
  if (::strnlen(info.name, sizeof info.name) == sizeof info.name) {
    fail("SYNC_IOC_FILE_INFO: the name is not NUL-terminated");
  }
  if (info.status > 1) {
    fail("SYNC_IOC_FILE_INFO: status {}", info.status);
  }
  if (info.numFences == 0) {
    fail("SYNC_IOC_FILE_INFO: a sync file with no fence");
  }
  if (askedFences == 0) {
    return;
  }
  if (info.numFences > askedFences) {
    fail("SYNC_IOC_FILE_INFO filled {} fences into room for {}", info.numFences, askedFences);
  }
  bool allOk = true;
  for (std::uint32_t i = 0; i < info.numFences; ++i) {
    const SyncFenceInfo& f = infos[i];
    allOk = allOk && f.status == 1;
    if (f.flags != 0 || f.status > 1 || (f.status == 0) != (f.timestampNs == 0)) {
      fail("SYNC_IOC_FILE_INFO fence {}: status {} flags {} timestamp {}", i, f.status, f.flags,
           f.timestampNs);
    }
  }
  if ((info.status == 1) != allOk) {
    fail("SYNC_IOC_FILE_INFO: overall status {} but the fences {} all signalled OK", info.status,
         allOk ? "have" : "have not");
  }
}

void check(Session& s, const IoctlCall& call, const Result<long>& r) {
  if (call.target.kind != Kind::SyncFile || !r.ok() || call.arg == nullptr) {
    return;
  }
  if (call.cmd == kSyncIocMerge) {
    SyncMergeData m{};
    std::memcpy(&m, call.arg, sizeof m);
    if (m.flags != 0 || m.pad != 0) {
      fail("SYNC_IOC_MERGE with flags/pad {:#x}/{:#x} succeeded; the kernel says EINVAL", m.flags,
           m.pad);
    }
    auto a = s.ctx().syncFileFence(call.target.fd);
    auto b = s.ctx().syncFileFence(m.fd2);
    if (!b.ok()) {
      fail("SYNC_IOC_MERGE with fd2 {} (no sync file) succeeded; the kernel says ENOENT", m.fd2);
    }
    expectReturnedFd(s, m.fence, Kind::SyncFile, true, "SYNC_IOC_MERGE");
    auto merged = s.ctx().syncFileFence(m.fence);
    if (a.ok() && (*a)->isSignaledFlag() && (*b)->isSignaledFlag() && !(*merged)->isSignaled()) {
      fail("SYNC_IOC_MERGE of two signalled fences is pending");
    }
  } else if (call.cmd == kSyncIocSetDeadline) {
    SyncSetDeadline d{};
    std::memcpy(&d, call.arg, sizeof d);
    if (d.pad != 0) {
      fail("SYNC_IOC_SET_DEADLINE with pad {:#x} succeeded; the kernel says EINVAL", d.pad);
    }
  }
}

Rules rules() {
  Rules r;
  r.requests = {{kSyncIocMerge, sizeof(SyncMergeData)},
                {kSyncIocFileInfo, sizeof(SyncFileInfo)},
                {kSyncIocSetDeadline, sizeof(SyncSetDeadline)},
                {kDmaBufIoctlExportSyncFile, sizeof(DmaBufExportSyncFile)}};
  r.ioctlErrnos = kernelIoctlErrnos;
  r.rwErrnos = kernelRwErrnos;
  r.returnedFd = kernelReturnedFd;
  r.ioctlCheck = [](Session& s, const IoctlCall& call, const Result<long>& res) {
    check(s, call, res);
  };
  r.fixUp = [](Session& s, IoctlCall& call, Input& in) {
    if (call.cmd == kSyncIocMerge) {
      setFdField(s, call, 32, in);
    }
  };
  r.extraOps = 3;
  r.extra = [](Session& s, std::uint8_t op, Input& in) {
    if (op == 0) {
      newSyncFile(s, in);
    } else if (op == 1) {
      signalOne(s, in);
    } else {
      newForeign(s, in);
    }
  };
  return r;
}

}  // namespace
}  // namespace zbuf::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace zbuf::fuzz;
  using namespace zbuf::uapi;
  static std::uint32_t asked = 0;
  Rules r = rules();
  auto base = r.ioctlCheck;
  // FILE_INFO's check needs the num_fences asked for, which the call overwrites.
  r.before = [](Session& s, IoctlCall& call) {
    if (call.cmd == kSyncIocFileInfo && call.arg != nullptr) {
      std::memcpy(&asked, call.arg + 40, sizeof asked);
      s.fenceInfos().fill(SyncFenceInfo{});
    }
    return true;
  };
  r.ioctlCheck = [base](Session& s, const IoctlCall& call, const zbuf::Result<long>& res) {
    base(s, call, res);
    if (call.target.kind == Kind::SyncFile && call.cmd == kSyncIocFileInfo && res.ok() &&
        call.arg != nullptr) {
      checkInfo(s, call, asked);
    }
  };
  Session s(std::move(r));
  Input in(data, size);
  Input setup(data, size);
  newSyncFile(s, setup);
  newSyncFile(s, setup);
  s.run(in);
  s.finish();
  return 0;
}
