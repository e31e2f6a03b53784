// The lane's uAPI scenarios (uapi_scenarios.h). Each step names the call and its arguments the
// way the reference does; values that differ between runs (fd numbers, inodes, times) are never
// recorded.
#include "lane/uapi_scenarios.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <linux/memfd.h>
#include <poll.h>
#include <sys/mman.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <span>
#include <sstream>

#include "zbuf/base/sys.h"
#include "zbuf/uapi/abi.h"

namespace zbuf::lane {

namespace {

using uapi::FdCalls;

constexpr std::uint64_t kPage = 4096;

// Opens the system heap and allocates `len` bytes; returns the buffer's fd (or -1 after
// recording the error).
UniqueFd allocate(FdCalls& c, Transcript& t, std::uint64_t len,
                  std::uint32_t fdFlags = O_RDWR | O_CLOEXEC) {
  auto heap = c.open("/dev/dma_heap/system", O_RDONLY);
  if (!heap.ok()) {
    t.step("open /dev/dma_heap/system", heap);
    return {};
  }
  uapi::DmaHeapAllocationData data{};
  data.len = len;
  data.fdFlags = fdFlags;
  auto r = t.kept(fmt::format("ALLOC len={} fd_flags={:#o}", len, fdFlags),
                  c.ioctl(heap->get(), uapi::kDmaHeapIoctlAlloc, &data));
  (void)c.close(heap->release());
  return r.ok() ? UniqueFd::adopt(static_cast<int>(data.fd)) : UniqueFd();
}

// The value of `key` in an fdinfo text ("size:\t4096\n" -> "4096"), or "(none)".
std::string fdinfoValue(const std::string& text, std::string_view key) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with(key) && line.size() > key.size() && line[key.size()] == ':') {
      std::string v = line.substr(key.size() + 1);
      const auto start = v.find_first_not_of(" \t");
      return start == std::string::npos ? "" : v.substr(start);
    }
  }
  return "(none)";
}

void noteFdinfo(FdCalls& c, Transcript& t, int fd, std::string_view label,
                std::initializer_list<std::string_view> keys) {
  auto info = c.fdinfo(fd);
  if (!info.ok()) {
    t.step(fmt::format("{} fdinfo", label), info);
    return;
  }
  for (const auto key : keys) {
    t.note(fmt::format("{} fdinfo {}", label, key), fdinfoValue(*info, key));
  }
}

short pollOnce(FdCalls& c, int fd, short events) {
  struct pollfd p {
    fd, events, 0
  };
  auto r = c.poll(std::span(&p, 1), 0);
  return r.ok() ? p.revents : static_cast<short>(-1);
}

std::string pollName(short revents) {
  if (revents < 0) {
    return "error";
  }
  std::string out;
  for (const auto& [bit, name] : {std::pair{POLLIN, "IN"},
                                  {POLLOUT, "OUT"},
                                  {POLLPRI, "PRI"},
                                  {POLLERR, "ERR"},
                                  {POLLHUP, "HUP"},
                                  {POLLNVAL, "NVAL"}}) {
    if ((revents & bit) != 0) {
      out += out.empty() ? "" : "|";
      out += name;
    }
  }
  return out.empty() ? "0" : out;
}

UniqueFd exportSyncFile(FdCalls& c, Transcript& t, int buf, std::uint32_t flags,
                        std::string_view label) {
  uapi::DmaBufExportSyncFile arg{flags, -1};
  auto r = t.kept(fmt::format("EXPORT_SYNC_FILE {}", label),
                  c.ioctl(buf, uapi::kDmaBufIoctlExportSyncFile, &arg));
  return r.ok() ? UniqueFd::adopt(arg.fd) : UniqueFd();
}

