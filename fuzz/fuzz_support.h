// The fd-level fuzzing engine shared by the targets (docs/fuzzing.md): an input is decoded into a
// sequence of calls on a pool of fds of a fresh Context, and every call is checked against the
// kernel's rules, not only by the sanitizers:
//  - the errno of a failed call is in the set the kernel documents for that call on that kind of
//    file (Rules::allowed), and a failed call leaves no new fd behind;
//  - calls with a rule the kernel states outright (flags outside a mask are EINVAL, ...) give
//    that answer (Rules::check);
//  - every fence the harness made or got back signals exactly once, in bounded time;
//  - after the input, once every fd the harness holds is closed, the context's file listing is
//    empty (no leaked buffer or file) and /proc/self/fd has as many entries as before.
// A violation prints what broke and aborts, which libFuzzer (and the replay) report as a crash.
//
// Byte stream: each call is an opcode byte followed by its operands (Input reads past the end as
// zeros, so every prefix of an input is an input).
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "zbuf/base/result.h"
#include "zbuf/base/sys.h"
#include "zbuf/core/fence.h"
#include "zbuf/uapi/abi.h"
#include "zbuf/uapi/context.h"

namespace zbuf::fuzz {

// Reads the input; past its end every read is zero.
class Input {
 public:
  Input(const std::uint8_t* data, std::size_t size) noexcept : data_(data), size_(size) {}
  [[nodiscard]] bool done() const noexcept { return pos_ >= size_; }
  std::uint8_t u8() noexcept { return pos_ < size_ ? data_[pos_++] : 0; }
  std::uint16_t u16() noexcept { return static_cast<std::uint16_t>(u8() | (u8() << 8)); }
  std::uint32_t u32() noexcept { return u16() | (static_cast<std::uint32_t>(u16()) << 16); }
  std::uint64_t u64() noexcept { return u32() | (static_cast<std::uint64_t>(u32()) << 32); }
  // Up to `max` bytes, the count given by the next two bytes.
  std::span<const std::byte> bytes(std::size_t max) noexcept {
    const std::size_t want = std::min<std::size_t>(u16(), max);
    const std::size_t n = std::min(want, size_ - std::min(pos_, size_));
    const auto* p = reinterpret_cast<const std::byte*>(data_ + std::min(pos_, size_));
    pos_ += n;
    return {p, n};
  }
  // A length: small values mostly, some edges of the 64-bit range.
  std::uint64_t length() noexcept {
    static constexpr std::array<std::uint64_t, 8> kEdges{0,
                                                         1,
                                                         4095,
                                                         4096,
                                                         4097,
                                                         ~std::uint64_t{0},
                                                         ~std::uint64_t{0} - 4095,
                                                         std::uint64_t{1} << 63};
    const std::uint8_t kind = u8();
    if (kind < 0x20) {
      return kEdges[kind % kEdges.size()];
    }
    if (kind < 0x40) {
      return u64();
    }
    return (static_cast<std::uint64_t>(u16()) % 64 + 1) * 4096 - (kind & 1);
  }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
};

// Reports a broken rule and aborts (the fuzzer's crash).
template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
  std::fprintf(stderr, "zbuf fuzz: %s\n", fmt::format(format, std::forward<Args>(args)...).c_str());
  std::fflush(stderr);
  std::abort();
}

inline std::size_t openFdCount() {
  std::size_t n = 0;
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) {
    fail("cannot list /proc/self/fd");
  }
  while (const dirent* e = ::readdir(dir)) {
    n += e->d_name[0] != '.' ? 1 : 0;
  }
  ::closedir(dir);
  return n - 1;  // the directory's own fd
}

// The open fds, sorted.
inline std::vector<int> openFdSet() {
  auto fds = sys::openFds();
  if (!fds.ok()) {
    fail("cannot list /proc/self/fd");
  }
  std::sort(fds->begin(), fds->end());
  return std::move(*fds);
}

