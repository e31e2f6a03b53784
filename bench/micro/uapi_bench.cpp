// uAPI costs: a SYNC START/END pair on a buffer fd, and EXPORT_SYNC_FILE with 0, 1 and 4
// pending fences (the sync file is closed through the uAPI in the same iteration, so the
// figure is create + close). Results and the command line: docs/uapi.md.
#include <benchmark/benchmark.h>
#include <fcntl.h>

#include <memory>
#include <vector>

#include "zbuf/core/fence.h"
#include "zbuf/core/resv.h"
#include "zbuf/uapi/calls.h"
#include "zbuf/uapi/dma_buf.h"
#include "zbuf/uapi/heap.h"

namespace zbuf {
namespace {

struct Fixture {
  UniqueFd fd;
  BufferPtr buffer;
  std::vector<std::shared_ptr<TimelineFence>> fences;

  explicit Fixture(int pendingReaders) {
    fd = std::move(*uapi::allocate("system", 4096));
    buffer = *uapi::Context::current().bufferFromFd(fd.get());
    Resv& resv = buffer->resv();
    (void)resv.lock();
    if (pendingReaders > 0) {
      (void)resv.reserveFencesLocked(static_cast<unsigned>(pendingReaders));
    }
    for (int i = 0; i < pendingReaders; ++i) {
      fences.push_back(Timeline::create("bench", "reader")->createFence());
      resv.addFenceLocked(fences.back(), ResvUsage::Read);
    }
    resv.unlock();
  }
  ~Fixture() {
    for (auto& f : fences) {
      f->signal();
    }
  }
};

void BM_SyncStartEnd(benchmark::State& state) {
  Fixture f(0);
  uapi::DmaBufSync start{uapi::kDmaBufSyncStart | uapi::kDmaBufSyncRw};
  uapi::DmaBufSync end{uapi::kDmaBufSyncEnd | uapi::kDmaBufSyncRw};
  for (auto _ : state) {
    auto a = uapi::ioctl(f.fd.get(), uapi::kDmaBufIoctlSync, &start);
    auto b = uapi::ioctl(f.fd.get(), uapi::kDmaBufIoctlSync, &end);
    benchmark::DoNotOptimize(a.ok() && b.ok());
  }
}
BENCHMARK(BM_SyncStartEnd);

// START|READ with a pending reader: the wait is skipped (readers do not block reads).
void BM_SyncStartEndWithReader(benchmark::State& state) {
  Fixture f(1);
  for (auto _ : state) {
    auto a = uapi::sync(f.fd.get(), uapi::kDmaBufSyncStart | uapi::kDmaBufSyncRead);
    auto b = uapi::sync(f.fd.get(), uapi::kDmaBufSyncEnd | uapi::kDmaBufSyncRead);
    benchmark::DoNotOptimize(a.ok() && b.ok());
  }
}
BENCHMARK(BM_SyncStartEndWithReader);

void BM_ExportSyncFile(benchmark::State& state) {
  Fixture f(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    uapi::DmaBufExportSyncFile arg{static_cast<std::uint32_t>(uapi::kDmaBufSyncWrite), -1};
    auto r = uapi::ioctl(f.fd.get(), uapi::kDmaBufIoctlExportSyncFile, &arg);
    benchmark::DoNotOptimize(r.ok());
    (void)uapi::close(arg.fd);
  }
}
BENCHMARK(BM_ExportSyncFile)->Arg(0)->Arg(1)->Arg(4);

}  // namespace
}  // namespace zbuf