// FILE_INFO with room for up to 4 fences: the count, the file's status and each fence's driver,
// timeline and status.
void noteFileInfo(FdCalls& c, Transcript& t, int fd, std::string_view label) {
  std::array<uapi::SyncFenceInfo, 4> fences{};
  uapi::SyncFileInfo info{};
  auto r0 = t.kept(fmt::format("{} FILE_INFO num_fences=0", label),
                   c.ioctl(fd, uapi::kSyncIocFileInfo, &info));
  if (!r0.ok()) {
    return;
  }
  t.note(fmt::format("{} num_fences", label), std::to_string(info.numFences));
  t.note(fmt::format("{} status", label), std::to_string(info.status));
  const std::uint32_t n = info.numFences;
  if (n == 0 || n > fences.size()) {
    return;
  }
  if (n > 1) {
    uapi::SyncFileInfo small{};
    small.numFences = n - 1;
    small.syncFenceInfo = reinterpret_cast<std::uintptr_t>(fences.data());
    t.step(fmt::format("{} FILE_INFO num_fences={}", label, n - 1),
           c.ioctl(fd, uapi::kSyncIocFileInfo, &small));
  }
  info = {};
  info.numFences = n;
  info.syncFenceInfo = reinterpret_cast<std::uintptr_t>(fences.data());
  t.step(fmt::format("{} FILE_INFO num_fences={}", label, n),
         c.ioctl(fd, uapi::kSyncIocFileInfo, &info));
  for (std::uint32_t i = 0; i < n; ++i) {
    t.note(
        fmt::format("{} fence {}", label, i),
        fmt::format("driver={} timeline={} status={} timestamp={}", fences[i].driverName,
                    fences[i].objName, fences[i].status, fences[i].timestampNs != 0 ? "set" : "0"));
  }
}

// SET_NAME with a copy of `name` (the ioctl's argument is not const); nullptr passes NULL.
Result<long> setName(FdCalls& c, int fd, const char* name,
                     unsigned long request = uapi::kDmaBufSetName) {
  if (name == nullptr) {
    return c.ioctl(fd, request, nullptr);
  }
  std::string copy(name);
  return c.ioctl(fd, request, copy.data());
}

// --- the scenarios ---------------------------------------------------------------------------

void heapAllocation(FdCalls& c, Transcript& t) {
  t.step("open /dev/dma_heap/zbuf-no-such-heap",
         c.open("/dev/dma_heap/zbuf-no-such-heap", O_RDONLY));
  auto heap = c.open("/dev/dma_heap/system", O_RDONLY);
  t.step("open /dev/dma_heap/system", heap);
  if (!heap.ok()) {
    return;
  }
  const int h = heap->get();
  auto alloc = [&](std::string_view what, uapi::DmaHeapAllocationData data) {
    auto r = t.kept(what, c.ioctl(h, uapi::kDmaHeapIoctlAlloc, &data));
    if (r.ok()) {
      auto st = c.fstat(static_cast<int>(data.fd));
      t.note(fmt::format("{}: st_size", what), st.ok() ? std::to_string(st->size) : "error");
      (void)c.close(static_cast<int>(data.fd));
    }
  };
  alloc("ALLOC len=0", {0, 0, O_RDWR | O_CLOEXEC, 0});
  alloc("ALLOC len=1", {1, 0, O_RDWR | O_CLOEXEC, 0});
  alloc("ALLOC len=8192", {8192, 0, O_RDWR | O_CLOEXEC, 0});
  alloc("ALLOC len=4097", {4097, 0, O_RDWR | O_CLOEXEC, 0});
  alloc("ALLOC fd_flags=O_RDONLY", {kPage, 0, O_RDONLY, 0});
  alloc("ALLOC fd_flags+O_APPEND", {kPage, 0, O_RDWR | O_CLOEXEC | O_APPEND, 0});
  alloc("ALLOC fd_flags+O_NONBLOCK", {kPage, 0, O_RDWR | O_CLOEXEC | O_NONBLOCK, 0});
  alloc("ALLOC heap_flags=1", {kPage, 0, O_RDWR | O_CLOEXEC, 1});
  alloc("ALLOC fd=5 on input", {kPage, 5, O_RDWR | O_CLOEXEC, 0});
  uapi::DmaHeapAllocationData data{kPage, 0, O_RDWR, 0};
  t.step(
      "heap ioctl nr=1",
      c.ioctl(h, uapi::iocNumber(uapi::kIocRead | uapi::kIocWrite, 'H', 1, sizeof(data)), &data));
  t.step("heap ioctl other magic", c.ioctl(h, uapi::kDmaBufIoctlSync, &data));
  std::array<std::byte, 16> bytes{};
  t.step("heap read", c.read(h, bytes));
  (void)c.close(heap->release());
}

