// Checked-build implementation of fence signalling sections. The innermost section of each
// thread is kept in a thread_local linked list; reports are produced outside of any section
// state change, and a thread_local guard stops a report's own allocations from re-reporting.
#include "zbuf/core/fence_signalling.h"

#include <execinfo.h>
#include <fmt/format.h>

#include <cstdlib>
#include <mutex>
#include <new>

#include "zbuf/base/log.h"
#include "zbuf/core/fence.h"

namespace zbuf {

const char* toString(SignallingViolation v) noexcept {
  switch (v) {
    case SignallingViolation::Allocation:
      return "heap allocation";
    case SignallingViolation::FenceWait:
      return "fence wait";
    case SignallingViolation::ResvLock:
      return "reservation lock";
  }
  return "?";
}

#if ZBUF_CHECKED

ZBUF_LOG_CATEGORY(Signalling);

namespace {

thread_local FenceSignallingSection* tInnermost = nullptr;
thread_local const Fence* tInnermostFence = nullptr;
thread_local bool tReporting = false;

std::mutex& handlerMutex() {
  static std::mutex m;
  return m;
}
SignallingReportHandler& handler() {
  static SignallingReportHandler h;
  return h;
}

std::string describeFence(const Fence* f) {
  if (f == nullptr) {
    return "(no fence)";
  }
  return fmt::format("{}:{} ctx {} seq {}", f->driverName(), f->timelineName(), f->context(),
                     f->seqno());
}

std::string captureBacktrace() {
  void* frames[32];
  const int n = ::backtrace(frames, 32);
  char** symbols = ::backtrace_symbols(frames, n);
  std::string out;
  if (symbols != nullptr) {
    for (int i = 2; i < n; ++i) {  // skip the capture and report frames
      out += "  ";
      out += symbols[i];
      out += '\n';
    }
    std::free(symbols);  // NOLINT(cppcoreguidelines-no-malloc): backtrace_symbols mallocs
  }
  return out;
}

}  // namespace

FenceSignallingSection::FenceSignallingSection(const Fence* fence) noexcept
    : fence_(fence != nullptr ? fence : tInnermostFence), outer_(tInnermost) {
  tInnermost = this;
  tInnermostFence = fence_;
}

FenceSignallingSection::~FenceSignallingSection() {
  tInnermost = outer_;
  tInnermostFence = outer_ != nullptr ? outer_->fence_ : nullptr;
}

bool FenceSignallingSection::active() noexcept {
  return tInnermost != nullptr;
}

void checkSignallingSection(SignallingViolation violation, std::source_location where) {
  if (tInnermost == nullptr || tReporting) {
    return;
  }
  tReporting = true;
  SignallingReport report{
      violation, describeFence(tInnermostFence),
      fmt::format("{}:{} {}", where.file_name(), where.line(), where.function_name()),
      captureBacktrace()};
  SignallingReportHandler h;
  {
    const std::lock_guard lock(handlerMutex());
    h = handler();
  }
  if (h) {
    h(report);
  } else {
    log(LogSignalling, LogLevel::Error, "{} inside a fence signalling section of {} at {}\n{}",
        toString(report.violation), report.fence, report.location, report.backtrace);
  }
  tReporting = false;
}

SignallingReportHandler setSignallingReportHandler(SignallingReportHandler h) {
  const std::lock_guard lock(handlerMutex());
  return std::exchange(handler(), std::move(h));
}

#endif  // ZBUF_CHECKED

}  // namespace zbuf

#if ZBUF_CHECKED
// Allocation hook: every C++ heap allocation made inside a signalling section is reported.
// (C allocations through malloc() are not hooked; zbuf's own code allocates only with new.)
namespace {
void* checkedAllocate(std::size_t size) {
  zbuf::checkSignallingSection(zbuf::SignallingViolation::Allocation,
                               std::source_location::current());
  void* p = std::malloc(size == 0 ? 1 : size);  // NOLINT(cppcoreguidelines-no-malloc)
  if (p == nullptr) {
    throw std::bad_alloc();
  }
  return p;
}
}  // namespace

void* operator new(std::size_t size) {
  return checkedAllocate(size);
}
void* operator new[](std::size_t size) {
  return checkedAllocate(size);
}
void operator delete(void* p) noexcept {
  std::free(p);
}  // NOLINT(cppcoreguidelines-no-malloc)
void operator delete[](void* p) noexcept {
  std::free(p);
}  // NOLINT(cppcoreguidelines-no-malloc)
void operator delete(void* p, std::size_t /*size*/) noexcept {
  std::free(p);  // NOLINT(cppcoreguidelines-no-malloc)
}
void operator delete[](void* p, std::size_t /*size*/) noexcept {
  std::free(p);  // NOLINT(cppcoreguidelines-no-malloc)
}
#endif
