// uAPI costs: a SYNC START/END pair on a buffer fd, EXPORT_SYNC_FILE with 0, 1 and 4 pending
// fences (the sync file is closed through the uAPI in the same iteration, so the figure is
// create + close), and what one ioctl costs through the file table: the lookup alone (fstat +
// hash), an unknown request on a zbuf file (ENOTTY from the file's operations), an ioctl that
// falls through to the kernel for a foreign fd, with their baselines fstat(2) and ioctl(2).
// Results and the command line: docs/uapi.md.
#include <benchmark/benchmark.h>
#include <fcntl.h>

#include <memory>
#include <vector>

#include "zbuf/base/sys.h"
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

// --- one ioctl through the file table, and its baselines -------------------------------------

// An unknown request on a buffer fd: fstat, the table lookup, the dma-buf file's ioctl and its
// ENOTTY (whose Error carries a formatted message).
void BM_UnknownIoctlEnotty(benchmark::State& state) {
  Fixture f(0);
  std::uint64_t arg = 0;
  const unsigned long request = uapi::iocNumber(uapi::kIocWrite, 'b', 0x7f, 8);
  for (auto _ : state) {
    auto r = uapi::ioctl(f.fd.get(), request, &arg);
    benchmark::DoNotOptimize(r.code());
  }
}
BENCHMARK(BM_UnknownIoctlEnotty);

// The table lookup alone (what every fd-level call does first): fstat + one hash lookup.
void BM_FileLookup(benchmark::State& state) {
  Fixture f(0);
  auto& ctx = uapi::Context::current();
  for (auto _ : state) {
    auto file = ctx.lookup(f.fd.get());
    benchmark::DoNotOptimize(file.ok());
  }
}
BENCHMARK(BM_FileLookup);

// Baseline: fstat(2) on the same fd.
void BM_FstatOnly(benchmark::State& state) {
  Fixture f(0);
  for (auto _ : state) {
    auto st = sys::fstat(f.fd.get());
    benchmark::DoNotOptimize(st.ok());
  }
}
BENCHMARK(BM_FstatOnly);

// A foreign fd (a memfd the context does not own): the lookup misses and the request goes to
// ioctl(2), which says ENOTTY.
void BM_ForeignIoctlFallThrough(benchmark::State& state) {
  auto memfd = sys::memfdCreate("bench-foreign", 0);
  std::uint64_t arg = 0;
  for (auto _ : state) {
    auto r = uapi::ioctl(memfd->get(), uapi::kDmaBufIoctlSync, &arg);
    benchmark::DoNotOptimize(r.code());
  }
}
BENCHMARK(BM_ForeignIoctlFallThrough);

// Baseline: ioctl(2) itself on that memfd (ENOTTY from the kernel).
void BM_RawIoctl(benchmark::State& state) {
  auto memfd = sys::memfdCreate("bench-raw", 0);
  std::uint64_t arg = 0;
  for (auto _ : state) {
    auto r = sys::ioctl(memfd->get(), uapi::kDmaBufIoctlSync, &arg);
    benchmark::DoNotOptimize(r.code());
  }
}
BENCHMARK(BM_RawIoctl);

}  // namespace
}  // namespace zbuf
