// Parsing ep0's descriptors and strings blobs (ffs_descriptors.h), step for step in the kernel's
// order, so each malformed blob fails with the kernel's errno at the kernel's check.
#include "devices/usb/ffs_descriptors.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "zbuf/base/sys.h"

namespace zbuf::usb::detail {
namespace {

constexpr const char* kDescsOp = "__ffs_data_got_descs";
constexpr const char* kStringsOp = "__ffs_data_got_strings";
constexpr unsigned kMaxEps = 31;  // FFS_MAX_EPS_COUNT (ep0 included)
constexpr unsigned kIfClassHid = 3;
constexpr unsigned kIfClassCcid = 0x0b;
constexpr std::size_t kInterfaceSize = 9;
constexpr std::size_t kEndpointSize = 7;
constexpr std::size_t kEndpointAudioSize = 9;
constexpr std::size_t kHidDescSize = 9;
constexpr std::size_t kCcidDescSize = 54;
constexpr std::size_t kOtgDescSize = 3;
constexpr std::size_t kIadSize = 8;
constexpr std::size_t kSsEpCompSize = 6;
constexpr std::size_t kOsDescHeaderSize = 11;  // struct usb_os_desc_header

std::uint32_t le32(std::span<const std::byte> b, std::size_t at) {
  std::uint32_t v = 0;
  for (std::size_t i = 0; i < 4; ++i) {
    v |= static_cast<std::uint32_t>(b[at + i]) << (8 * i);
  }
  return v;
}

std::uint8_t u8(std::span<const std::byte> b, std::size_t at) {
  return static_cast<std::uint8_t>(b[at]);
}

Error invalid(const char* op, std::string why) {
  return Error(EINVAL, op, std::move(why));
}

// eventfd_ctx_fdget: EBADF if the fd is not open, EINVAL if it is not an eventfd.
Result<UniqueFd> eventfdFromFd(int fd) {
  if (fd < 0 || ::fcntl(fd, F_GETFD) < 0) {
    return Error(EBADF, "eventfd_ctx_fdget", fmt::format("fd {} is not open", fd));
  }
  std::string link(64, '\0');
  const ssize_t n =
      ::readlink(fmt::format("/proc/self/fd/{}", fd).c_str(), link.data(), link.size());
  if (n < 0 ||
      std::string_view(link.data(), static_cast<std::size_t>(n)) != "anon_inode:[eventfd]") {
    return Error(EINVAL, "eventfd_ctx_fdget", fmt::format("fd {} is not an eventfd", fd));
  }
  return sys::dup(fd);
}

// What one speed's descriptors add up to (struct ffs_desc_helper).
struct Helper {
  unsigned interfaces = 0;
  unsigned eps = 0;
};

// The state carried from speed to speed (the parts of struct ffs_data the entities update).
struct Parse {
  FfsDescriptors& out;
  std::array<std::uint8_t, kMaxEps> addrmap{};  // eps_addrmap, 1-based
  unsigned speed = 0;
};

// __ffs_data_do_entity for an endpoint.
Result<void> endpointEntity(Parse& p, Helper& h, std::span<const std::byte> d) {
  ++h.eps;
  if (h.eps >= kMaxEps) {
    return invalid(kDescsOp, fmt::format("more than {} endpoints", kMaxEps - 1));
  }
  const std::uint8_t address = u8(d, 2);
  if (p.out.endpoints.empty() && p.out.interfaces == 0) {
    p.addrmap[h.eps] = address;
  } else if (p.addrmap[h.eps] != address) {
    return invalid(kDescsOp,
                   fmt::format("endpoint {} is {:#04x} at one speed and {:#04x} at another", h.eps,
                               p.addrmap[h.eps], address));
  }
  return {};
}

// ffs_do_single_desc: returns the descriptor's length.
Result<std::size_t> singleDescriptor(Parse& p, Helper& h, std::span<const std::byte> d,
                                     int& currentClass,
                                     std::vector<UsbEndpointDescriptor>& speedEps) {
  if (d.size() < 2) {
    return invalid(kDescsOp, "a descriptor shorter than 2 bytes");
  }
  const std::size_t length = u8(d, 0);
  const std::uint8_t type = u8(d, 1);
  if (d.size() < length) {
    return invalid(kDescsOp,
                   fmt::format("descriptor type {} of {} bytes is longer than the {} left", type,
                               length, d.size()));
  }
  const auto badLength = [&] {
    return invalid(kDescsOp, fmt::format("descriptor type {:#04x} with bLength {}", type, length));
  };
  const auto stringEntity = [&](std::uint8_t index) {
    if (index > p.out.stringsNeeded) {
      p.out.stringsNeeded = index;
    }
  };
  switch (type) {
    case kUsbDtDevice:
    case kUsbDtConfig:
    case kUsbDtString:
    case kUsbDtDeviceQualifier:
      return invalid(kDescsOp,
                     fmt::format("descriptor type {} is the gadget's, not a function's", type));
    case kUsbDtInterface: {
      if (length != kInterfaceSize) {
        return badLength();
      }
      const std::uint8_t number = u8(d, 2);
      if (number >= h.interfaces) {
        h.interfaces = number + 1U;
      }
      if (const std::uint8_t iInterface = u8(d, 8); iInterface != 0) {
        stringEntity(iInterface);
      }
      currentClass = u8(d, 5);
      return length;
    }
    case kUsbDtEndpoint: {
      if (length != kEndpointSize && length != kEndpointAudioSize) {
        return badLength();
      }
      if ((u8(d, 2) & kUsbEndpointNumberMask) == 0) {
        return invalid(kDescsOp, "an endpoint descriptor with endpoint number 0");
      }
      ZBUF_TRY(endpointEntity(p, h, d));
      UsbEndpointDescriptor desc{};
      std::memcpy(&desc, d.data(), length);
      speedEps.push_back(desc);
      return length;
    }
    case kUsbDtClassHid:
      if (currentClass == kIfClassHid) {
        return length == kHidDescSize ? Result<std::size_t>(length) : badLength();
      }
      if (currentClass == kIfClassCcid) {
        return length == kCcidDescSize ? Result<std::size_t>(length) : badLength();
      }
      return invalid(kDescsOp, fmt::format("class descriptor {:#04x} for interface class {}", type,
                                           currentClass));
    case kUsbDtOtg:
      return length == kOtgDescSize ? Result<std::size_t>(length) : badLength();
    case kUsbDtInterfaceAssociation:
      if (length != kIadSize) {
        return badLength();
      }
      if (const std::uint8_t iFunction = u8(d, 7); iFunction != 0) {
        stringEntity(iFunction);
      }
      return length;
    case kUsbDtSsEndpointComp:
      return length == kSsEpCompSize ? Result<std::size_t>(length) : badLength();
    default:
      return invalid(kDescsOp, fmt::format("descriptor type {:#04x} is not supported", type));
  }
}

// ffs_do_descs for one speed: returns the bytes its `count` descriptors take.
Result<std::size_t> speedDescriptors(Parse& p, unsigned count, std::span<const std::byte> d) {
  Helper h;
  int currentClass = -1;
  std::vector<UsbEndpointDescriptor> eps;
  std::size_t used = 0;
  for (unsigned n = 0; n < count; ++n) {
    auto len = singleDescriptor(p, h, d.subspan(used), currentClass, eps);
    ZBUF_TRY(len);
    used += *len;
  }
  // The counts must agree with the speeds parsed before.
  if (p.out.endpoints.empty() && p.out.interfaces == 0) {
    p.out.interfaces = h.interfaces;
    p.out.endpoints.resize(h.eps);
    for (unsigned i = 0; i < h.eps; ++i) {
      p.out.endpoints[i].address = p.addrmap[i + 1];
    }
  } else if (p.out.endpoints.size() != h.eps) {
    return invalid(kDescsOp, fmt::format("{} endpoints at one speed, {} at another",
                                         p.out.endpoints.size(), h.eps));
  } else if (p.out.interfaces != h.interfaces) {
    return invalid(kDescsOp, fmt::format("{} interfaces at one speed, {} at another",
                                         p.out.interfaces, h.interfaces));
  }
  for (std::size_t i = 0; i < eps.size() && i < p.out.endpoints.size(); ++i) {
    p.out.endpoints[i].descs[p.speed] = eps[i];
  }
  return used;
}

// ffs_do_os_descs, by the headers' lengths only.
Result<std::size_t> osDescriptors(unsigned count, std::span<const std::byte> d) {
  std::size_t used = 0;
  for (unsigned n = 0; n < count; ++n) {
    const auto rest = d.subspan(used);
    if (rest.size() < kOsDescHeaderSize) {
      return invalid(kDescsOp, "an MS OS descriptor header is cut short");
    }
    const std::uint32_t length = le32(rest, 1);
    if (length < kOsDescHeaderSize || rest.size() < length) {
      return invalid(kDescsOp,
                     fmt::format("MS OS descriptor of {} bytes with {} left", length, rest.size()));
    }
    used += length;
  }
  return used;
}

}  // namespace

Result<FfsDescriptors> parseFfsDescriptors(std::span<const std::byte> blob) {
  // ffs_ep0_write has checked len >= 16.
  if (blob.size() < 16 || le32(blob, 4) != blob.size()) {
    return invalid(kDescsOp,
                   fmt::format("the header's length is not the {} bytes written", blob.size()));
  }
  FfsDescriptors out;
  std::size_t at = 0;
  switch (le32(blob, 0)) {
    case kFfsDescriptorsMagic:
      out.flags = kFfsHasFsDesc | kFfsHasHsDesc;
      at = 8;
      break;
    case kFfsDescriptorsMagicV2:
      out.flags = le32(blob, 8);
      if ((out.flags & ~kFfsKnownFlags) != 0) {
        return Error(ENOSYS, kDescsOp, fmt::format("unknown flags {:#x}", out.flags));
      }
      at = 12;
      break;
    default:
      return invalid(kDescsOp, fmt::format("magic {} is not a descriptors magic", le32(blob, 0)));
  }
  if ((out.flags & kFfsEventfd) != 0) {
    if (blob.size() - at < 4) {
      return invalid(kDescsOp, "the eventfd is cut short");
    }
    ZBUF_ASSIGN_OR_RETURN(auto efd, eventfdFromFd(static_cast<int>(le32(blob, at))));
    out.eventfd = std::move(efd);
    at += 4;
  }
  std::array<unsigned, 3> counts{};
  for (unsigned i = 0; i < 3; ++i) {
    if ((out.flags & (1U << i)) == 0) {
      continue;
    }
    if (blob.size() - at < 4) {
      return invalid(kDescsOp, "the descriptor counts are cut short");
    }
    counts[i] = le32(blob, at);
    at += 4;
  }
  unsigned osCount = 0;
  if ((out.flags & kFfsHasMsOsDesc) != 0) {
    if (blob.size() - at < 4) {
      return invalid(kDescsOp, "the MS OS descriptor count is cut short");
    }
    osCount = le32(blob, at);
    at += 4;
  }
  const std::size_t raw = at;
  Parse p{out};
  for (unsigned i = 0; i < 3; ++i) {
    if (counts[i] == 0) {
      continue;
    }
    p.speed = i;
    auto used = speedDescriptors(p, counts[i], blob.subspan(at));
    ZBUF_TRY(used);
    at += *used;
  }
  if (osCount != 0) {
    auto used = osDescriptors(osCount, blob.subspan(at));
    ZBUF_TRY(used);
    at += *used;
  }
  if (at == raw || at != blob.size()) {
    return invalid(kDescsOp, at == raw
                                 ? "no descriptors"
                                 : fmt::format("{} bytes after the descriptors", blob.size() - at));
  }
  return out;
}

Result<void> parseFfsStrings(std::span<const std::byte> blob, unsigned stringsNeeded) {
  if (blob.size() < 16 || le32(blob, 0) != kFfsStringsMagic || le32(blob, 4) != blob.size()) {
    return invalid(kStringsOp, "not a strings blob of the length written (magic, length)");
  }
  const std::uint32_t strCount = le32(blob, 8);
  std::uint32_t langCount = le32(blob, 12);
  if ((strCount == 0) != (langCount == 0)) {
    return invalid(kStringsOp, fmt::format("str_count {} with lang_count {}", strCount, langCount));
  }
  if (strCount < stringsNeeded) {
    return invalid(kStringsOp,
                   fmt::format("{} strings where the descriptors use {}", strCount, stringsNeeded));
  }
  if (stringsNeeded == 0) {
    return {};  // the kernel looks no further
  }
  std::size_t at = 16;
  do {
    if (blob.size() - at < 3) {
      return invalid(kStringsOp, "a language table is cut short");
    }
    at += 2;  // the language code
    std::uint32_t perLang = strCount;
    do {
      const auto rest = blob.subspan(at);
      const void* nul = std::memchr(rest.data(), 0, rest.size());
      if (nul == nullptr) {
        return invalid(kStringsOp, "a string without its terminating NUL");
      }
      at += static_cast<std::size_t>(static_cast<const std::byte*>(nul) - rest.data()) + 1;
    } while (--perLang != 0);
  } while (--langCount != 0);
  if (at != blob.size()) {
    return invalid(kStringsOp, fmt::format("{} bytes after the strings", blob.size() - at));
  }
  return {};
}

}  // namespace zbuf::usb::detail
