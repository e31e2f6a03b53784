// Target daemon: zbufd's request decoder and dispatcher (daemon/dispatch.h), as a client reaches
// them: each input is up to 64 requests (opcode, body, fds), each either raw bytes or a
// well-formed body of its opcode with every field fuzzed, carrying fds from a pool (the system
// heap, a dma-buf, a sync file, /dev/udmabuf, memfds sealed and not, a pipe's two ends), run
// through daemon::dispatch on a fresh Context. Checked, beyond the sanitizers:
//  - every reply's errno is 0 or a positive errno below 4096; a failed reply carries no fd; its
//    flags are 0 or the foreign-fd flag, which comes only with EBADF;
//  - an unknown opcode is ENOTTY; a Ping answers the protocol version;
//  - a call whose target is not a zbuf file (the pipe, the memfds) is the foreign-fd reply and
//    leaves the pipe's bytes where they were: the daemon makes no call on such a file;
//  - every fd a reply carries is open;
//  - nothing leaks: once the harness closes what it got and its pool, the context's file table
//    lists nothing, and /proc/self/fd has as many entries as before the input.
// Poll timeouts are forced to 0 and opened files are non-blocking, so no request waits.
#include <sys/mman.h>

#include <array>
#include <cstring>
#include <string_view>
#include <vector>

#include "fuzz_support.h"
#include "zbuf/daemon/dispatch.h"
#include "zbuf/ipc/ioctl_layout.h"
#include "zbuf/ipc/protocol.h"

namespace zbuf::fuzz {
namespace {

using ipc::Opcode;
using namespace zbuf::uapi;

constexpr std::array<std::string_view, 5> kPaths{"/dev/dma_heap/system", "/dev/dma_heap/hugepage",
                                                 "/dev/udmabuf", "/dev/iio:device0", ""};
constexpr std::array<unsigned long, 13> kRequests{kDmaHeapIoctlAlloc,
                                                  kDmaBufIoctlSync,
                                                  kDmaBufSetName,
                                                  kDmaBufSetNameA,
                                                  kDmaBufIoctlExportSyncFile,
                                                  kDmaBufIoctlImportSyncFile,
                                                  kSyncIocMerge,
                                                  kSyncIocFileInfo,
                                                  kSyncIocSetDeadline,
                                                  kUdmabufCreate,
                                                  kUdmabufCreateList,
                                                  0x5421 /* FIONBIO */,
                                                  0x541B /* FIONREAD */};
constexpr std::size_t kPipeRead = 5;  // pool indices (setUp)
constexpr std::size_t kPipeWrite = 6;

template <typename T>
void put(std::vector<std::byte>& out, const T& v) {
  const auto* p = reinterpret_cast<const std::byte*>(&v);  // NOLINT: object bytes
  out.insert(out.end(), p, p + sizeof v);
}

void putBytes(std::vector<std::byte>& out, Input& in, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    out.push_back(std::byte{in.u8()});
  }
}

// A well-formed body of `op` with fuzzed fields (and, now and then, a field that is not).
std::vector<std::byte> structured(Opcode op, Input& in) {
  std::vector<std::byte> b;
  switch (op) {
    case Opcode::Open: {
      const int flags = static_cast<int>(in.u32());
      const std::uint8_t which = in.u8();
      std::string path = which < 0xf0 ? std::string(kPaths[which % kPaths.size()]) : std::string();
      if (which >= 0xf0) {
        for (std::uint8_t n = in.u8(); n > 0; --n) {
          path.push_back(static_cast<char>(in.u8()));
        }
      }
      const std::uint8_t skew = in.u8();
      put(b, ipc::OpenRequest{
                 flags, static_cast<std::uint32_t>(path.size()) + (skew == 0xff ? in.u32() : 0U)});
      b.insert(b.end(), reinterpret_cast<const std::byte*>(path.data()),        // NOLINT: text
               reinterpret_cast<const std::byte*>(path.data() + path.size()));  // NOLINT
      break;
    }
    case Opcode::Ioctl: {
      const std::uint8_t which = in.u8();
      ipc::IoctlRequest req;
      req.request = which < 0xf0 ? kRequests[which % kRequests.size()] : in.u32();
      req.value = in.u64();
      const ipc::IoctlLayout l = ipc::layoutOf(req.request);
      const std::uint8_t len = in.u8();
      req.argLength = len < 0xf0 ? (l.size != 0 ? l.size : 32U) : in.u16() % 2048U;
      const std::uint8_t flags = in.u8();
      req.flags = flags == 1 ? ipc::kIoctlArgNull : flags == 0xff ? in.u32() : 0U;
      put(b, req);
      putBytes(b, in, req.argLength);
      break;
    }
    case Opcode::Read:
      put(b, ipc::CountRequest{in.u32() % 70000U});
      break;
    case Opcode::Write: {
      const std::uint16_t n = in.u16();
      const std::uint8_t skew = in.u8();
      put(b, ipc::CountRequest{skew == 0xff ? n + 1U : n});
      putBytes(b, in, n);
      break;
    }
    case Opcode::Poll: {
      const std::uint8_t count = in.u8();
      const std::uint32_t n = count == 0xff ? 100U : count % 6U;  // 100: over kMaxFds
      put(b, ipc::PollRequest{0, n});
      for (std::uint32_t i = 0; i < n && i < 8; ++i) {
        const std::uint8_t index = in.u8();
        ipc::PollEntry e;
        e.fdIndex = index == 0xff ? ipc::kNoFd : index % 6U;
        e.events = static_cast<std::int16_t>(in.u16());
        e.revents = in.u8() == 0xff ? 1 : 0;
        put(b, e);
      }
      break;
    }
    case Opcode::Lseek: {
      const std::int64_t offset = static_cast<std::int64_t>(in.u64());
      const int whence = in.u8() % 6;
      put(b, ipc::LseekRequest{offset, whence, in.u8() == 0xff ? 1U : 0U});
      break;
    }
    case Opcode::Mmap: {
      ipc::MmapRequest m;
      m.length = in.length();
      m.offset = in.u8() == 0xff ? in.u64() : 0;
      m.prot = in.u8() % 8;
      const std::uint8_t f = in.u8();
      m.flags = f < 0x80 ? MAP_SHARED : f < 0xf0 ? MAP_PRIVATE : static_cast<int>(in.u32());
      put(b, m);
      break;
    }
    default:
      if (in.u8() == 0xff) {
        b.push_back(std::byte{0});  // a body where none belongs
      }
      break;
  }
  return b;
}

// What a harness must change in any body so that no request waits or exhausts the machine.
void tame(Opcode op, std::vector<std::byte>& body) {
  if (op == Opcode::Poll && body.size() >= sizeof(std::int32_t)) {
    const std::int32_t zero = 0;
    std::memcpy(body.data(), &zero, sizeof zero);  // never wait
  }
  if (op == Opcode::Open && body.size() >= sizeof(std::int32_t)) {
    std::int32_t flags = 0;
    std::memcpy(&flags, body.data(), sizeof flags);
    flags |= O_NONBLOCK;
    std::memcpy(body.data(), &flags, sizeof flags);
  }
  if (op == Opcode::Ioctl && body.size() >= sizeof(ipc::IoctlRequest) + 8) {
    ipc::IoctlRequest req;
    std::memcpy(&req, body.data(), sizeof req);
    if (static_cast<unsigned>(req.request) == static_cast<unsigned>(kDmaHeapIoctlAlloc)) {
      std::uint64_t len = 0;  // the heaps' buffers stay small (as the heap target keeps them)
      std::memcpy(&len, body.data() + sizeof req, sizeof len);
      if (len > (64U << 20) && len <= ~std::uint64_t{0} - 8192) {
        len %= 64U << 20;
        std::memcpy(body.data() + sizeof req, &len, sizeof len);
      }
    }
  }
}

class Harness {
 public:
  Harness() : fdsBefore_(countAfterWarmUp()) {}

