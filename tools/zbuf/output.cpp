#include "output.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "zbuf/base/sys.h"

namespace zbuf::cli {

namespace {

Error fileError(int code, const std::string& path, const char* what) {
  return Error(code, "output", fmt::format("{} {}: {}", what, path, std::strerror(code)));
}

std::string folderOf(const std::string& path) {
  const std::size_t slash = path.rfind('/');
  if (slash == std::string::npos) {
    return ".";
  }
  return slash == 0 ? "/" : path.substr(0, slash);
}

}  // namespace

OutputFile::OutputFile(std::string path, std::string temporary, UniqueFd fd)
    : path_(std::move(path)), temporary_(std::move(temporary)), fd_(std::move(fd)) {}

OutputFile::OutputFile(OutputFile&& other) noexcept
    : path_(std::move(other.path_)),
      temporary_(std::exchange(other.temporary_, std::string())),
      fd_(std::move(other.fd_)),
      written_(other.written_),
      failed_(other.failed_) {}

OutputFile::~OutputFile() {
  abandon();
}

Result<OutputFile> OutputFile::open(const std::string& path) {
  if (path.empty()) {
    return Error(EINVAL, "output", "--output needs a file name, or - for standard output");
  }
  if (path == "-") {
    auto fd = sys::dup(STDOUT_FILENO);
    if (!fd.ok()) {
      return fileError(fd.error().code(), "standard output", "cannot write to");
    }
    return OutputFile(path, "", std::move(*fd));
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    return Error(EISDIR, "output", fmt::format("--output {} is a directory", path));
  }
  std::vector<char> name(path.begin(), path.end());
  for (const char c : std::string_view(".zbuf-XXXXXX")) {
    name.push_back(c);
  }
  name.push_back('\0');
  const int fd = ::mkostemp(name.data(), O_CLOEXEC);
  if (fd < 0) {
    return fileError(errno, folderOf(path), "cannot create a file in");
  }
  UniqueFd owned = UniqueFd::adopt(fd);
  // mkostemp makes 0600; the finished file gets what open(path, O_CREAT, 0666) would give.
  const mode_t mask = ::umask(0);
  ::umask(mask);
  if (::fchmod(owned.get(), 0666 & ~mask) != 0) {
    const int e = errno;
    ::unlink(name.data());
    return fileError(e, path, "cannot set the mode of");
  }
  return OutputFile(path, std::string(name.data()), std::move(owned));
}

Result<void> OutputFile::write(std::span<const std::byte> data) {
  if (failed_ || !fd_) {
    return Error(EBADF, "output", fmt::format("--output {} is closed", path_));
  }
  while (!data.empty()) {
    auto n = sys::writeNoSigpipe(fd_.get(), data);
    if (!n.ok() || *n == 0) {
      const int e = n.ok() ? EIO : n.error().code();
      failed_ = true;
      abandon();
      if (e == EPIPE) {
        return Error(
            EPIPE, "output",
            fmt::format("--output {}: the reader closed the pipe after {} bytes", path_, written_));
      }
      return fileError(e, isStdout() ? "standard output" : path_, "cannot write to");
    }
    written_ += *n;
    data = data.subspan(*n);
  }
  return {};
}

Result<void> OutputFile::commit() {
  if (failed_ || !fd_) {
    return Error(EBADF, "output", fmt::format("--output {} is closed", path_));
  }
  if (isStdout()) {
    fd_.reset();
    return {};
  }
  if (::fdatasync(fd_.get()) != 0) {
    const int e = errno;
    abandon();
    return fileError(e, path_, "cannot write to");
  }
  fd_.reset();
  if (::rename(temporary_.c_str(), path_.c_str()) != 0) {
    const int e = errno;
    abandon();
    return fileError(e, path_, "cannot create");
  }
  temporary_.clear();
  return {};
}

void OutputFile::abandon() noexcept {
  fd_.reset();
  if (!temporary_.empty()) {
    ::unlink(temporary_.c_str());
    temporary_.clear();
  }
}

Result<void> openOutput(const std::string& path, std::optional<OutputFile>& out) {
  if (path.empty()) {
    return {};
  }
  ZBUF_ASSIGN_OR_RETURN(auto f, OutputFile::open(path));
  out.emplace(std::move(f));
  if (out->isStdout()) {
    std::fflush(stdout);
    if (::dup2(STDERR_FILENO, STDOUT_FILENO) < 0) {
      return fileError(errno, "standard error", "cannot send the report to");
    }
  }
  return {};
}

Result<void> writeWholeFile(const std::string& path, std::string_view text) {
  ZBUF_ASSIGN_OR_RETURN(auto out, OutputFile::open(path));
  ZBUF_TRY(out.write(text));
  return out.commit();
}

}  // namespace zbuf::cli
