// bufinfo: collects from Buffer::liveBuffers() and prints with the kernel's formats.
#include "zbuf/core/bufinfo.h"

#include <fcntl.h>
#include <fmt/format.h>

#include <charconv>

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

namespace {

std::vector<std::string_view> splitTabs(std::string_view line) {
  std::vector<std::string_view> out;
  for (std::size_t pos = 0;;) {
    const std::size_t tab = line.find('\t', pos);
    out.push_back(line.substr(pos, tab == std::string_view::npos ? tab : tab - pos));
    if (tab == std::string_view::npos) {
      return out;
    }
    pos = tab + 1;
  }
}

template <typename T>
bool number(std::string_view s, T& out, int base = 10) {
  const auto* end = s.data() + s.size();
  auto [p, ec] = std::from_chars(s.data(), end, out, base);
  return ec == std::errc() && p == end;
}

}  // namespace

Result<BufInfo> parseBufInfo(std::string_view text) {
  constexpr const char* kOp = "parseBufInfo";
  if (text.find("Dma-buf Objects:") == std::string_view::npos) {
    return Error(EINVAL, kOp, "not a bufinfo listing (no \"Dma-buf Objects:\" header)");
  }
  BufInfo info;
  bool devices = false;
  for (std::size_t pos = 0; pos < text.size();) {
    const std::size_t eol = text.find('\n', pos);
    const std::string_view line =
        text.substr(pos, eol == std::string_view::npos ? std::string_view::npos : eol - pos);
    pos = eol == std::string_view::npos ? text.size() : eol + 1;
    if (line.empty() || line.starts_with("Dma-buf Objects:") || line.starts_with("size")) {
      continue;
    }
    if (line.starts_with("Total ")) {
      devices = false;
      // "Total N devices attached" ends a buffer; "Total N objects, M bytes" the listing.
      const std::size_t comma = line.find(" objects, ");
      const std::size_t unit = line.rfind(" bytes");
      if (comma != std::string_view::npos && unit != std::string_view::npos && unit > comma) {
        (void)number(line.substr(comma + 10, unit - comma - 10), info.totalBytes);
      }
      continue;
    }
    if (line.front() == '\t') {
      if (info.buffers.empty()) {
        return Error(EINVAL, kOp, "a fence or device line before the first buffer");
      }
      BufInfoEntry& e = info.buffers.back();
      const std::string_view rest = line.substr(1);
      if (rest == "Attached Devices:") {
        devices = true;
      } else if (devices) {
        e.devices.emplace_back(rest);
      } else if (const std::size_t f = rest.find(" fence:"); f != std::string_view::npos) {
        BufInfoFence fence;
        fence.usage = std::string(rest.substr(0, f));
        std::string_view r = rest.substr(f + 7);
        const std::size_t sp = r.find(' ');
        const std::size_t seq = r.rfind(" seq ");
        if (sp == std::string_view::npos || seq == std::string_view::npos || seq < sp) {
          return Error(EINVAL, kOp, fmt::format("a fence line that does not parse: '{}'", line));
        }
        fence.driver = std::string(r.substr(0, sp));
        fence.timeline = std::string(r.substr(sp + 1, seq - sp - 1));
        r = r.substr(seq + 5);
        const std::size_t sp2 = r.find(' ');
        if (sp2 == std::string_view::npos || !number(r.substr(0, sp2), fence.seqno)) {
          return Error(EINVAL, kOp, fmt::format("a fence line that does not parse: '{}'", line));
        }
        fence.signalled = r.substr(sp2 + 1) == "signalled";
        e.fences.push_back(std::move(fence));
      }
      continue;
    }
    const auto f = splitTabs(line);
    BufInfoEntry e;
    if (f.size() < 7 || !number(f[0], e.size) || !number(f[1], e.flags, 16) ||
        !number(f[2], e.mode, 16) || !number(f[3], e.count) || !number(f[5], e.inode)) {
      return Error(EINVAL, kOp, fmt::format("a buffer line that does not parse: '{}'", line));
    }
    e.exporterName = std::string(f[4]);
    std::string name(f[6]);
    for (std::size_t k = 7; k < f.size(); ++k) {  // a name with tabs in it
      name += '\t';
      name += f[k];
    }
    if (name != "<none>") {
      e.name = std::move(name);
    }
    devices = false;
    info.buffers.push_back(std::move(e));
  }
  return info;
}

}  // namespace zbuf