void bufferFile(FdCalls& c, Transcript& t) {
  UniqueFd buf = allocate(c, t, 2 * kPage);
  if (!buf) {
    return;
  }
  const int b = buf.get();
  t.step("lseek(0, SEEK_END)", c.lseek(b, 0, SEEK_END));
  t.step("lseek(0, SEEK_SET)", c.lseek(b, 0, SEEK_SET));
  t.step("lseek(0, SEEK_CUR)", c.lseek(b, 0, SEEK_CUR));
  t.step("lseek(4096, SEEK_SET)", c.lseek(b, 4096, SEEK_SET));
  t.step("lseek(-1, SEEK_END)", c.lseek(b, -1, SEEK_END));
  std::array<std::byte, 16> bytes{};
  t.step("read", c.read(b, bytes));
  t.step("write", c.write(b, bytes));
  auto st = c.fstat(b);
  t.step("fstat", st);
  if (st.ok()) {
    t.note("st_size", std::to_string(st->size));
  }
  auto path = c.fdPath(b);
  t.step("readlink", path);
  if (path.ok()) {
    t.note("link", *path);
  }
  noteFdinfo(c, t, b, "buffer", {"size", "count", "exp_name", "name"});
  t.note("poll IN|OUT revents", pollName(pollOnce(c, b, POLLIN | POLLOUT)));
  t.note("poll 0 revents", pollName(pollOnce(c, b, 0)));
  t.note("poll PRI revents", pollName(pollOnce(c, b, POLLPRI)));
  t.step("unknown ioctl 'b' nr=9",
         c.ioctl(b, uapi::iocNumber(uapi::kIocWrite, 'b', 9, 8), nullptr));
  uapi::DmaBufSync sync{uapi::kDmaBufSyncStart | uapi::kDmaBufSyncRw};
  t.step("SYNC with a wrong size", c.ioctl(b, uapi::iocNumber(uapi::kIocWrite, 'b', 0, 4), &sync));
  t.step("close", c.close(buf.release()));
}

void bufferMmap(FdCalls& c, Transcript& t) {
  UniqueFd buf = allocate(c, t, 2 * kPage);
  if (!buf) {
    return;
  }
  const int b = buf.get();
  {
    auto m =
        t.kept("mmap 8192 RW SHARED", c.mmap(b, 2 * kPage, PROT_READ | PROT_WRITE, MAP_SHARED, 0));
    if (m.ok()) {
      std::memset(m->data(), 0x5a, m->size());
      auto again = c.mmap(b, kPage, PROT_READ, MAP_SHARED, kPage);
      t.step("mmap 4096 R SHARED offset 4096", again);
      if (again.ok()) {
        const auto* p = reinterpret_cast<const unsigned char*>(again->data());
        t.note("second mapping sees the first's bytes",
               p[0] == 0x5a && p[kPage - 1] == 0x5a ? "yes" : "no");
      }
    }
  }
  {
    auto shared = c.mmap(b, kPage, PROT_READ | PROT_WRITE, MAP_SHARED, 0);
    auto priv =
        t.kept("mmap 4096 RW PRIVATE", c.mmap(b, kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE, 0));
    if (shared.ok() && priv.ok()) {
      t.note("the private mapping sees the buffer's bytes",
             static_cast<unsigned char>(priv->data()[7]) == 0x5a ? "yes" : "no");
      priv->data()[7] = std::byte{0x11};
      t.note("its writes reach the buffer",
             static_cast<unsigned char>(shared->data()[7]) == 0x11 ? "yes" : "no");
    }
  }
  t.step("mmap 12288 (beyond the size)", c.mmap(b, 3 * kPage, PROT_READ, MAP_SHARED, 0));
  t.step("mmap 8192 at offset 4096", c.mmap(b, 2 * kPage, PROT_READ, MAP_SHARED, kPage));
  t.step("mmap offset 8192", c.mmap(b, kPage, PROT_READ, MAP_SHARED, 2 * kPage));
  t.step("mmap offset 100", c.mmap(b, kPage, PROT_READ, MAP_SHARED, 100));
  t.step("mmap length 0", c.mmap(b, 0, PROT_READ, MAP_SHARED, 0));
  t.step("close", c.close(buf.release()));

  UniqueFd ro = allocate(c, t, kPage, O_RDONLY | O_CLOEXEC);
  if (!ro) {
    return;
  }
  t.step("read-only fd: mmap RW SHARED",
         c.mmap(ro.get(), kPage, PROT_READ | PROT_WRITE, MAP_SHARED, 0));
  t.step("read-only fd: mmap R SHARED", c.mmap(ro.get(), kPage, PROT_READ, MAP_SHARED, 0));
  t.step("read-only fd: mmap RW PRIVATE",
         c.mmap(ro.get(), kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE, 0));
  t.step("read-only fd: SET_NAME", setName(c, ro.get(), "ro"));
  uapi::DmaBufSync sync{uapi::kDmaBufSyncStart | uapi::kDmaBufSyncWrite};
  t.step("read-only fd: SYNC START|WRITE", c.ioctl(ro.get(), uapi::kDmaBufIoctlSync, &sync));
  t.step("close read-only", c.close(ro.release()));
}