// What /proc/self/fd lists, for a report.
// The lines of /proc/self/maps that map the file with this inode (a mapping holds its file).
inline std::string mapsOf(std::uint64_t inode) {
  std::string out;
  std::FILE* maps = std::fopen("/proc/self/maps", "re");
  if (maps == nullptr) {
    return " (no /proc/self/maps)";
  }
  std::array<char, 512> line{};
  const std::string key = fmt::format(" {} ", inode);
  while (std::fgets(line.data(), static_cast<int>(line.size()), maps) != nullptr) {
    const std::string l(line.data());
    if (l.find(key) != std::string::npos) {
      out += "\n  " + l.substr(0, l.size() - (l.ends_with('\n') ? 1 : 0));
    }
  }
  (void)std::fclose(maps);
  return out.empty() ? " none" : out;
}

inline std::string openFdList() {
  std::string out;
  DIR* dir = ::opendir("/proc/self/fd");
  while (dir != nullptr) {
    const dirent* e = ::readdir(dir);
    if (e == nullptr) {
      break;
    }
    if (e->d_name[0] == '.') {
      continue;
    }
    std::array<char, 256> link{};
    const std::string path = std::string("/proc/self/fd/") + e->d_name;
    const ssize_t n = ::readlink(path.c_str(), link.data(), link.size() - 1);
    out += fmt::format(" {}={}", e->d_name,
                       n > 0 ? std::string(link.data(), static_cast<std::size_t>(n)) : "?");
  }
  if (dir != nullptr) {
    ::closedir(dir);
  }
  return out;
}

// What one kind of fd is, to the rules.
enum class Kind : std::uint8_t {
  DmaBuf,
  SyncFile,
  Heap,
  Udmabuf,
  IioDevice,
  IioBuffer,
  SysfsAttr,
  Ep0,
  Endpoint,
  VirtioVideo,  // the virtio video decoder or display
  Foreign,      // a pipe or a plain memfd: the real kernel's fd
  Closed,       // a number no fd has
};

inline const char* kindName(Kind k) {
  static constexpr std::array<const char*, 12> kNames{
      "dmabuf", "sync_file",      "dma_heap",      "udmabuf",      "iio:device", "iio:buffer",
      "sysfs",  "functionfs:ep0", "functionfs:ep", "virtio-video", "foreign",    "closed"};
  return kNames[static_cast<std::size_t>(k)];
}

// The kind of a zbuf file, by its operations' name.
inline Kind kindOf(std::string_view name) {
  for (std::size_t i = 0; i < static_cast<std::size_t>(Kind::Foreign); ++i) {
    if (name == kindName(static_cast<Kind>(i))) {
      return static_cast<Kind>(i);
    }
  }
  return name.starts_with("sysfs") ? Kind::SysfsAttr : Kind::Foreign;
}

struct Tracked {
  int fd;
  Kind kind;
};

// One ioctl as the harness issues it: its fd, request and argument bytes (pointer fields and fd
// fields fixed up by the target).
struct IoctlCall {
  Tracked target;
  unsigned cmd;
  std::byte* arg;  // may be null
  std::size_t argSize;
};

class Session;

// What a target tells the engine.
struct Rules {
  // The errnos the kernel may answer for `call` (EBADF for a closed fd is added by the engine).
  std::function<std::vector<int>(const IoctlCall& call)> ioctlErrnos;
  // After the call: what the kernel's rules say must have happened (fail() if not); new fds to
  // track. `result` is the ioctl's return or its error.
  std::function<void(Session& s, const IoctlCall& call, const Result<long>& result)> ioctlCheck;
  // The requests the target knows (the fuzzer picks one by index or sends a raw number), with
  // the size of the argument to give them.
  std::vector<std::pair<unsigned, std::size_t>> requests;
  // Sets fd fields of a known request's argument to pool fds (`pick` chooses one).
  std::function<void(Session& s, IoctlCall& call, Input& in)> fixUp;
  // Right before the call (e.g. signal the harness's fences before a call that waits on them);
  // false skips the call (it would sleep on a fence nobody will signal).
  std::function<bool(Session& s, IoctlCall& call)> before;
  // read/write errnos by kind.
  std::function<std::vector<int>(Kind kind, bool write)> rwErrnos;
  // Whether a read or write may be made (false: it would sleep until the far end moves data,
  // as a FunctionFS transfer does even on a non-blocking file).
  std::function<bool(Session& s, const Tracked& t, bool write)> rwAllowed;
  // The fd a successful call returned (the engine tracks it), if the call returns one.
  std::function<std::optional<int>(const IoctlCall& call, long result)> returnedFd;
  // The target's own operations (opcode >= kEngineOps): open nodes, make fences, signal...
  std::function<void(Session& s, std::uint8_t op, Input& in)> extra;
  unsigned extraOps = 0;
};

