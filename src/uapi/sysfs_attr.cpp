// Sysfs-style attribute files: one File per open (its own position), the attribute shared.
#include "zbuf/uapi/sysfs_attr.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <memory>

namespace zbuf::uapi {
namespace {

constexpr std::int64_t kAttrSize = 4096;  // PAGE_SIZE: st_size, and the largest write

struct AttrNode {
  std::string path;
  SysfsAttr attr;
};

// NOLINTNEXTLINE(cppcoreguidelines-virtual-class-destructor) final, and a static never destroyed
class SysfsAttrOps final : public FileOperations {
 public:
  [[nodiscard]] std::string_view name() const noexcept override { return "sysfs"; }

  Result<std::size_t> read(const OpenFile& f, std::span<std::byte> out,
                           std::int64_t& pos) const override {
    ZBUF_ASSIGN_OR_RETURN(auto text, f.file().data<AttrNode>().attr.show());
    if (pos < 0 || pos >= static_cast<std::int64_t>(text.size())) {
      return std::size_t{0};
    }
    const std::size_t n = std::min(out.size(), text.size() - static_cast<std::size_t>(pos));
    std::memcpy(out.data(), text.data() + pos, n);
    pos += static_cast<std::int64_t>(n);
    return n;
  }

  Result<std::size_t> write(const OpenFile& f, std::span<const std::byte> in,
                            std::int64_t& /*pos*/) const override {
    if (in.size() >= static_cast<std::size_t>(kAttrSize)) {
      return Error(E2BIG, "sysfs write",
                   fmt::format("{} bytes: attributes take at most {}", in.size(), kAttrSize - 1));
    }
    const std::string_view text(reinterpret_cast<const char*>(in.data()), in.size());
    ZBUF_TRY(f.file().data<AttrNode>().attr.store(text));
    return in.size();
  }

  Result<std::int64_t> llseek(const OpenFile& /*f*/, std::int64_t offset, int whence,
                              std::int64_t& pos) const override {
    std::int64_t base = 0;
    switch (whence) {
      case SEEK_SET:
        break;
      case SEEK_CUR:
        base = pos;
        break;
      case SEEK_END:
        base = kAttrSize;
        break;
      default:
        return Error(EINVAL, "lseek", fmt::format("whence {}", whence));
    }
    if (offset < -base || base + offset > kAttrSize) {
      return Error(EINVAL, "lseek", fmt::format("offset {} outside the attribute", offset));
    }
    pos = base + offset;
    return pos;
  }

  void stat(const File& file, FileStat& st) const override {
    const SysfsAttr& attr = file.data<AttrNode>().attr;
    st.mode = S_IFREG | (attr.show ? 0444U : 0U) | (attr.store ? 0200U : 0U);
    st.size = kAttrSize;
  }

  [[nodiscard]] std::string linkName(const File& file) const override {
    return file.data<AttrNode>().path;
  }
};

static_assert(IsFileOperations<SysfsAttrOps>);
constinit const SysfsAttrOps kSysfsAttrOps;

std::string_view trimNewline(std::string_view text) {
  if (!text.empty() && text.back() == '\n') {
    text.remove_suffix(1);
  }
  return text;
}

}  // namespace

Result<void> addSysfsAttr(Context& context, std::string path, SysfsAttr attr) {
  auto node = std::make_shared<AttrNode>(AttrNode{path, std::move(attr)});
  return context.addNode(std::move(path), [node](Context& ctx, int flags) -> Result<UniqueFd> {
    const int mode = flags & O_ACCMODE;
    if ((mode != O_RDONLY && !node->attr.store) || (mode != O_WRONLY && !node->attr.show)) {
      return Error(EACCES, "open", fmt::format("{}: permission denied", node->path));
    }
    return ctx.installFile(kSysfsAttrOps, node, "sysfs", flags);
  });
}

Result<bool> parseSysfsBool(std::string_view text) {
  text = trimNewline(text);
  if (text == "1" || text == "y" || text == "Y" || text == "on" || text == "ON" || text == "On") {
    return true;
  }
  if (text == "0" || text == "n" || text == "N" || text == "off" || text == "OFF" ||
      text == "Off") {
    return false;
  }
  return Error(EINVAL, "kstrtobool", fmt::format("'{}' is not a boolean", text));
}

Result<std::uint64_t> parseSysfsU64(std::string_view text) {
  text = trimNewline(text);
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec == std::errc::invalid_argument || end != text.data() + text.size()) {
    return Error(EINVAL, "kstrtoull", fmt::format("'{}' is not a number", text));
  }
  if (ec == std::errc::result_out_of_range) {
    return Error(ERANGE, "kstrtoull", fmt::format("'{}' is out of range", text));
  }
  return value;
}

}  // namespace zbuf::uapi
