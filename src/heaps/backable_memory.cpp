// The memory limit: MemAvailable and SwapFree from /proc/meminfo, and the cgroup v2 limit.
#include "backable_memory.h"

#include <fcntl.h>

#include <algorithm>
#include <charconv>
#include <string_view>

#include "zbuf/base/sys.h"

namespace zbuf::heap_detail {
namespace {

std::uint64_t meminfoField(const std::string& text, std::string_view key) {
  auto pos = text.find(key);
  if (pos == std::string::npos) {
    return 0;
  }
  pos += key.size();
  while (pos < text.size() && (text[pos] == ' ' || text[pos] == ':')) {
    ++pos;
  }
  std::uint64_t value = 0;
  std::from_chars(text.data() + pos, text.data() + text.size(), value);
  return value;
}

}  // namespace

Result<std::string> readSmallFile(const char* path) {
  ZBUF_ASSIGN_OR_RETURN(auto fd, sys::open(path, O_RDONLY));
  std::string text;
  std::byte buf[4096];
  for (;;) {
    ZBUF_ASSIGN_OR_RETURN(auto n, sys::read(fd.get(), buf));
    if (n == 0) {
      break;
    }
    text.append(reinterpret_cast<const char*>(buf), n);
  }
  return text;
}

std::uint64_t backableBytes() {
  std::uint64_t avail = ~std::uint64_t{0};
  if (auto meminfo = readSmallFile("/proc/meminfo"); meminfo.ok()) {
    avail = (meminfoField(*meminfo, "MemAvailable") + meminfoField(*meminfo, "SwapFree")) * 1024;
  }
  auto max = readSmallFile("/sys/fs/cgroup/memory.max");
  auto cur = readSmallFile("/sys/fs/cgroup/memory.current");
  if (max.ok() && cur.ok() && max->rfind("max", 0) != 0) {
    std::uint64_t m = 0;
    std::uint64_t c = 0;
    std::from_chars(max->data(), max->data() + max->size(), m);
    std::from_chars(cur->data(), cur->data() + cur->size(), c);
    avail = std::min(avail, m > c ? m - c : 0);
  }
  return avail;
}

}  // namespace zbuf::heap_detail