// A callback that counts how often its fence signalled.
struct CountedFence {
  FencePtr fence;
  std::unique_ptr<FenceCallbackFn<std::function<void(Fence&)>>> cb;
  std::unique_ptr<int> count;
  bool harness = false;  // the harness signals it (else its producer does)
};

class Session {
 public:
  static constexpr unsigned kEngineOps = 10;
  static constexpr std::size_t kArgMax = 32 * 1024;

  explicit Session(Rules rules) : rules_(std::move(rules)) {
    static const bool kWarm = warmUp();
    (void)kWarm;
    fdsBefore_ = openFdCount();
    ctx_ = uapi::Context::create();
    scope_.emplace(*ctx_);
    arg_.resize(kArgMax + 16);
  }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  [[nodiscard]] uapi::Context& ctx() noexcept { return *ctx_; }
  [[nodiscard]] std::vector<Tracked>& pool() noexcept { return pool_; }

  void track(int fd, Kind kind) {
    if (std::getenv("ZBUF_FUZZ_TRACE") != nullptr) {
      std::fprintf(stderr, "track %d %s\n", fd, kindName(kind));
    }
    pool_.push_back({fd, kind});
  }
  void track(UniqueFd fd, Kind kind) { track(fd.release(), kind); }
  // A pool fd (or, rarely, a closed number).
  Tracked pick(Input& in) {
    const std::uint8_t b = in.u8();
    if (pool_.empty() || b == 0xff) {
      return {kClosedFd, Kind::Closed};
    }
    return pool_[b % pool_.size()];
  }
  // A pool fd of one kind, if there is one.
  std::optional<Tracked> pickKind(Input& in, Kind kind) {
    std::vector<Tracked> of;
    for (const Tracked& t : pool_) {
      if (t.kind == kind) {
        of.push_back(t);
      }
    }
    const std::uint8_t b = in.u8();
    if (of.empty()) {
      return std::nullopt;
    }
    return of[b % of.size()];
  }

  // A fence the harness signals (or the producer, with harness = false); counted.
  void watchFence(FencePtr fence, bool harness) {
    if (!fence) {
      return;
    }
    for (const CountedFence& c : fences_) {
      if (c.fence == fence) {
        return;
      }
    }
    CountedFence c;
    c.fence = std::move(fence);
    c.count = std::make_unique<int>(0);
    c.harness = harness;
    int* count = c.count.get();
    c.cb = std::make_unique<FenceCallbackFn<std::function<void(Fence&)>>>(
        std::function<void(Fence&)>([count](Fence&) { ++*count; }));
    if (c.fence->addCallback(*c.cb).ok()) {
      fences_.push_back(std::move(c));
    }
  }
  std::deque<CountedFence>& fences() noexcept { return fences_; }
  // Signals every pending harness fence (before a call that may wait on them).
  void signalAll() {
    for (CountedFence& c : fences_) {
      if (c.harness) {
        (void)c.fence->signal();
      }
    }
  }

  // Runs the input.
  void run(Input& in) {
    for (int steps = 0; !in.done() && steps < 256; ++steps) {
      const std::uint8_t op = in.u8();
      const unsigned total = kEngineOps + rules_.extraOps;
      const unsigned which = op % total;
      if (which >= kEngineOps) {
        rules_.extra(*this, static_cast<std::uint8_t>(which - kEngineOps), in);
      } else {
        engineOp(which, in);
      }
    }
  }