  void setUp() {
    pool_.push_back(open("/dev/dma_heap/system", O_RDONLY));
    DmaHeapAllocationData alloc{};
    alloc.len = 4 * sys::pageSize();
    alloc.fdFlags = O_RDWR | O_CLOEXEC;
    if (!ctx_->ioctl(pool_[0].get(), kDmaHeapIoctlAlloc, &alloc).ok()) {
      fail("DMA_HEAP_IOCTL_ALLOC in the set-up failed");
    }
    pool_.push_back(UniqueFd::adopt(static_cast<int>(alloc.fd)));
    DmaBufExportSyncFile exp{kDmaBufSyncRead, -1};
    if (!ctx_->ioctl(pool_[1].get(), kDmaBufIoctlExportSyncFile, &exp).ok()) {
      fail("EXPORT_SYNC_FILE in the set-up failed");
    }
    pool_.push_back(UniqueFd::adopt(exp.fd));
    pool_.push_back(open("/dev/udmabuf", O_RDWR));
    pool_.push_back(memfd(true));
    std::array<int, 2> p{};
    if (::pipe2(p.data(), O_CLOEXEC | O_NONBLOCK) != 0) {
      fail("pipe2 in the set-up failed");
    }
    pool_.push_back(UniqueFd::adopt(p[0]));
    pool_.push_back(UniqueFd::adopt(p[1]));
    pool_.push_back(memfd(false));
    if (::write(pool_[kPipeWrite].get(), "zbuf", 4) != 4) {
      fail("write to the pipe in the set-up failed");
    }
  }