void cpuAccessSync(FdCalls& c, Transcript& t) {
  UniqueFd buf = allocate(c, t, kPage);
  if (!buf) {
    return;
  }
  auto sync = [&](std::string_view what, std::uint64_t flags) {
    uapi::DmaBufSync arg{flags};
    t.step(what, c.ioctl(buf.get(), uapi::kDmaBufIoctlSync, &arg));
  };
  using uapi::kDmaBufSyncEnd, uapi::kDmaBufSyncRead, uapi::kDmaBufSyncRw, uapi::kDmaBufSyncStart,
      uapi::kDmaBufSyncWrite;
  sync("SYNC START (no direction)", kDmaBufSyncStart);
  sync("SYNC END (no direction)", kDmaBufSyncEnd);
  sync("SYNC END|RW before any START", kDmaBufSyncEnd | kDmaBufSyncRw);
  sync("SYNC START|READ", kDmaBufSyncStart | kDmaBufSyncRead);
  sync("SYNC START|READ again", kDmaBufSyncStart | kDmaBufSyncRead);
  sync("SYNC END|WRITE", kDmaBufSyncEnd | kDmaBufSyncWrite);
  sync("SYNC START|RW", kDmaBufSyncStart | kDmaBufSyncRw);
  sync("SYNC END|RW", kDmaBufSyncEnd | kDmaBufSyncRw);
  sync("SYNC flags 0x8", 0x8 | kDmaBufSyncRw);
  sync("SYNC flags 1<<40", (1ULL << 40) | kDmaBufSyncRw);
  t.step("SYNC NULL argument", c.ioctl(buf.get(), uapi::kDmaBufIoctlSync, nullptr));
  t.step("close", c.close(buf.release()));
}

void bufferName(FdCalls& c, Transcript& t) {
  UniqueFd buf = allocate(c, t, kPage);
  if (!buf) {
    return;
  }
  const int b = buf.get();
  noteFdinfo(c, t, b, "before any name", {"name"});
  const std::string n31(31, 'n');
  const std::string n32(32, 'x');
  t.step("SET_NAME 31 characters", setName(c, b, n31.c_str()));
  noteFdinfo(c, t, b, "after 31", {"name"});
  t.step("SET_NAME 32 characters", setName(c, b, n32.c_str()));
  noteFdinfo(c, t, b, "after 32", {"name"});
  t.step("SET_NAME with '/'", setName(c, b, "a/b"));
  auto link = c.fdPath(b);
  t.note("link after 'a/b'", link.ok() ? *link : "error");
  t.step("SET_NAME NULL", setName(c, b, nullptr));
  t.step("SET_NAME \"\"", setName(c, b, ""));
  noteFdinfo(c, t, b, "after empty", {"name"});
  t.step("SET_NAME_A (32-bit number)", setName(c, b, "a", uapi::kDmaBufSetNameA));
  t.step("close", c.close(buf.release()));
}

