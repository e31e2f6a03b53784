// A program written against an installed zbuf (scripts/consumers.sh builds it outside the tree):
// a buffer from the system heap, mapped, written inside a SYNC bracket, read back through a
// second mapping, and its write fence exported as a sync file that poll() finds signalled.
// Kernel names only, with zbuf's fd-level calls in place of the libc ones.
//
// zbuf_consumer_run() returns 0 when every step gave the kernel's answer; it is main()'s body
// in the executables and the entry point of the plugin loaded with dlopen().
#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>

#include <array>
#include <cstdint>
#include <cstdio>
#include <cstring>

#include "zbuf/uapi/calls.h"
#include "zbuf/uapi/linux_uapi.h"

namespace k = zbuf::uapi;

namespace {

constexpr std::size_t kLen = 1 << 20;

int fail(const char* what, const zbuf::Error& e) {
  std::fprintf(stderr, "zbuf consumer: %s: %s\n", what, e.describe().c_str());
  return 1;
}

int fail(const char* what) {
  std::fprintf(stderr, "zbuf consumer: %s\n", what);
  return 1;
}

}  // namespace

extern "C" __attribute__((visibility("default"))) int zbuf_consumer_run() {
  auto heap = k::open("/dev/dma_heap/system", O_RDONLY | O_CLOEXEC);
  if (!heap.ok()) {
    return fail("open /dev/dma_heap/system", heap.error());
  }
  dma_heap_allocation_data alloc{};
  alloc.len = kLen;
  alloc.fd_flags = O_RDWR | O_CLOEXEC;
  if (auto r = k::ioctl(heap->get(), DMA_HEAP_IOCTL_ALLOC, &alloc); !r.ok()) {
    return fail("DMA_HEAP_IOCTL_ALLOC", r.error());
  }
  zbuf::UniqueFd buf = zbuf::UniqueFd::adopt(static_cast<int>(alloc.fd));

  auto cpu = k::mmap(buf.get(), kLen, PROT_READ | PROT_WRITE, MAP_SHARED);
  if (!cpu.ok()) {
    return fail("mmap", cpu.error());
  }
  dma_buf_sync sync{};
  sync.flags = DMA_BUF_SYNC_START | DMA_BUF_SYNC_WRITE;
  if (auto r = k::ioctl(buf.get(), DMA_BUF_IOCTL_SYNC, &sync); !r.ok()) {
    return fail("DMA_BUF_IOCTL_SYNC start", r.error());
  }
  std::memset(cpu->data(), 0x5a, kLen);
  sync.flags = DMA_BUF_SYNC_END | DMA_BUF_SYNC_WRITE;
  if (auto r = k::ioctl(buf.get(), DMA_BUF_IOCTL_SYNC, &sync); !r.ok()) {
    return fail("DMA_BUF_IOCTL_SYNC end", r.error());
  }
  sync.flags = DMA_BUF_SYNC_START;  // neither READ nor WRITE
  if (k::ioctl(buf.get(), DMA_BUF_IOCTL_SYNC, &sync).code() != EINVAL) {
    return fail("DMA_BUF_IOCTL_SYNC without READ or WRITE is not EINVAL");
  }

  auto again = k::mmap(buf.get(), kLen, PROT_READ, MAP_SHARED);  // the same pages
  if (!again.ok()) {
    return fail("second mmap", again.error());
  }
  sync.flags = DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ;
  if (auto r = k::ioctl(buf.get(), DMA_BUF_IOCTL_SYNC, &sync); !r.ok()) {
    return fail("DMA_BUF_IOCTL_SYNC read", r.error());
  }
  const bool same =
      again->data()[0] == std::byte{0x5a} && again->data()[kLen - 1] == std::byte{0x5a};
  sync.flags = DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ;
  if (auto r = k::ioctl(buf.get(), DMA_BUF_IOCTL_SYNC, &sync); !r.ok()) {
    return fail("DMA_BUF_IOCTL_SYNC read end", r.error());
  }
  if (!same) {
    return fail("the second mapping does not see the bytes written through the first");
  }

  dma_buf_export_sync_file exp{};
  exp.flags = DMA_BUF_SYNC_WRITE;
  exp.fd = -1;
  if (auto r = k::ioctl(buf.get(), DMA_BUF_IOCTL_EXPORT_SYNC_FILE, &exp); !r.ok()) {
    return fail("DMA_BUF_IOCTL_EXPORT_SYNC_FILE", r.error());
  }
  zbuf::UniqueFd syncFile = zbuf::UniqueFd::adopt(exp.fd);
  std::array<pollfd, 1> p{{{syncFile.get(), POLLIN, 0}}};
  auto ready = k::poll(p, 1000);
  if (!ready.ok() || *ready != 1 || (p[0].revents & POLLIN) == 0) {
    return fail("the exported sync file is not signalled (no fence was attached)");
  }
  sync_file_info info{};
  if (auto r = k::ioctl(syncFile.get(), SYNC_IOC_FILE_INFO, &info); !r.ok()) {
    return fail("SYNC_IOC_FILE_INFO", r.error());
  }
  if (info.status != 1) {
    return fail("SYNC_IOC_FILE_INFO: status is not 1 (signalled)");
  }
  if (auto r = k::close(std::move(syncFile)); !r.ok()) {
    return fail("close sync file", r.error());
  }
  if (auto r = k::close(std::move(buf)); !r.ok()) {
    return fail("close buffer", r.error());
  }
  std::printf("zbuf consumer: heap, map, SYNC, sync file: ok\n");
  return 0;
}
