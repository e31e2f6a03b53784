// Private to the FunctionFS emulation: parsing what an application writes to ep0, with the
// checks and errnos of the kernel's __ffs_data_got_descs, ffs_do_descs, ffs_do_single_desc,
// __ffs_data_do_entity and __ffs_data_got_strings (fs/usb/gadget/function/f_fs.c, 6.12):
//
//   descriptors: the header's length is not the write's length, an unknown magic, a descriptor
//   shorter than 2 bytes or longer than what is left, a descriptor type a function cannot have
//   (device, configuration, string, qualifier, ...), a wrong bLength for its type, endpoint
//   number 0, 31 or more endpoints, speeds that disagree on the endpoint count, the interface
//   count or an endpoint's address, no descriptor at all, bytes left over: EINVAL; flags beyond
//   the eight the kernel knows: ENOSYS; the FUNCTIONFS_EVENTFD fd: EBADF (not open), EINVAL
//   (not an eventfd).
//   strings: shorter than 16 bytes, a wrong magic or length, exactly one of the string and
//   language counts 0, fewer strings than the descriptors' highest string index, a string
//   without its NUL, bytes left over: EINVAL. When the descriptors need no string, the rest of
//   the blob is not looked at (as the kernel).
//
// MS OS descriptors (FUNCTIONFS_HAS_MS_OS_DESC) are walked by their headers' lengths, their
// contents are not validated (the kernel checks the extended compat/property fields).
//
// Thread-safety: pure functions.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "zbuf/base/result.h"
#include "zbuf/base/unique_fd.h"
#include "zbuf/devices/usb/functionfs_uapi.h"

namespace zbuf::usb::detail {

// One endpoint of the function (ep1, ep2, ... in the order of the descriptors).
struct FfsEndpointInfo {
  std::uint8_t address = 0;  // bEndpointAddress as written (bit 7: IN)
  // The endpoint descriptor per speed: [0] full, [1] high, [2] super (bLength 7 or 9).
  std::array<std::optional<UsbEndpointDescriptor>, 3> descs;
};

struct FfsDescriptors {
  std::uint32_t flags = 0;
  UniqueFd eventfd;            // FUNCTIONFS_EVENTFD: a dup of the application's eventfd
  unsigned interfaces = 0;     // interface numbers used (highest + 1)
  unsigned stringsNeeded = 0;  // the highest string index the descriptors use
  std::vector<FfsEndpointInfo> endpoints;
};

[[nodiscard]] Result<FfsDescriptors> parseFfsDescriptors(std::span<const std::byte> blob);
[[nodiscard]] Result<void> parseFfsStrings(std::span<const std::byte> blob, unsigned stringsNeeded);

}  // namespace zbuf::usb::detail
