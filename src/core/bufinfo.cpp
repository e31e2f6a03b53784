// bufinfo: collects from Buffer::liveBuffers() and prints with the kernel's formats.
#include "zbuf/core/bufinfo.h"

#include <fcntl.h>
#include <fmt/format.h>

#include "zbuf/core/buffer.h"
#include "zbuf/core/fence.h"

namespace zbuf {
namespace {

constexpr unsigned kFmodeRead = 0x1;
constexpr unsigned kFmodeWrite = 0x2;
constexpr unsigned kFmodeLseek = 0x4;
constexpr unsigned kFmodeOpened = 0x80000;

unsigned fileMode(int flags) {
  unsigned mode = kFmodeOpened | kFmodeLseek;
  const int acc = flags & O_ACCMODE;
  if (acc == O_RDONLY || acc == O_RDWR) {
    mode |= kFmodeRead;
  }
  if (acc == O_WRONLY || acc == O_RDWR) {
    mode |= kFmodeWrite;
  }
  return mode;
}

}  // namespace

BufInfo collectBufInfo() {
  BufInfo info;
  std::vector<BufferPtr> live = Buffer::liveBuffers();
  for (const BufferPtr& b : live) {
    BufInfoEntry e;
    e.size = b->size();
    e.flags = static_cast<unsigned>(b->fileFlags());
    e.mode = fileMode(b->fileFlags());
    e.count = b.use_count() - 1;  // not counting the snapshot's own reference
    e.exporterName = b->exporterName();
    e.inode = b->inode();
    if (b->hasName()) {
      e.name = b->name();
    }
    for (const Resv::Entry& f : b->resv().entries(ResvUsage::Read)) {
      e.fences.push_back({toString(f.usage), std::string(f.fence->driverName()),
                          std::string(f.fence->timelineName()), f.fence->seqno(),
                          f.fence->isSignaled()});
    }
    for (const AttachmentPtr& a : b->attachments()) {
      e.devices.push_back(a->device().name());
    }
    info.totalBytes += e.size;
    info.buffers.push_back(std::move(e));
  }
  return info;
}

std::string formatBufInfo(const BufInfo& info) {
  std::string out = "\nDma-buf Objects:\n";
  out += fmt::format("{:<8}\t{:<8}\t{:<8}\t{:<8}\texp_name\t{:<8}\tname\n", "size", "flags", "mode",
                     "count", "ino");
  for (const BufInfoEntry& e : info.buffers) {
    out += fmt::format("{:08}\t{:08x}\t{:08x}\t{:08}\t{}\t{:08}\t{}\n", e.size, e.flags, e.mode,
                       e.count, e.exporterName, e.inode, e.name ? *e.name : "<none>");
    for (const BufInfoFence& f : e.fences) {
      out += fmt::format("\t{} fence:{} {} seq {} {}signalled\n", f.usage, f.driver, f.timeline,
                         f.seqno, f.signalled ? "" : "un");
    }
    out += "\tAttached Devices:\n";
    for (const std::string& d : e.devices) {
      out += fmt::format("\t{}\n", d);
    }
    out += fmt::format("Total {} devices attached\n\n", e.devices.size());
  }
  out += fmt::format("\nTotal {} objects, {} bytes\n", info.buffers.size(), info.totalBytes);
  return out;
}

std::string bufInfoText() {
  return formatBufInfo(collectBufInfo());
}

}  // namespace zbuf