void exportImport(FdCalls& c, Transcript& t) {
  UniqueFd buf = allocate(c, t, kPage);
  if (!buf) {
    return;
  }
  const int b = buf.get();
  using uapi::kDmaBufSyncEnd, uapi::kDmaBufSyncRead, uapi::kDmaBufSyncRw, uapi::kDmaBufSyncWrite;
  exportSyncFile(c, t, b, 0, "flags=0");
  exportSyncFile(c, t, b, kDmaBufSyncRead | kDmaBufSyncEnd, "flags=READ|END");
  exportSyncFile(c, t, b, 0x100 | kDmaBufSyncRead, "flags=READ|0x100");
  UniqueFd rd = exportSyncFile(c, t, b, kDmaBufSyncRead, "flags=READ");
  UniqueFd rw = exportSyncFile(c, t, b, kDmaBufSyncRw, "flags=RW");
  if (rd) {
    noteFileInfo(c, t, rd.get(), "exported READ");
    t.note("exported READ poll IN|OUT", pollName(pollOnce(c, rd.get(), POLLIN | POLLOUT)));
    auto link = c.fdPath(rd.get());
    t.note("sync file link", link.ok() ? *link : "error");
    std::array<std::byte, 8> bytes{};
    t.step("sync file read", c.read(rd.get(), bytes));
    t.step("sync file lseek", c.lseek(rd.get(), 0, SEEK_SET));
    t.step("sync file mmap", c.mmap(rd.get(), kPage, PROT_READ, MAP_SHARED, 0));
    t.step("sync file unknown ioctl",
           c.ioctl(rd.get(), uapi::iocNumber(uapi::kIocWrite, '>', 9, 8), nullptr));
    uapi::SyncSetDeadline dl{1, 0};
    t.step("SET_DEADLINE", c.ioctl(rd.get(), uapi::kSyncIocSetDeadline, &dl));
    dl.pad = 1;
    t.step("SET_DEADLINE pad=1", c.ioctl(rd.get(), uapi::kSyncIocSetDeadline, &dl));
  }
  auto import = [&](std::string_view what, std::uint32_t flags, int fd) {
    uapi::DmaBufImportSyncFile arg{flags, fd};
    t.step(what, c.ioctl(b, uapi::kDmaBufIoctlImportSyncFile, &arg));
  };
  if (rw) {
    import("IMPORT_SYNC_FILE flags=WRITE", kDmaBufSyncWrite, rw.get());
    import("IMPORT_SYNC_FILE flags=RW", kDmaBufSyncRw, rw.get());
    import("IMPORT_SYNC_FILE flags=READ", kDmaBufSyncRead, rw.get());
    import("IMPORT_SYNC_FILE flags=0", 0, rw.get());
    import("IMPORT_SYNC_FILE flags=WRITE|END", kDmaBufSyncWrite | kDmaBufSyncEnd, rw.get());
  }
  import("IMPORT_SYNC_FILE fd=-1", kDmaBufSyncWrite, -1);
  import("IMPORT_SYNC_FILE fd=the buffer", kDmaBufSyncWrite, b);
  auto pipe = sys::pipe();
  if (pipe.ok()) {
    import("IMPORT_SYNC_FILE fd=a pipe", kDmaBufSyncWrite, pipe->first.get());
  }
  t.note("after imports: poll IN|OUT", pollName(pollOnce(c, b, POLLIN | POLLOUT)));
  UniqueFd after = exportSyncFile(c, t, b, kDmaBufSyncRw, "after imports flags=RW");
  if (after) {
    noteFileInfo(c, t, after.get(), "after imports");
    (void)c.close(after.release());
  }
  if (rd) {
    (void)c.close(rd.release());
  }
  if (rw) {
    (void)c.close(rw.release());
  }
  t.step("close", c.close(buf.release()));
}

void merge(FdCalls& c, Transcript& t) {
  UniqueFd buf = allocate(c, t, kPage);
  if (!buf) {
    return;
  }
  UniqueFd a = exportSyncFile(c, t, buf.get(), uapi::kDmaBufSyncRw, "a");
  UniqueFd b = exportSyncFile(c, t, buf.get(), uapi::kDmaBufSyncRead, "b");
  if (!a || !b) {
    return;
  }
  auto doMerge = [&](std::string_view what, int fd1, uapi::SyncMergeData data) -> UniqueFd {
    auto r = t.kept(what, c.ioctl(fd1, uapi::kSyncIocMerge, &data));
    return r.ok() ? UniqueFd::adopt(data.fence) : UniqueFd();
  };
  auto named = [](std::string_view name, int fd2) {
    uapi::SyncMergeData d{};
    std::memcpy(d.name, name.data(), std::min(name.size(), sizeof(d.name) - 1));
    d.fd2 = fd2;
    return d;
  };
  UniqueFd m = doMerge("MERGE a b", a.get(), named("merged", b.get()));
  if (m) {
    noteFileInfo(c, t, m.get(), "merged");
    char name[32] = {};
    uapi::SyncFileInfo info{};
    if (c.ioctl(m.get(), uapi::kSyncIocFileInfo, &info).ok()) {
      std::memcpy(name, info.name, sizeof(name) - 1);
      t.note("merged name", name);
    }
    UniqueFd nested = doMerge("MERGE merged a", m.get(), named("nested", a.get()));
    if (nested) {
      noteFileInfo(c, t, nested.get(), "nested");
      (void)c.close(nested.release());
    }
    (void)c.close(m.release());
  }
  UniqueFd self = doMerge("MERGE a a", a.get(), named("self", a.get()));
  if (self) {
    noteFileInfo(c, t, self.get(), "self");
    (void)c.close(self.release());
  }
  auto flagged = named("f", b.get());
  flagged.flags = 1;
  doMerge("MERGE flags=1", a.get(), flagged);
  auto padded = named("p", b.get());
  padded.pad = 1;
  doMerge("MERGE pad=1", a.get(), padded);
  doMerge("MERGE fd2=-1", a.get(), named("n", -1));
  doMerge("MERGE fd2=the buffer", a.get(), named("n", buf.get()));
  doMerge("MERGE on the buffer", buf.get(), named("n", a.get()));
  UniqueFd empty = doMerge("MERGE with an empty name", a.get(), named("", b.get()));
  if (empty) {
    uapi::SyncFileInfo info{};
    if (c.ioctl(empty.get(), uapi::kSyncIocFileInfo, &info).ok()) {
      t.note("empty-named merge has a name", info.name[0] != '\0' ? "yes" : "no");
    }
    (void)c.close(empty.release());
  }
  (void)c.close(a.release());
  (void)c.close(b.release());
  t.step("close", c.close(buf.release()));
}

