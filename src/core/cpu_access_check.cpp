// Checked CPU access: the slot table the SIGSEGV handler searches, the handler (formats its
// report with async-signal-safe code only: no allocation, no locks, write(2) and abort()), and
// the per-buffer guards that set each mapping's protection from the open brackets.
#include "zbuf/core/cpu_access_check.h"

#include <fmt/format.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <string>

#include "zbuf/base/log.h"

namespace zbuf {

ZBUF_LOG_CATEGORY(CpuAccess);

namespace {

// One guarded mapping, as the handler sees it. begin == 0: free. Written under gSlotsMutex,
// read by the handler without it.
struct Slot {
  std::atomic<std::uintptr_t> begin{0};
  std::atomic<std::uintptr_t> end{0};
  std::atomic<std::uint64_t> bufferOffset{0};
  std::atomic<int> prot{0};  // as mapped: what record mode opens it to
  std::atomic<const CpuMappingGuard*> guard{nullptr};
};

Mutex gSlotsMutex;
std::array<Slot, CpuAccessChecker::kMaxMappings> gSlots ZBUF_GUARDED_BY(gSlotsMutex);

// The signal handler's view of the slots, without the lock (a handler cannot take one): every
// field is an atomic, a slot is published by its release store of `begin` and retired by the
// store of 0, so the lock only serialises the writers (allocation and release).
const std::array<Slot, CpuAccessChecker::kMaxMappings>& slotsForHandler() noexcept
    ZBUF_NO_THREAD_SAFETY_ANALYSIS {
  return gSlots;
}

std::atomic<int> gDefault{-1};  // -1: not decided yet (read the environment)
std::atomic<CpuAccessChecker::OnViolation> gMode{CpuAccessChecker::OnViolation::Abort};

std::array<CpuAccessViolation, CpuAccessChecker::kMaxRecorded> gRecorded;
std::atomic<std::size_t> gRecordedCount{0};

struct sigaction gPrevious {};
std::once_flag gInstallOnce;

// --- async-signal-safe formatting ---------------------------------------------------------------

class Text {
 public:
  void add(const char* s) noexcept {
    while (*s != '\0' && n_ < buf_.size() - 1) {
      buf_[n_++] = *s++;
    }
  }
  void add(const std::array<char, 32>& s) noexcept {
    for (char c : s) {
      if (c == '\0') {
        break;
      }
      const char one[2] = {c, '\0'};
      add(one);
    }
  }
  void number(std::uint64_t v) noexcept {
    char digits[24];
    std::size_t k = 0;
    do {
      digits[k++] = static_cast<char>('0' + v % 10);
      v /= 10;
    } while (v != 0);
    while (k > 0) {
      const char one[2] = {digits[--k], '\0'};
      add(one);
    }
  }
  void hex(std::uint64_t v) noexcept {
    add("0x");
    char digits[20];
    std::size_t k = 0;
    do {
      digits[k++] = "0123456789abcdef"[v & 0xf];
      v >>= 4;
    } while (v != 0);
    while (k > 0) {
      const char one[2] = {digits[--k], '\0'};
      add(one);
    }
  }
  void write(int fd) const noexcept {
    std::size_t done = 0;
    while (done < n_) {
      const ssize_t w = ::write(fd, buf_.data() + done, n_ - done);
      if (w <= 0) {
        return;
      }
      done += static_cast<std::size_t>(w);
    }
  }

