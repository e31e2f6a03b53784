// Fence signalling sections: dma_fence_begin_signalling() / dma_fence_end_signalling() as a
// scope object.
//
// A section marks code that a fence's completion depends on: from the moment a fence is
// visible to others until it signals. Inside one, code must not allocate from the heap, wait on
// a fence, or take a reservation lock (a waiter may hold it). Sections nest.
//
// In checked builds (CMake option ZBUF_CHECKED, on in the sanitizer builds) each violation is
// reported with the innermost section's fence (an inner section without a fence inherits the
// outer one's), the call site, and a backtrace: heap allocations through any operator new
// (replaced in checked builds; the location is the caller of operator new), Fence::wait*,
// and WwMutex/Resv locks (they call checkSignallingSection(ResvLock)). Fence::signal() runs its
// callbacks inside a section of its own, so a callback that allocates or waits is reported too.
// Reports go to the handler (default: an error log); reporting never aborts, and allocations
// made while reporting are not reported again. In other builds the scope object is empty and
// every check compiles to nothing.
#pragma once

#include <functional>
#include <string>
#include <type_traits>

#include "zbuf/base/source_location.h"

#pragma GCC visibility push(default)  // the public API: exported (cmake/ZbufLayers.cmake)

namespace zbuf {

class Fence;

enum class SignallingViolation { Allocation, FenceWait, ResvLock };

[[nodiscard]] const char* toString(SignallingViolation v) noexcept;

struct SignallingReport {
  SignallingViolation violation;
  std::string fence;      // "driver:timeline ctx N seq M", or "(no fence)"
  std::string location;   // "file:line function"
  std::string backtrace;  // symbolised frames, when available
};

using SignallingReportHandler = std::function<void(const SignallingReport&)>;

#if ZBUF_CHECKED

class FenceSignallingSection {
 public:
  explicit FenceSignallingSection(const Fence* fence = nullptr) noexcept;
  ~FenceSignallingSection();
  FenceSignallingSection(const FenceSignallingSection&) = delete;
  FenceSignallingSection& operator=(const FenceSignallingSection&) = delete;

  // True if the calling thread is inside any section.
  [[nodiscard]] static bool active() noexcept;

 private:
  const Fence* fence_;
  FenceSignallingSection* outer_;
};

// Reports `violation` if the calling thread is inside a section.
void checkSignallingSection(SignallingViolation violation,
                            SourceLocation where = SourceLocation::current());
// Reports a heap allocation made inside a section by the code at `caller` (operator new's hook).
void reportSignallingAllocation(void* caller);
// Replaces the report handler (default: log an error with the backtrace). Returns the old one.
SignallingReportHandler setSignallingReportHandler(SignallingReportHandler handler);

inline constexpr bool kSignallingChecks = true;

#else

class FenceSignallingSection {
 public:
  explicit FenceSignallingSection(const Fence* /*fence*/ = nullptr) noexcept {}
  FenceSignallingSection(const FenceSignallingSection&) = delete;
  FenceSignallingSection& operator=(const FenceSignallingSection&) = delete;
  ~FenceSignallingSection() = default;
  [[nodiscard]] static constexpr bool active() noexcept { return false; }
};

inline void checkSignallingSection(SignallingViolation /*violation*/,
                                   SourceLocation /*where*/ = {}) {}
// NOLINTNEXTLINE(performance-unnecessary-value-param): same signature as the checked build's.
inline SignallingReportHandler setSignallingReportHandler(SignallingReportHandler /*h*/) {
  return {};
}

inline constexpr bool kSignallingChecks = false;
// Costs nothing: no state, no code.
static_assert(std::is_empty_v<FenceSignallingSection>);

#endif

}  // namespace zbuf
#pragma GCC visibility pop
