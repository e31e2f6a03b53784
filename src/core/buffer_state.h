// Private state of Buffer and Attachment, shared by buffer.cpp and attachment.cpp.
#pragma once

#include <atomic>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include "zbuf/base/mutex.h"
#include "zbuf/core/buffer.h"
#include "zbuf/core/cpu_access_check.h"

namespace zbuf {

// Construction keys: only buffer.cpp and attachment.cpp can make these.
struct Buffer::Private {};
struct Attachment::Private {};

struct Buffer::State {
  std::uint64_t size = 0;
  std::string exporterName;
  int fileFlags = 0;
  SharedFd fd;
  std::shared_ptr<Resv> resv;
  std::shared_ptr<const ExporterOps> ops;
  std::shared_ptr<void> priv;
  std::uint64_t inode = 0;

  mutable Mutex nameMutex;
  std::string name ZBUF_GUARDED_BY(nameMutex);
  bool hasName ZBUF_GUARDED_BY(nameMutex) = false;

  // guards attachments and every Attachment::State::detached of this buffer
  mutable Mutex attachMutex;
  std::vector<std::pair<Attachment*, std::weak_ptr<Attachment>>> attachments
      ZBUF_GUARDED_BY(attachMutex);

  // guarded by the resv lock
  unsigned vmapCount = 0;
  std::span<std::byte> vmapSpan;
  std::atomic<unsigned> vmapCountSnapshot{0};  // for vmapCount() readers without the lock

  // Checked CPU access (cpu_access_check.h): -1 the process default, 0 off, 1 on.
  std::atomic<int> cpuCheck{-1};
  Mutex guardMutex;                                                    // guards guard's creation
  std::shared_ptr<CpuMappingGuard> guard ZBUF_GUARDED_BY(guardMutex);  // at the first checked mmap
  std::atomic<CpuMappingGuard*> guardRaw{nullptr};  // guard, for the SYNC paths (no lock)

  // Removes `attachment` from the list and runs the exporter's detach, once.
  void detach(Buffer& buffer, Attachment& attachment);
};

struct Attachment::State {
  BufferPtr buffer;
  std::shared_ptr<Device> device;
  std::optional<ImporterOps> importer;
  bool detached = false;                  // guarded by the buffer's attachMutex
  std::atomic<unsigned> pinCount{0};      // dma_buf_pin count; changed with the resv lock held
  std::atomic<unsigned> pinnedForMap{0};  // pins taken by map for a static importer
  std::atomic<unsigned> mapCount{0};
};

}  // namespace zbuf