 private:
  std::array<char, 768> buf_{};
  std::size_t n_ = 0;
};

CpuAccessKind accessOf(void* context) noexcept {
#if defined(__x86_64__)
  const auto* uc = static_cast<const ucontext_t*>(context);
  return (uc->uc_mcontext.gregs[REG_ERR] & 0x2) != 0 ? CpuAccessKind::Write : CpuAccessKind::Read;
#else
  (void)context;
  return CpuAccessKind::Unknown;
#endif
}

void chain(int sig, siginfo_t* info, void* context) {
  if ((gPrevious.sa_flags & SA_SIGINFO) != 0 && gPrevious.sa_sigaction != nullptr) {
    gPrevious.sa_sigaction(sig, info, context);
    return;
  }
  if (gPrevious.sa_handler == SIG_DFL || gPrevious.sa_handler == SIG_IGN) {
    // Not ours: let the fault take its default course when the access is retried.
    ::signal(sig, SIG_DFL);
    return;
  }
  gPrevious.sa_handler(sig);
}

void onSegv(int sig, siginfo_t* info, void* context) {
  const auto addr = reinterpret_cast<std::uintptr_t>(info->si_addr);
  const Slot* slot = nullptr;
  for (const Slot& s : slotsForHandler()) {
    const std::uintptr_t begin = s.begin.load(std::memory_order_acquire);
    if (begin != 0 && addr >= begin && addr < s.end.load(std::memory_order_relaxed)) {
      slot = &s;
      break;
    }
  }
  const CpuMappingGuard* guard =
      slot != nullptr ? slot->guard.load(std::memory_order_acquire) : nullptr;
  if (guard == nullptr) {
    chain(sig, info, context);
    return;
  }
  CpuAccessViolation v;
  guard->describe(v);
  const std::uintptr_t begin = slot->begin.load(std::memory_order_relaxed);
  v.offset = slot->bufferOffset.load(std::memory_order_relaxed) + (addr - begin);
  v.access = accessOf(context);
  v.fault = guard->faultFor(v.access);

  Text t;
  t.add("zbuf: checked CPU access: ");
  t.add(toString(v.access));
  t.add(" at offset ");
  t.number(v.offset);
  t.add(" (");
  t.hex(v.offset);
  t.add(") of buffer '");
  t.add(v.name);
  t.add("' (exporter ");
  t.add(v.exporter);
  t.add(", ");
  t.number(v.size);
  t.add(" bytes, inode ");
  t.number(v.inode);
  t.add(") ");
  t.add(toString(v.fault));
  t.add(
      ". Bracket CPU access with DMA_BUF_IOCTL_SYNC START and END, with WRITE (or RW) to "
      "write.\n");
  if (gMode.load(std::memory_order_relaxed) == CpuAccessChecker::OnViolation::Record) {
    const std::size_t i = gRecordedCount.fetch_add(1, std::memory_order_relaxed);
    if (i < gRecorded.size()) {
      gRecorded[i] = v;
    }
    // Let the access complete: open the mapping until the next SYNC closes it again.
    // NOLINTNEXTLINE(performance-no-int-to-ptr): the slot keeps the address as an integer
    ::mprotect(reinterpret_cast<void*>(begin), slot->end.load() - begin, slot->prot.load());
    return;
  }
  t.write(STDERR_FILENO);
  std::abort();
}

void installHandler() {
  std::call_once(gInstallOnce, [] {
    struct sigaction sa {};
    sa.sa_sigaction = &onSegv;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGSEGV, &sa, &gPrevious);
  });
}

void copyName(std::array<char, 32>& out, std::string_view in) noexcept {
  out.fill('\0');
  std::memcpy(out.data(), in.data(), std::min(in.size(), out.size() - 1));
}

}  // namespace

const char* toString(CpuAccessFault f) noexcept {
  switch (f) {
    case CpuAccessFault::NoBracket:
      return "outside any SYNC bracket (no SYNC START since it was mapped)";
    case CpuAccessFault::AfterEnd:
      return "after SYNC END (no bracket is open)";
    case CpuAccessFault::WriteInReadBracket:
      return "inside a READ bracket (SYNC START|READ allows reads only)";
  }
  return "?";
}

const char* toString(CpuAccessKind k) noexcept {
  switch (k) {
    case CpuAccessKind::Read:
      return "read";
    case CpuAccessKind::Write:
      return "write";
    case CpuAccessKind::Unknown:
      return "access";
  }
  return "?";
}

bool CpuAccessChecker::enabledByDefault() noexcept {
  int v = gDefault.load(std::memory_order_acquire);
  if (v < 0) {
    const char* env = std::getenv("ZBUF_CHECK_CPU_ACCESS");
    const std::string_view e = env != nullptr ? env : "";
    v = (e == "1" || e == "on" || e == "yes") ? 1 : 0;
    int expected = -1;
    gDefault.compare_exchange_strong(expected, v);
    v = gDefault.load(std::memory_order_acquire);
  }
  return v == 1;
}

void CpuAccessChecker::setEnabledByDefault(bool on) noexcept {
  gDefault.store(on ? 1 : 0, std::memory_order_release);
}

void CpuAccessChecker::setOnViolation(OnViolation mode) noexcept {
  gMode.store(mode, std::memory_order_relaxed);
}

std::vector<CpuAccessViolation> CpuAccessChecker::recorded() {
  const std::size_t n = std::min(gRecordedCount.load(), gRecorded.size());
  return {gRecorded.begin(), gRecorded.begin() + static_cast<std::ptrdiff_t>(n)};
}

void CpuAccessChecker::clearRecorded() noexcept {
  gRecordedCount.store(0);
}

// --- CpuMappingGuard
// -------------------------------------------------------------------------------

class CpuMappingGuard::Hook final : public sys::MappingHook {
 public:
  explicit Hook(std::shared_ptr<CpuMappingGuard> guard) : guard_(std::move(guard)) {}
  void beforeUnmap(std::byte* addr, std::size_t /*size*/) noexcept override {
    guard_->forget(addr);
  }

 private:
  std::shared_ptr<CpuMappingGuard> guard_;
};

CpuMappingGuard::CpuMappingGuard(std::string_view exporter, std::uint64_t size, std::uint64_t inode)
    : size_(size), inode_(inode) {
  copyName(exporter_, exporter);
}

