// bufinfo: the process's live buffers as the kernel's debugfs file
// /sys/kernel/debug/dma_buf/bufinfo lists them, as text and in a structured form (for
// `zbuf info` and its JSON output).
//
// Text format (the kernel's, dma_buf_debug_show):
//   "\nDma-buf Objects:\n"
//   "size    \tflags   \tmode    \tcount   \texp_name\tino     \tname\n"
//   per buffer: "%08zu\t%08x\t%08x\t%08ld\t%s\t%08lu\t%s\n" (size, file flags, file mode,
//     references, exporter name, inode, name or "<none>"), then one line per fence of usage
//     <= READ: "\t<kernel|write|read> fence:<driver> <timeline> seq <n> signalled|unsignalled\n",
//     then "\tAttached Devices:\n", "\t<device>\n" each, "Total N devices attached\n\n";
//   footer "\nTotal N objects, M bytes\n".
// Differences, on purpose: `count` is the number of BufferPtr holders (the kernel counts file
// references); fences come from an unlocked consistent snapshot (the kernel takes the resv
// lock, which a caller holding it would deadlock on); `mode` is the kernel's f_mode for a
// dma-buf file (FMODE_OPENED | FMODE_LSEEK | read/write by access mode).
//
// Thread-safety: thread-safe; the listing is a snapshot.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "zbuf/base/result.h"

#pragma GCC visibility push(default)  // the public API: exported (cmake/ZbufLayers.cmake)

namespace zbuf {

struct BufInfoFence {
  std::string usage;  // "kernel", "write" or "read"
  std::string driver;
  std::string timeline;
  std::uint64_t seqno = 0;
  bool signalled = false;
};

struct BufInfoEntry {
  std::uint64_t size = 0;
  unsigned flags = 0;  // file flags (O_ACCMODE | O_NONBLOCK)
  unsigned mode = 0;   // f_mode
  long count = 0;      // references
  std::string exporterName;
  std::uint64_t inode = 0;
  std::optional<std::string> name;  // nullopt: never named ("<none>")
  std::vector<BufInfoFence> fences;
  std::vector<std::string> devices;  // attached devices, in attach order
};

struct BufInfo {
  std::vector<BufInfoEntry> buffers;  // in export order
  std::uint64_t totalBytes = 0;
};

// A snapshot of every live buffer.
[[nodiscard]] BufInfo collectBufInfo();
// The kernel's text for a snapshot.
[[nodiscard]] std::string formatBufInfo(const BufInfo& info);
// formatBufInfo(collectBufInfo()).
[[nodiscard]] std::string bufInfoText();
// The structured form of the kernel's text (formatBufInfo's inverse; what another process's
// /sys/kernel/debug/dma_buf/bufinfo shows, e.g. zbufd's): EINVAL for a text without the header.
[[nodiscard]] Result<BufInfo> parseBufInfo(std::string_view text);

}  // namespace zbuf
#pragma GCC visibility pop