  void request(Input& in) {
    const std::uint8_t sel = in.u8();
    const auto opcode = static_cast<std::uint16_t>(sel < 0xf0 ? sel % 14 : in.u16());
    const auto op = static_cast<Opcode>(opcode);
    std::vector<std::byte> body;
    if (in.u8() % 4 == 0) {
      const auto raw = in.bytes(1024);
      body.assign(raw.begin(), raw.end());
    } else {
      body = structured(op, in);
    }
    tame(op, body);
    ipc::Message m;
    m.header.opcode = opcode;
    m.header.size = static_cast<std::uint32_t>(sizeof(ipc::MessageHeader) + body.size());
    m.body = std::move(body);
    const std::size_t nfds = in.u8() % 4;
    std::size_t first = pool_.size();
    for (std::size_t i = 0; i < nfds; ++i) {
      const std::size_t index = in.u8() % pool_.size();
      first = i == 0 ? index : first;
      m.fds.push_back(UniqueFd::adopt(::fcntl(pool_[index].get(), F_DUPFD_CLOEXEC, 0)));
    }
    m.header.fdCount = static_cast<std::uint32_t>(m.fds.size());
    daemon::Reply r = daemon::dispatch(*ctx_, m, -1);
    check(opcode, first, r);
    for (UniqueFd& fd : r.fds) {
      (void)ctx_->close(std::move(fd));
    }
    for (UniqueFd& fd : m.fds) {  // what the dispatcher left of the request's copies
      (void)ctx_->close(std::move(fd));
    }
  }

  void finish() {
    for (UniqueFd& fd : pool_) {
      (void)ctx_->close(std::move(fd));
    }
    pool_.clear();
    (void)ctx_->files().reap();
    const auto left = ctx_->files().list();
    if (!left.empty()) {
      fail("{} files left in the daemon's context after every fd was closed", left.size());
    }
    ctx_.reset();
    if (openFdCount() != fdsBefore_) {
      fail("{} fds open after the input, {} before:{}", openFdCount(), fdsBefore_, openFdList());
    }
  }

 private:
  static std::size_t countAfterWarmUp() {
    static const bool kWarm = Session::warmUp();
    (void)kWarm;
    return openFdCount();
  }
  UniqueFd open(const char* path, int flags) {
    auto fd = ctx_->open(path, flags | O_CLOEXEC | O_NONBLOCK);
    if (!fd.ok()) {
      fail("open {} in the set-up: {}", path, fd.error().describe());
    }
    return std::move(*fd);
  }
  static UniqueFd memfd(bool sealed) {
    auto fd = sys::memfdCreate("zbuf-fuzz", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (!fd.ok() || ::ftruncate(fd->get(), 4 * 4096) != 0 ||
        (sealed && ::fcntl(fd->get(), F_ADD_SEALS, F_SEAL_SHRINK) != 0)) {
      fail("memfd in the set-up failed");
    }
    return std::move(*fd);
  }

  void check(std::uint16_t opcode, std::size_t first, const daemon::Reply& r) {
    const ipc::ReplyBody& b = r.body;
    if (b.error < 0 || b.error >= 4096) {
      fail("opcode {}: errno {} in the reply", opcode, b.error);
    }
    if (b.error != 0 && !r.fds.empty()) {
      fail("opcode {}: a failed reply (errno {}) carries {} fds", opcode, b.error, r.fds.size());
    }
    if ((b.flags & ~ipc::kReplyForeignFd) != 0 ||
        ((b.flags & ipc::kReplyForeignFd) != 0 && b.error != EBADF)) {
      fail("opcode {}: reply flags {:#x} with errno {}", opcode, b.flags, b.error);
    }
    if (opcode == 0 || opcode > static_cast<std::uint16_t>(Opcode::Reap)) {
      if (b.error != ENOTTY) {
        fail("unknown opcode {} answered errno {}, not ENOTTY", opcode, b.error);
      }
    }
    if (opcode == static_cast<std::uint16_t>(Opcode::Ping) && b.error == 0 &&
        b.result != ipc::kVersion) {
      fail("Ping answered {}, not the protocol version {}", b.result, ipc::kVersion);
    }
    for (const UniqueFd& fd : r.fds) {
      if (::fcntl(fd.get(), F_GETFD) < 0) {
        fail("opcode {}: the reply carries fd {}, which is not open", opcode, fd.get());
      }
    }
    const bool onPipe = first == kPipeRead || first == kPipeWrite;
    const bool acts = opcode == static_cast<std::uint16_t>(Opcode::Read) ||
                      opcode == static_cast<std::uint16_t>(Opcode::Write) ||
                      opcode == static_cast<std::uint16_t>(Opcode::Ioctl) ||
                      opcode == static_cast<std::uint16_t>(Opcode::Lseek) ||
                      opcode == static_cast<std::uint16_t>(Opcode::Mmap);
    if (onPipe && acts && b.error == 0) {
      fail("opcode {} on the pipe succeeded in the daemon: it is not a zbuf file", opcode);
    }
    int pending = -1;
    if (::ioctl(pool_[kPipeRead].get(), FIONREAD, &pending) != 0 || pending != 4) {
      fail("opcode {}: the pipe holds {} bytes, not its 4: the daemon called on it", opcode,
           pending);
    }
  }

  std::size_t fdsBefore_;  // first: counted before the context opens its own fds
  std::shared_ptr<Context> ctx_ = Context::create();
  std::vector<UniqueFd> pool_;
};

}  // namespace
}  // namespace zbuf::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace zbuf::fuzz;
  Input in(data, size);
  Harness h;
  h.setUp();
  for (int i = 0; i < 64 && !in.done(); ++i) {
    h.request(in);
  }
  h.finish();
  return 0;
}