  // Closes everything and checks what must hold after the input.
  void finish() {
    signalAll();
    for (CountedFence& c : fences_) {
      if (!c.fence->waitTimeout(std::chrono::seconds(10)).ok() || !c.fence->isSignaledFlag()) {
        fail("a fence ({} {} seqno {}) did not signal within 10 s", c.fence->driverName(),
             c.fence->timelineName(), c.fence->seqno());
      }
      if (*c.count != 1) {
        fail("a fence ({} {} seqno {}) ran its callback {} times", c.fence->driverName(),
             c.fence->timelineName(), c.fence->seqno(), *c.count);
      }
      if (c.fence->signal()) {
        fail("a signalled fence ({}) signalled again", c.fence->driverName());
      }
    }
    fences_.clear();
    // Through the context, one at a time: back-to-back close(2)s of two descriptions of one
    // file can merge into one inotify event and keep the file until the context ends
    // (docs/uapi.md, "Merged events"), which is zbuf's documented bound, not the input's leak.
    for (const Tracked& t : pool_) {
      if (t.kind != Kind::Closed) {
        (void)ctx_->close(t.fd);
      }
    }
    pool_.clear();
    mappings_.clear();
    const auto left = ctx_->files().list();
    if (!left.empty()) {
      std::string kinds;
      for (const auto& f : left) {
        kinds += fmt::format(" {}(inode {}, {} descriptions; mapped:{})", f.kind, f.inode,
                             f.descriptions, mapsOf(f.inode));
      }
      fail("{} files left in the context after every fd was closed:{}", left.size(), kinds);
    }
    scope_.reset();
    ctx_.reset();
    // A thread of the context still on its way out may hold a transient fd for a moment (one
    // such fd was seen closing while the list was read): wait, bounded, for the count to come
    // back; a leaked fd stays and fails.
    std::size_t after = openFdCount();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (after != fdsBefore_ && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::yield();
      after = openFdCount();
    }
    if (after != fdsBefore_) {
      fail("{} fds open before the input, {} after:{}", fdsBefore_, after, openFdList());
    }
  }

  // The array FILE_INFO fills (its sync_fence_info pointer is set to it or to null).
  std::array<uapi::SyncFenceInfo, 256>& fenceInfos() noexcept { return fenceInfos_; }
  // The requests do_vfs_ioctl answers for every file (on the real backing file).
  static bool isGeneric(unsigned cmd) {
    return cmd == FIONBIO || cmd == FIOASYNC || cmd == FIOCLEX || cmd == FIONCLEX;
  }

  // The argument buffer, `misalign` bytes past an aligned start.
  std::byte* arg(std::size_t misalign) { return arg_.data() + misalign % 8; }

  static constexpr int kClosedFd = 987;

  // What the library makes once and keeps, made before the first count: the default context,
  // and the calling thread's wake-up eventfd of a poll that mixes zbuf and kernel fds
  // (uapi/file.cpp, threadEventFd). Also for targets with a harness of their own.
  static bool warmUp() {
    (void)uapi::Context::embedded();
    auto ctx = uapi::Context::create();
    auto pipe = sys::pipe();
    auto timeline = Timeline::create("fuzz", "warm-up");
    auto fence = timeline->createFence();
    auto sync = ctx->installSyncFile(fence);
    if (!pipe.ok() || !sync.ok()) {
      fail("the warm-up could not make a pipe and a sync file");
    }
    std::array<struct pollfd, 2> fds{{{pipe->first.get(), POLLIN, 0}, {sync->get(), POLLIN, 0}}};
    (void)ctx->poll(fds, 0);
    (void)fence->signal();
    return true;
  }

 private:
  void checkErrno(const char* call, const Tracked& t, const Error& e, std::vector<int> allowed,
                  std::size_t fdsBefore) {
    if (t.kind == Kind::Closed) {
      allowed = {EBADF};
    }
    if (t.kind != Kind::Foreign &&
        std::find(allowed.begin(), allowed.end(), e.code()) == allowed.end()) {
      std::string set;
      for (int a : allowed) {
        set += fmt::format(" {}", a);
      }
      fail("{} on a {} fd: errno {} ({}) is not one the kernel gives (allowed:{})", call,
           kindName(t.kind), e.code(), e.describe(), set);
    }
    const std::size_t after = openFdCount();
    if (after > fdsBefore) {
      fail("{} on a {} fd failed with errno {} and left {} new fds", call, kindName(t.kind),
           e.code(), after - fdsBefore);
    }
  }

