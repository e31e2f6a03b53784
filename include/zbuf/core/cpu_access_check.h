// Checked CPU access: a buffer's CPU mappings are inaccessible outside SYNC brackets.
//
// The rule of the 2011 RFC and of DMA_BUF_IOCTL_SYNC: the CPU touches a shared buffer only
// between SYNC START and SYNC END (CpuAccess, uapi::sync), and writes only in a bracket that
// says WRITE. The kernel cannot enforce it; zbuf can, when asked: a checked buffer's CPU
// mappings (made through Buffer::mmap, which uapi::mmap calls) are PROT_NONE outside brackets,
// PROT_READ inside READ brackets and as mapped inside WRITE or RW brackets. A wrong access then
// faults, and a SIGSEGV handler (installed once, chained to the handler that was there before
// for faults elsewhere) prints which buffer (name, exporter, size, inode), at which offset,
// what access (read or write, where the processor says) and what was wrong (no bracket opened
// yet, after SYNC END, a write inside a READ bracket), then aborts. In record mode (tests) it
// records the violation instead, opens the mapping so the access completes, and returns; the
// mapping closes again at the next SYNC.
//
// Switching it on: per buffer (Buffer::setCpuAccessChecked), or for every buffer of the
// process that was not told otherwise (CpuAccessChecker::setEnabledByDefault, or the
// environment: ZBUF_CHECK_CPU_ACCESS=1 runs a whole program under it). Mappings made before
// the switch are not guarded. Off, it costs one atomic load per SYNC and per mmap.
//
// Brackets are counted per buffer (two threads may read at once): the mapping is writable while
// a WRITE or RW bracket is open, readable while a READ one is. END closes a bracket of its own
// direction (or, if none is open, one of the other: the kernel keeps no bracket state and
// accepts START|READ then END|WRITE).
//
// Thread-safety: thread-safe. CpuMappingGuard::mutex_ guards its mappings and counts; a global
// mutex guards the slot table the signal handler reads (lock-free, through atomics).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string_view>
#include <vector>

#include "zbuf/base/mutex.h"
#include "zbuf/base/sys.h"
#include "zbuf/core/sg_table.h"

#pragma GCC visibility push(default)  // the public API: exported (cmake/ZbufLayers.cmake)

namespace zbuf {

enum class CpuAccessFault : std::uint8_t {
  NoBracket,           // no SYNC START since the buffer was mapped
  AfterEnd,            // after SYNC END: no bracket is open
  WriteInReadBracket,  // a write inside a START|READ bracket
};
enum class CpuAccessKind : std::uint8_t { Read, Write, Unknown };

[[nodiscard]] const char* toString(CpuAccessFault f) noexcept;
[[nodiscard]] const char* toString(CpuAccessKind k) noexcept;

struct CpuAccessViolation {
  std::array<char, 32> name{};      // the buffer's name when it was last mapped
  std::array<char, 32> exporter{};  // exporter name (truncated)
  std::uint64_t size = 0;
  std::uint64_t inode = 0;
  std::uint64_t offset = 0;  // of the faulting byte in the buffer
  CpuAccessKind access = CpuAccessKind::Unknown;
  CpuAccessFault fault = CpuAccessFault::NoBracket;
};

class CpuAccessChecker {
 public:
  // The default for buffers that were not told: on if ZBUF_CHECK_CPU_ACCESS is "1", "on" or
  // "yes" when first asked, until setEnabledByDefault().
  [[nodiscard]] static bool enabledByDefault() noexcept;
  static void setEnabledByDefault(bool on) noexcept;

  enum class OnViolation : std::uint8_t { Abort, Record };
  static void setOnViolation(OnViolation mode) noexcept;
  // Violations recorded in Record mode (at most kMaxRecorded are kept), oldest first.
  static constexpr std::size_t kMaxRecorded = 64;
  [[nodiscard]] static std::vector<CpuAccessViolation> recorded();
  static void clearRecorded() noexcept;
  // Slots for guarded mappings in the process; a mapping beyond them is left unguarded (and
  // says so in the log).
  static constexpr std::size_t kMaxMappings = 1024;
};

// The guard of one buffer's CPU mappings (owned by the buffer and by each guarded mapping's
// unmap hook, so it lives as long as either).
class CpuMappingGuard : public std::enable_shared_from_this<CpuMappingGuard> {
 public:
  CpuMappingGuard(std::string_view exporter, std::uint64_t size, std::uint64_t inode);
  ~CpuMappingGuard();
  CpuMappingGuard(const CpuMappingGuard&) = delete;
  CpuMappingGuard& operator=(const CpuMappingGuard&) = delete;

  // Guards `mapping` (of the buffer's bytes from `bufferOffset`, mapped with `prot`): it gets
  // the protection the open brackets allow and an unmap hook. `name` is the buffer's name now.
  void adopt(sys::Mapping& mapping, std::uint64_t bufferOffset, int prot, std::string_view name);
  // After a successful SYNC START / at SYNC END.
  void begin(DmaDirection dir);
  void end(DmaDirection dir);
  // Guarded mappings alive.
  [[nodiscard]] std::size_t mappings() const;

  // For the signal handler (async-signal-safe reads).
  void describe(CpuAccessViolation& out) const noexcept;
  [[nodiscard]] CpuAccessFault faultFor(CpuAccessKind& access) const noexcept;

 private:
  struct Entry {
    std::byte* addr;
    std::size_t length;
    int prot;
    std::size_t slot;
  };
  class Hook;
  void forget(std::byte* addr) noexcept;
  [[nodiscard]] int allowedLocked(int prot) const noexcept ZBUF_REQUIRES(mutex_);
  void applyLocked() noexcept ZBUF_REQUIRES(mutex_);

  std::array<std::atomic<char>, 32> name_{};
  std::array<char, 32> exporter_{};  // set at construction, read-only after
  const std::uint64_t size_;
  const std::uint64_t inode_;

  mutable Mutex mutex_;  // also serialises the writes of the mirrors
  std::vector<Entry> entries_ ZBUF_GUARDED_BY(mutex_);
  unsigned readers_ ZBUF_GUARDED_BY(mutex_) = 0;
  unsigned writers_ ZBUF_GUARDED_BY(mutex_) = 0;
  // Mirrors for the signal handler.
  std::atomic<unsigned> openReaders_{0};
  std::atomic<unsigned> openWriters_{0};
  std::atomic<bool> ended_{false};
};

}  // namespace zbuf
#pragma GCC visibility pop
