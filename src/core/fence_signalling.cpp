// Checked-build implementation of fence signalling sections. The innermost section of each
// thread is kept in a thread_local linked list; reports are produced outside of any section
// state change, and a thread_local guard stops a report's own allocations from re-reporting.
#include "zbuf/core/fence_signalling.h"

#include <execinfo.h>
#include <fmt/format.h>

#include <cstdint>
#include <cstdlib>
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

// The report handler and its lock, made on first use.
struct HandlerState {
  Mutex mutex;
  SignallingReportHandler handler ZBUF_GUARDED_BY(mutex);
};
HandlerState& handlerState() {
  static HandlerState s;
  return s;
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

namespace {

// The symbol of a code address, as backtrace_symbols() prints it ("binary(symbol+0x1f) [..]").
std::string describeAddress(void* address) {
  char** symbols = ::backtrace_symbols(&address, 1);
  if (symbols == nullptr) {
    return fmt::format("{}", address);
  }
  std::string out = symbols[0];
  std::free(symbols);  // NOLINT(cppcoreguidelines-no-malloc): backtrace_symbols mallocs
  return out;
}

template <typename Where>
void report(SignallingViolation violation, Where where) {
  if (tInnermost == nullptr || tReporting) {
    return;
  }
  tReporting = true;
  SignallingReport report{violation, describeFence(tInnermostFence), where(), captureBacktrace()};
  SignallingReportHandler h;
  {
    HandlerState& state = handlerState();
    const MutexLocker lock(state.mutex);
    h = state.handler;
  }
  if (h) {
    h(report);
  } else {
    log(LogSignalling, LogLevel::Error, "{} inside a fence signalling section of {} at {}\n{}",
        toString(report.violation), report.fence, report.location, report.backtrace);
  }
  tReporting = false;
}

}  // namespace

void checkSignallingSection(SignallingViolation violation, SourceLocation where) {
  report(violation,
         [&] { return fmt::format("{}:{} {}", where.file, where.line, where.function); });
}

void reportSignallingAllocation(void* caller) {
  report(SignallingViolation::Allocation,
         [&] { return fmt::format("operator new called from {}", describeAddress(caller)); });
}

SignallingReportHandler setSignallingReportHandler(SignallingReportHandler h) {
  HandlerState& state = handlerState();
  const MutexLocker lock(state.mutex);
  return std::exchange(state.handler, std::move(h));
}

#endif  // ZBUF_CHECKED

}  // namespace zbuf

#if ZBUF_CHECKED
// Allocation hook: every C++ heap allocation made inside a signalling section is reported, with
// the caller of operator new as the location. (C allocations through malloc() are not hooked;
// zbuf's own code allocates only with new.) Outside a section the cost is one thread_local load.
//
// Every replaceable form is replaced, together ([new.delete]): plain, array, aligned, nothrow
// and their sized deletes. A form left out would come from the C++ runtime (or from the
// sanitizer's runtime, which tracks operator new separately from malloc), so that a block it
// allocates would reach our free() and be reported as an alloc-dealloc mismatch; and a
// nothrow allocation inside a section would go unreported.
namespace {
// The allocation loop of the standard's operator new: retry through the new-handler; nullptr
// when there is none. A handler that throws std::bad_alloc ends the loop with that exception.
[[gnu::always_inline]] inline void* allocateOrNull(std::size_t size, std::size_t align,
                                                   void* caller) {
  if (zbuf::FenceSignallingSection::active()) {
    zbuf::reportSignallingAllocation(caller);
  }
  std::size_t bytes = size == 0 ? 1 : size;
  if (align != 0) {
    if (bytes > SIZE_MAX - (align - 1)) {
      return nullptr;  // the rounded size would wrap around
    }
    bytes = (bytes + align - 1) / align * align;  // aligned_alloc wants a multiple
  }
  for (;;) {
    void* p = align != 0 ? std::aligned_alloc(align, bytes) : std::malloc(bytes);
    if (p != nullptr) {
      return p;
    }
    const std::new_handler handler = std::get_new_handler();
    if (handler == nullptr) {
      return nullptr;
    }
    handler();
  }
}
[[gnu::always_inline]] inline void* allocate(std::size_t size, std::size_t align, void* caller) {
  void* p = allocateOrNull(size, align, caller);
  if (p == nullptr) {
    throw std::bad_alloc();
  }
  return p;
}
[[gnu::always_inline]] inline void* allocateNothrow(std::size_t size, std::size_t align,
                                                    void* caller) noexcept {
  try {
    return allocateOrNull(size, align, caller);
  } catch (...) {  // a new-handler's std::bad_alloc: nothrow forms return nullptr instead
    return nullptr;
  }
}
}  // namespace

// NOLINTBEGIN(cppcoreguidelines-no-malloc): the replaceable allocation functions
void* operator new(std::size_t size) {
  return allocate(size, 0, __builtin_return_address(0));
}
void* operator new[](std::size_t size) {
  return allocate(size, 0, __builtin_return_address(0));
}
void* operator new(std::size_t size, std::align_val_t al) {
  return allocate(size, static_cast<std::size_t>(al), __builtin_return_address(0));
}
void* operator new[](std::size_t size, std::align_val_t al) {
  return allocate(size, static_cast<std::size_t>(al), __builtin_return_address(0));
}
void* operator new(std::size_t size, const std::nothrow_t& /*tag*/) noexcept {
  return allocateNothrow(size, 0, __builtin_return_address(0));
}
void* operator new[](std::size_t size, const std::nothrow_t& /*tag*/) noexcept {
  return allocateNothrow(size, 0, __builtin_return_address(0));
}
void* operator new(std::size_t size, std::align_val_t al, const std::nothrow_t& /*tag*/) noexcept {
  return allocateNothrow(size, static_cast<std::size_t>(al), __builtin_return_address(0));
}
void* operator new[](std::size_t size, std::align_val_t al,
                     const std::nothrow_t& /*tag*/) noexcept {
  return allocateNothrow(size, static_cast<std::size_t>(al), __builtin_return_address(0));
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete[](void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t /*size*/) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::size_t /*size*/) noexcept {
  std::free(p);
}
void operator delete(void* p, std::align_val_t /*al*/) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::align_val_t /*al*/) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t /*size*/, std::align_val_t /*al*/) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::size_t /*size*/, std::align_val_t /*al*/) noexcept {
  std::free(p);
}
void operator delete(void* p, const std::nothrow_t& /*tag*/) noexcept {
  std::free(p);
}
void operator delete[](void* p, const std::nothrow_t& /*tag*/) noexcept {
  std::free(p);
}
void operator delete(void* p, std::align_val_t /*al*/, const std::nothrow_t& /*tag*/) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::align_val_t /*al*/, const std::nothrow_t& /*tag*/) noexcept {
  std::free(p);
}
// NOLINTEND(cppcoreguidelines-no-malloc)
#endif
