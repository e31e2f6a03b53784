// KernelCalls: every call is the real system call (kernel_calls.h).
#include "zbuf/uapi/kernel_calls.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <string>

namespace zbuf::uapi {

namespace {

Result<std::string> readWholeFile(const std::string& path) {
  ZBUF_ASSIGN_OR_RETURN(auto fd, sys::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  std::string out;
  std::array<std::byte, 4096> chunk{};
  for (;;) {
    ZBUF_ASSIGN_OR_RETURN(auto n, sys::read(fd.get(), chunk));
    if (n == 0) {
      return out;
    }
    out.append(reinterpret_cast<const char*>(chunk.data()), n);
  }
}

}  // namespace

Result<UniqueFd> KernelCalls::open(std::string_view path, int flags) {
  const std::string p(path);
  auto fd = sys::open(p.c_str(), flags | O_CLOEXEC);
  if (!fd.ok()) {
    return Error(fd.code(), "open", p);
  }
  return fd;
}

Result<long> KernelCalls::ioctl(int fd, unsigned long request, void* arg) {
  return sys::ioctl(fd, static_cast<unsigned>(request), arg);
}

Result<std::size_t> KernelCalls::read(int fd, std::span<std::byte> out) {
  return sys::read(fd, out);
}

Result<std::size_t> KernelCalls::write(int fd, std::span<const std::byte> in) {
  return sys::write(fd, in);
}

Result<int> KernelCalls::poll(std::span<struct pollfd> fds, int timeoutMs) {
  for (;;) {
    const int n = ::poll(fds.data(), fds.size(), timeoutMs);
    if (n >= 0) {
      return n;
    }
    if (errno != EINTR) {
      return Error(errno, "poll");
    }
  }
}

Result<sys::Mapping> KernelCalls::mmap(int fd, std::size_t length, int prot, int flags,
                                       std::uint64_t offset) {
  return sys::mmap(length, prot, flags, fd, static_cast<off_t>(offset));
}

Result<std::int64_t> KernelCalls::lseek(int fd, std::int64_t offset, int whence) {
  const off_t r = ::lseek(fd, offset, whence);
  if (r < 0) {
    return Error(errno, "lseek");
  }
  return static_cast<std::int64_t>(r);
}

Result<FileStat> KernelCalls::fstat(int fd) {
  ZBUF_ASSIGN_OR_RETURN(auto st, sys::fstat(fd));
  return FileStat{st.mode, st.size, st.inode, st.device, st.blockSize};
}

Result<std::string> KernelCalls::fdinfo(int fd) {
  auto text = readWholeFile(fmt::format("/proc/self/fdinfo/{}", fd));
  if (!text.ok()) {
    return Error(text.code() == ENOENT ? EBADF : text.code(), "fdinfo", fmt::format("fd {}", fd));
  }
  return text;
}

Result<std::string> KernelCalls::fdPath(int fd) {
  std::string buf(4096, '\0');
  const ssize_t n = ::readlink(fmt::format("/proc/self/fd/{}", fd).c_str(), buf.data(), buf.size());
  if (n < 0) {
    return Error(errno == ENOENT ? EBADF : errno, "readlink", fmt::format("fd {}", fd));
  }
  buf.resize(static_cast<std::size_t>(n));
  return buf;
}

Result<void> KernelCalls::close(int fd) {
  if (::close(fd) != 0) {
    return Error(errno, "close", fmt::format("fd {}", fd));
  }
  return {};
}

}  // namespace zbuf::uapi