// A sealed memfd of `pages` pages with `seals`.
UniqueFd memfd(std::uint64_t pages, int seals) {
  auto fd = sys::memfdCreate("lane", MFD_ALLOW_SEALING | MFD_CLOEXEC);
  if (!fd.ok() || !sys::ftruncate(fd->get(), static_cast<off_t>(pages * kPage)).ok()) {
    return {};
  }
  if (seals != 0 && !sys::addSeals(fd->get(), seals).ok()) {
    return {};
  }
  return std::move(*fd);
}

void udmabuf(FdCalls& c, Transcript& t) {
  auto dev = c.open("/dev/udmabuf", O_RDWR);
  t.step("open /dev/udmabuf", dev);
  if (!dev.ok()) {
    return;
  }
  const int d = dev->get();
  UniqueFd sealed = memfd(4, F_SEAL_SHRINK);
  UniqueFd unsealed = memfd(4, 0);
  UniqueFd writeSealed = memfd(4, F_SEAL_SHRINK | F_SEAL_WRITE);
  auto pipe = sys::pipe();
  auto create = [&](std::string_view what, int fd, std::uint32_t flags, std::uint64_t offset,
                    std::uint64_t size) {
    uapi::UdmabufCreate arg{static_cast<std::uint32_t>(fd), flags, offset, size};
    auto r = c.ioctl(d, uapi::kUdmabufCreate, &arg);
    t.stepFd(what, r);
    if (r.ok()) {
      const int buf = static_cast<int>(*r);
      auto st = c.fstat(buf);
      t.note(fmt::format("{}: st_size", what), st.ok() ? std::to_string(st->size) : "error");
      noteFdinfo(c, t, buf, what, {"exp_name"});
      (void)c.close(buf);
    }
  };
  create("CREATE offset 2048", sealed.get(), 0, kPage / 2, kPage);
  create("CREATE size 2048", sealed.get(), 0, 0, kPage / 2);
  create("CREATE size 0", sealed.get(), 0, 0, 0);
  create("CREATE past the end", sealed.get(), 0, kPage, 4 * kPage);
  create("CREATE no F_SEAL_SHRINK", unsealed.get(), 0, 0, kPage);
  create("CREATE F_SEAL_WRITE", writeSealed.get(), 0, 0, kPage);
  if (pipe.ok()) {
    create("CREATE a pipe", pipe->first.get(), 0, 0, kPage);
  }
  create("CREATE memfd=-1", -1, 0, 0, kPage);
  create("CREATE whole", sealed.get(), 0, 0, 4 * kPage);
  create("CREATE CLOEXEC", sealed.get(), uapi::kUdmabufFlagsCloexec, kPage, 2 * kPage);
  create("CREATE flags 0x100", sealed.get(), 0x100, 0, kPage);

  // The data: bytes written to the memfd are the buffer's.
  {
    uapi::UdmabufCreate arg{static_cast<std::uint32_t>(sealed.get()), 0, kPage, kPage};
    auto r = c.ioctl(d, uapi::kUdmabufCreate, &arg);
    if (r.ok()) {
      const std::array<std::byte, 4> bytes{std::byte{1}, std::byte{2}, std::byte{3}, std::byte{4}};
      (void)::pwrite(sealed.get(), bytes.data(), bytes.size(), kPage);
      auto m =
          t.kept("mmap the udmabuf", c.mmap(static_cast<int>(*r), kPage, PROT_READ, MAP_SHARED, 0));
      if (m.ok()) {
        t.note("the udmabuf shows the memfd's bytes",
               std::memcmp(m->data(), bytes.data(), bytes.size()) == 0 ? "yes" : "no");
      }
      t.step("udmabuf MAP_PRIVATE", c.mmap(static_cast<int>(*r), kPage, PROT_READ, MAP_PRIVATE, 0));
      const int u = static_cast<int>(*r);
      // The file and the exporter's own rules (udmabuf's end_cpu_access before any begin).
      auto sync = [&](std::string_view what, std::uint64_t flags) {
        uapi::DmaBufSync arg{flags};
        t.step(what, c.ioctl(u, uapi::kDmaBufIoctlSync, &arg));
      };
      sync("udmabuf SYNC END|RW before any START", uapi::kDmaBufSyncEnd | uapi::kDmaBufSyncRw);
      sync("udmabuf SYNC START|READ", uapi::kDmaBufSyncStart | uapi::kDmaBufSyncRead);
      sync("udmabuf SYNC END|READ", uapi::kDmaBufSyncEnd | uapi::kDmaBufSyncRead);
      sync("udmabuf SYNC END|RW after a START", uapi::kDmaBufSyncEnd | uapi::kDmaBufSyncRw);
      t.step("udmabuf lseek(0, SEEK_END)", c.lseek(u, 0, SEEK_END));
      t.step("udmabuf SET_NAME", setName(c, u, "frames"));
      auto link = c.fdPath(u);
      t.note("udmabuf link", link.ok() ? *link : "error");
      noteFdinfo(c, t, u, "udmabuf", {"size", "exp_name", "name"});
      t.note("udmabuf poll IN|OUT", pollName(pollOnce(c, u, POLLIN | POLLOUT)));
      UniqueFd exported = exportSyncFile(c, t, u, uapi::kDmaBufSyncRw, "of the udmabuf");
      if (exported) {
        noteFileInfo(c, t, exported.get(), "udmabuf's");
        (void)c.close(exported.release());
      }
      std::array<std::byte, 8> eight{};
      t.step("udmabuf read", c.read(u, eight));
      (void)c.close(u);
    }
  }

  struct List {
    uapi::UdmabufCreateList head;
    std::array<uapi::UdmabufCreateItem, 2> items;
  };
  auto list = [&](std::string_view what, List l) {
    auto r = c.ioctl(d, uapi::kUdmabufCreateList, &l);
    t.stepFd(what, r);
    if (r.ok()) {
      auto st = c.fstat(static_cast<int>(*r));
      t.note(fmt::format("{}: st_size", what), st.ok() ? std::to_string(st->size) : "error");
      (void)c.close(static_cast<int>(*r));
    }
  };
  const auto s = static_cast<std::uint32_t>(sealed.get());
  list("CREATE_LIST count=0", {{0, 0}, {}});
  list("CREATE_LIST two items", {{0, 2}, {{{s, 0, 0, kPage}, {s, 0, 2 * kPage, 2 * kPage}}}});
  list("CREATE_LIST pad=1", {{0, 1}, {{{s, 1, 0, kPage}, {}}}});
  list("CREATE_LIST an unsealed item",
       {{0, 2}, {{{s, 0, 0, kPage}, {static_cast<std::uint32_t>(unsealed.get()), 0, 0, kPage}}}});
  t.step("udmabuf unknown ioctl",
         c.ioctl(d, uapi::iocNumber(uapi::kIocWrite, 'u', 0x44, 8), nullptr));
  (void)c.close(dev->release());
}

}  // namespace

const std::vector<Scenario>& uapiScenarios() {
  static const std::vector<Scenario> scenarios{
      {"heap_allocation", heapAllocation},
      {"buffer_file", bufferFile},
      {"buffer_mmap", bufferMmap},
      {"cpu_access_sync", cpuAccessSync},
      {"buffer_name", bufferName},
      {"export_import", exportImport},
      {"merge", merge},
      {"udmabuf", udmabuf},
  };
  return scenarios;
}

}  // namespace zbuf::lane