  // Tracks the fd a call returned (the kind from the context's file).
  void trackReturned(int fd, const std::string& call) {
    for (const Tracked& t : pool_) {
      if (t.fd == fd) {
        fail("{} returned fd {}, which was open before", call, fd);
      }
    }
    auto file = ctx_->lookup(fd);
    if (!file.ok() || !*file) {
      fail("{} returned fd {}, which is not a file of the context", call, fd);
    }
    const Kind kind = kindOf((*file)->ops().name());
    track(fd, kind);
    if (kind == Kind::SyncFile) {
      auto fence = ctx_->syncFileFence(fd);
      if (!fence.ok()) {
        fail("{}: sync file fd {} has no fence", call, fd);
      }
      watchFence(*fence, false);
    }
  }

  void engineOp(unsigned which, Input& in) {
    switch (which) {
      case 0:
      case 1:
      case 2:
        ioctlOp(in);
        return;
      case 3:
      case 4:
        rwOp(in, which == 4);
        return;
      case 5: {  // close one
        if (pool_.empty()) {
          return;
        }
        const std::size_t i = in.u8() % pool_.size();
        const Tracked t = pool_[i];
        pool_.erase(pool_.begin() + static_cast<long>(i));
        if (t.kind != Kind::Closed) {
          auto r = ctx_->close(t.fd);
          if (!r.ok()) {
            fail("close of a {} fd: {}", kindName(t.kind), r.error().describe());
          }
        }
        return;
      }
      case 6: {  // dup one
        const Tracked t = pick(in);
        if (t.kind == Kind::Closed || pool_.size() > 48) {
          return;
        }
        auto fd = sys::dup(t.fd);
        if (fd.ok()) {
          track(std::move(*fd), t.kind);
        }
        return;
      }
      case 7: {  // poll, never waiting
        std::vector<struct pollfd> fds;
        std::vector<Kind> kinds;
        const unsigned n = in.u8() % 4 + 1;
        for (unsigned i = 0; i < n; ++i) {
          const Tracked t = pick(in);
          fds.push_back({t.fd, static_cast<short>(in.u16()), 0});
          kinds.push_back(t.kind);
        }
        auto r = ctx_->poll(fds, 0);
        if (!r.ok()) {
          fail("poll: {}", r.error().describe());
        }
        int ready = 0;
        for (std::size_t i = 0; i < fds.size(); ++i) {
          ready += fds[i].revents != 0 ? 1 : 0;
          const short always = POLLERR | POLLHUP | POLLNVAL;
          if ((fds[i].revents & ~(fds[i].events | always)) != 0) {
            fail("poll on a {} fd: revents {:#x} outside events {:#x}", kindName(kinds[i]),
                 fds[i].revents, fds[i].events);
          }
        }
        if (*r != ready) {
          fail("poll returned {} with {} entries ready", *r, ready);
        }
        return;
      }
      case 8: {  // lseek, fstat, fdinfo, fdPath
        const Tracked t = pick(in);
        const std::int64_t off = static_cast<std::int64_t>(in.length());
        const int whence = in.u8() % 5;
        const std::size_t before = openFdCount();
        auto r = ctx_->lseek(t.fd, off, whence);
        if (!r.ok()) {
          checkErrno("lseek", t, r.error(), {EINVAL, ESPIPE, ENXIO, EOVERFLOW}, before);
        } else if (t.kind == Kind::DmaBuf &&
                   (off != 0 || (whence != SEEK_SET && whence != SEEK_END))) {
          fail("lseek({}, {}) on a dma-buf succeeded; the kernel's dma_buf_llseek is EINVAL", off,
               whence);
        }
        (void)ctx_->fstat(t.fd);
        (void)ctx_->fdinfo(t.fd);
        (void)ctx_->fdPath(t.fd);
        return;
      }
      case 9: {  // mmap, kept until the end of the input
        const Tracked t = pick(in);
        const std::size_t len = static_cast<std::size_t>(in.length() % (1U << 20));
        const int prot = (in.u8() & 3);
        const int flags = (in.u8() & 1) != 0 ? MAP_PRIVATE : MAP_SHARED;
        const std::uint64_t offset = (in.u8() % 4) * sys::pageSize();
        const std::size_t before = openFdCount();
        auto m = ctx_->mmap(t.fd, len, prot, flags, offset);
        if (!m.ok()) {
          checkErrno("mmap", t, m.error(), {EINVAL, ENODEV, EACCES, ENOMEM, EOVERFLOW, EPERM},
                     before);
        } else if (mappings_.size() < 16) {
          mappings_.push_back(std::move(*m));
        }
        return;
      }
      default:
        return;
    }
  }

