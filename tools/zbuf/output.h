// --output FILE|-: what zbuf writes for other programs (zbuf stream's received samples, zbuf
// bench's JSON document), in full or not at all.
//
// A FILE is written to a temporary file beside it (FILE.zbuf-XXXXXX, mode 0666 less the umask,
// as a plain creat(2) would make it) and renamed over FILE by commit(): readers never see a
// half-written FILE, and an existing FILE stays as it was until the commit. abandon(), a
// failed write or the destructor without commit() remove the temporary. "-" is standard
// output, written as it goes (what a pipe has taken cannot be taken back); commit() and
// abandon() then do nothing.
//
// Thread-safety: one owner thread. temporaryPath() may be read from a signal handler once
// open() returned (the string does not change until the object is destroyed).
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "zbuf/base/result.h"
#include "zbuf/base/unique_fd.h"

namespace zbuf::cli {

class OutputFile {
 public:
  // "-" duplicates standard output (the caller may then point fd 1 elsewhere). EEXIST-style
  // errors come with a message naming the path: a directory, a missing or read-only folder.
  [[nodiscard]] static Result<OutputFile> open(const std::string& path);
  OutputFile(OutputFile&&) noexcept;
  OutputFile& operator=(OutputFile&&) = delete;
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;
  ~OutputFile();

  // Writes all of `data` (short writes and EINTR retried; SIGPIPE never raised: a closed pipe
  // is EPIPE). After a failure the temporary is removed and every later call fails.
  [[nodiscard]] Result<void> write(std::span<const std::byte> data);
  [[nodiscard]] Result<void> write(std::string_view text) {
    return write(std::as_bytes(std::span(text.data(), text.size())));
  }
  // Flushes the data to the disk (fdatasync) and renames the temporary over the path.
  [[nodiscard]] Result<void> commit();
  void abandon() noexcept;

  [[nodiscard]] bool isStdout() const noexcept { return path_ == "-"; }
  [[nodiscard]] const std::string& path() const noexcept { return path_; }
  [[nodiscard]] std::uint64_t bytesWritten() const noexcept { return written_; }
  // The temporary file's path while it exists, else nullptr.
  [[nodiscard]] const char* temporaryPath() const noexcept {
    return temporary_.empty() ? nullptr : temporary_.c_str();
  }

 private:
  OutputFile(std::string path, std::string temporary, UniqueFd fd);
  std::string path_;
  std::string temporary_;  // empty for "-" and once committed or abandoned
  UniqueFd fd_;
  std::uint64_t written_ = 0;
  bool failed_ = false;
};

// --output as zbuf's commands take it: nothing for an empty `path`; else opens `out` and, for
// "-", points fd 1 at standard error, so that the report printed to stdout from then on goes
// there and standard output carries only what `out` writes.
[[nodiscard]] Result<void> openOutput(const std::string& path, std::optional<OutputFile>& out);

// Writes `text` to `path` through an OutputFile (a whole file or none).
[[nodiscard]] Result<void> writeWholeFile(const std::string& path, std::string_view text);

}  // namespace zbuf::cli