CpuMappingGuard::~CpuMappingGuard() = default;

int CpuMappingGuard::allowedLocked(int prot) const noexcept {
  if (writers_ > 0) {
    return prot;
  }
  if (readers_ > 0) {
    return prot & PROT_READ;
  }
  return PROT_NONE;
}

void CpuMappingGuard::applyLocked() noexcept {
  for (const Entry& e : entries_) {
    ::mprotect(e.addr, e.length, allowedLocked(e.prot));
  }
}

void CpuMappingGuard::adopt(sys::Mapping& mapping, std::uint64_t bufferOffset, int prot,
                            std::string_view name) {
  installHandler();
  for (std::size_t i = 0; i < name_.size(); ++i) {
    name_[i].store(i < name.size() && i + 1 < name_.size() ? name[i] : '\0',
                   std::memory_order_relaxed);
  }
  std::size_t slot = CpuAccessChecker::kMaxMappings;
  {
    const MutexLocker lock(gSlotsMutex);
    for (std::size_t i = 0; i < gSlots.size(); ++i) {
      if (gSlots[i].begin.load(std::memory_order_relaxed) == 0) {
        slot = i;
        break;
      }
    }
    if (slot == gSlots.size()) {
      log(LogCpuAccess, LogLevel::Warn,
          "checked CPU access: {} guarded mappings already; this mapping of buffer {} is not "
          "guarded",
          gSlots.size(), inode_);
      return;
    }
    Slot& s = gSlots[slot];
    const auto begin = reinterpret_cast<std::uintptr_t>(mapping.data());
    s.guard.store(this, std::memory_order_relaxed);
    s.bufferOffset.store(bufferOffset, std::memory_order_relaxed);
    s.prot.store(prot, std::memory_order_relaxed);
    s.end.store(begin + mapping.size(), std::memory_order_relaxed);
    s.begin.store(begin, std::memory_order_release);
  }
  mapping.setHook(std::make_shared<Hook>(shared_from_this()));
  const MutexLocker lock(mutex_);
  entries_.push_back({mapping.data(), mapping.size(), prot, slot});
  ::mprotect(mapping.data(), mapping.size(), allowedLocked(prot));
}

void CpuMappingGuard::forget(std::byte* addr) noexcept {
  std::size_t slot = CpuAccessChecker::kMaxMappings;
  {
    const MutexLocker lock(mutex_);
    auto it = std::find_if(entries_.begin(), entries_.end(),
                           [&](const Entry& e) { return e.addr == addr; });
    if (it == entries_.end()) {
      return;
    }
    slot = it->slot;
    entries_.erase(it);
  }
  const MutexLocker lock(gSlotsMutex);
  gSlots[slot].begin.store(0, std::memory_order_release);
  gSlots[slot].guard.store(nullptr, std::memory_order_release);
}

void CpuMappingGuard::begin(DmaDirection dir) {
  const MutexLocker lock(mutex_);
  if (dir == DmaDirection::FromDevice) {
    ++readers_;
  } else {
    ++writers_;
  }
  openReaders_.store(readers_, std::memory_order_relaxed);
  openWriters_.store(writers_, std::memory_order_relaxed);
  applyLocked();
}

void CpuMappingGuard::end(DmaDirection dir) {
  const MutexLocker lock(mutex_);
  unsigned& own = dir == DmaDirection::FromDevice ? readers_ : writers_;
  unsigned& other = dir == DmaDirection::FromDevice ? writers_ : readers_;
  if (own > 0) {
    --own;
  } else if (other > 0) {
    --other;
  }
  openReaders_.store(readers_, std::memory_order_relaxed);
  openWriters_.store(writers_, std::memory_order_relaxed);
  ended_.store(true, std::memory_order_relaxed);
  applyLocked();
}

std::size_t CpuMappingGuard::mappings() const {
  const MutexLocker lock(mutex_);
  return entries_.size();
}

void CpuMappingGuard::describe(CpuAccessViolation& out) const noexcept {
  for (std::size_t i = 0; i < name_.size(); ++i) {
    out.name[i] = name_[i].load(std::memory_order_relaxed);
  }
  out.name.back() = '\0';
  out.exporter = exporter_;
  out.size = size_;
  out.inode = inode_;
}

CpuAccessFault CpuMappingGuard::faultFor(CpuAccessKind& access) const noexcept {
  if (openWriters_.load(std::memory_order_relaxed) == 0 &&
      openReaders_.load(std::memory_order_relaxed) > 0) {
    access = CpuAccessKind::Write;  // reads are allowed: it was a write
    return CpuAccessFault::WriteInReadBracket;
  }
  return ended_.load(std::memory_order_relaxed) ? CpuAccessFault::AfterEnd
                                                : CpuAccessFault::NoBracket;
}

}  // namespace zbuf