  void ioctlOp(Input& in) {
    IoctlCall call{};
    call.target = pick(in);
    const std::uint8_t sel = in.u8();
    std::size_t size = 0;
    if (sel < 0xc0 && !rules_.requests.empty()) {
      const auto& r = rules_.requests[sel % rules_.requests.size()];
      call.cmd = r.first;
      size = r.second;
    } else if (sel < 0xe0) {
      call.cmd = in.u32();
      size = (call.cmd >> 16) & 0x3fff;
    } else {
      // The requests every file has (do_vfs_ioctl), on the real backing file.
      static constexpr std::array<unsigned, 4> kGeneric{FIONBIO, FIOASYNC, FIOCLEX, FIONCLEX};
      call.cmd = kGeneric[sel % kGeneric.size()];
      size = sizeof(int);
    }
    if (call.target.kind == Kind::Foreign) {
      // The real kernel's fd: only requests with zbuf's magics (never FIFREEZE and the like).
      static constexpr std::array<unsigned, 6> kMagic{'b', '>', 'H', 'u', 'i', 'g'};
      call.cmd = (call.cmd & ~0xff00U) | (kMagic[(call.cmd >> 8) % kMagic.size()] << 8);
    }
    const std::uint8_t how = in.u8();
    call.argSize = std::min(std::max<std::size_t>(size, 64), kArgMax);
    call.arg = (how & 0x80) != 0 ? nullptr : arg(how);
    if (call.arg != nullptr) {
      std::memset(call.arg, 0, call.argSize);
      const auto bytes = in.bytes(call.argSize);
      std::memcpy(call.arg, bytes.data(), bytes.size());
      if (call.cmd == FIONBIO) {
        const int one = 1;  // the harness's fds stay non-blocking
        std::memcpy(call.arg, &one, sizeof one);
      }
    }
    if (rules_.fixUp && call.arg != nullptr && (how & 0x40) == 0) {
      rules_.fixUp(*this, call, in);
    }
    if (call.cmd == uapi::kSyncIocFileInfo && call.arg != nullptr) {
      // FILE_INFO writes through its sync_fence_info pointer: null, or the session's array
      // (any other value is a bad user pointer, a fault the kernel catches and zbuf cannot).
      std::uint64_t ptr = 0;
      std::memcpy(&ptr, call.arg + 48, sizeof ptr);
      ptr = (ptr & 1) != 0 ? reinterpret_cast<std::uintptr_t>(fenceInfos_.data()) : 0;
      std::memcpy(call.arg + 48, &ptr, sizeof ptr);
      std::uint32_t n = 0;
      std::memcpy(&n, call.arg + 40, sizeof n);
      if (n > fenceInfos_.size()) {
        n %= fenceInfos_.size() + 1;
        std::memcpy(call.arg + 40, &n, sizeof n);
      }
    }
    if (rules_.before && !rules_.before(*this, call)) {
      return;
    }
    const std::size_t before = openFdCount();
    auto r = ctx_->ioctl(call.target.fd, call.cmd, call.arg);
    if (r.ok() && rules_.returnedFd && !isGeneric(call.cmd) && call.target.kind != Kind::Foreign) {
      if (auto fd = rules_.returnedFd(call, *r)) {
        trackReturned(*fd,
                      fmt::format("ioctl {:#x} on a {} fd", call.cmd, kindName(call.target.kind)));
      }
    }
    if (!r.ok()) {
      std::vector<int> allowed{EFAULT};
      if (isGeneric(call.cmd)) {
        allowed.push_back(ENOTTY);
        allowed.push_back(EINVAL);
      } else {
        auto more = rules_.ioctlErrnos(call);
        allowed.insert(allowed.end(), more.begin(), more.end());
      }
      checkErrno(fmt::format("ioctl {:#x}", call.cmd).c_str(), call.target, r.error(), allowed,
                 before);
    }
    if (call.target.kind != Kind::Closed && call.target.kind != Kind::Foreign &&
        !isGeneric(call.cmd)) {
      rules_.ioctlCheck(*this, call, r);
    }
  }

  void rwOp(Input& in, bool write) {
    const Tracked t = pick(in);
    if (rules_.rwAllowed && !rules_.rwAllowed(*this, t, write)) {
      (void)(write ? in.bytes(64 * 1024).size() : in.u16());
      return;
    }
    const std::size_t before = openFdCount();
    Result<std::size_t> r = std::size_t{0};
    std::size_t asked = 0;
    if (write) {
      const auto bytes = in.bytes(64 * 1024);
      asked = bytes.size();
      r = ctx_->write(t.fd, bytes);
    } else {
      asked = in.u16() % (64 * 1024);
      std::vector<std::byte> out(asked);
      r = ctx_->read(t.fd, out);
    }
    if (!r.ok()) {
      checkErrno(write ? "write" : "read", t, r.error(), rules_.rwErrnos(t.kind, write), before);
    } else if (*r > asked) {
      fail("{} of {} bytes on a {} fd returned {}", write ? "write" : "read", asked,
           kindName(t.kind), *r);
    }
  }

  Rules rules_;
  std::size_t fdsBefore_ = 0;
  std::shared_ptr<uapi::Context> ctx_;
  std::optional<uapi::Context::Scope> scope_;
  std::vector<Tracked> pool_;
  std::deque<CountedFence> fences_;
  std::vector<sys::Mapping> mappings_;
  std::vector<std::byte> arg_;
  std::array<uapi::SyncFenceInfo, 256> fenceInfos_{};
};

// Reads a 32-bit fd field at `offset` of the argument and replaces it with a pool fd.
inline void setFdField(Session& s, IoctlCall& call, std::size_t offset, Input& in) {
  const Tracked t = s.pick(in);
  const std::int32_t fd = t.fd;
  std::memcpy(call.arg + offset, &fd, sizeof fd);
}

inline std::int32_t readI32(const std::byte* p) {
  std::int32_t v = 0;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// The checks on an fd a call handed back: open, tracked (the engine tracks every new fd), of
// the kind it should be, close-on-exec as the call's flags say.
inline void expectReturnedFd(Session& s, long fd, Kind kind, bool cloexec, const char* call) {
  const auto& pool = s.pool();
  const bool tracked =
      std::any_of(pool.begin(), pool.end(), [&](const Tracked& t) { return t.fd == fd; });
  if (fd < 0 || !tracked) {
    fail("{} succeeded with fd {}, which it did not make", call, fd);
  }
  auto file = s.ctx().lookup(static_cast<int>(fd));
  if (!file.ok() || !*file) {
    fail("{} succeeded but fd {} is not a file of the context", call, fd);
  }
  if ((*file)->ops().name() != kindName(kind)) {
    fail("{} gave a {} file, not a {}", call, (*file)->ops().name(), kindName(kind));
  }
  auto fdFlags = sys::getFdFlags(static_cast<int>(fd));
  if (!fdFlags.ok() || ((*fdFlags & FD_CLOEXEC) != 0) != cloexec) {
    fail("{}: the new fd {} has FD_CLOEXEC {}, not {}", call, fd,
         fdFlags.ok() && (*fdFlags & FD_CLOEXEC) != 0, cloexec);
  }
}

}  // namespace zbuf::fuzz

// Each target defines this; the libFuzzer build and the replay main call it.
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);
