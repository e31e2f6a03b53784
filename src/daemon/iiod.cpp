// IiodServer (iiod.h): the model read from sysfs, its XML, the request parser and the commands,
// the buffer's demultiplexing, and the accept and per-connection loops.
#include "zbuf/daemon/iiod.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string_view>

#include "zbuf/base/log.h"
#include "zbuf/base/sys.h"
#include "zbuf/uapi/linux_uapi.h"

ZBUF_LOG_CATEGORY(Iiod);

namespace zbuf::daemon {

struct IiodServer::Private {};

namespace {

constexpr std::string_view kSysIio = "/sys/bus/iio/devices/";
constexpr std::string_view kDebugIio = "/sys/kernel/debug/iio/";
constexpr std::size_t kAttrMax = 4095;        // a sysfs page, less one (kernfs)
constexpr std::size_t kChunkBytes = 1 << 20;  // hardware bytes read at a time in READBUF
constexpr unsigned kVersionMajor = 0;
constexpr unsigned kVersionMinor = 24;
constexpr const char* kVersionTag = "zbuf";

// An fd of the served context, closed through it.
class CallsFd {
 public:
  CallsFd(uapi::FdCalls& calls, UniqueFd fd) : calls_(&calls), fd_(fd.release()) {}
  CallsFd(uapi::FdCalls& calls, int fd) : calls_(&calls), fd_(fd) {}
  ~CallsFd() { reset(); }
  CallsFd(const CallsFd&) = delete;
  CallsFd& operator=(const CallsFd&) = delete;
  CallsFd(CallsFd&& o) noexcept : calls_(o.calls_), fd_(std::exchange(o.fd_, -1)) {}
  CallsFd& operator=(CallsFd&& o) noexcept {
    if (this != &o) {
      reset();
      calls_ = o.calls_;
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  [[nodiscard]] int get() const noexcept { return fd_; }
  void reset() {
    if (fd_ >= 0) {
      (void)calls_->close(std::exchange(fd_, -1));
    }
  }

 private:
  uapi::FdCalls* calls_;
  int fd_ = -1;
};

Result<std::string> readFile(uapi::FdCalls& calls, const std::string& path) {
  ZBUF_ASSIGN_OR_RETURN(auto opened, calls.open(path, O_RDONLY | O_CLOEXEC));
  const CallsFd fd(calls, std::move(opened));
  std::string out;
  std::array<std::byte, 1024> chunk{};
  while (out.size() <= kAttrMax) {
    ZBUF_ASSIGN_OR_RETURN(auto n, calls.read(fd.get(), chunk));
    if (n == 0) {
      return out;
    }
    out.append(reinterpret_cast<const char*>(chunk.data()), n);  // NOLINT: bytes as text
  }
  return Error(EFBIG, "iiod", fmt::format("{}: longer than a page", path));
}

Result<std::size_t> writeFile(uapi::FdCalls& calls, const std::string& path,
                              std::string_view value) {
  ZBUF_ASSIGN_OR_RETURN(auto opened, calls.open(path, O_WRONLY | O_CLOEXEC));
  const CallsFd fd(calls, std::move(opened));
  return calls.write(fd.get(), std::as_bytes(std::span(value.data(), value.size())));
}

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\0')) {
    s.pop_back();
  }
  return s;
}

std::optional<unsigned long long> parseNumber(std::string_view s, int base = 10) {
  unsigned long long v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v, base);
  if (ec != std::errc() || end != s.data() + s.size() || s.empty()) {
    return std::nullopt;
  }
  return v;
}

// --- the model -----------------------------------------------------------------------------

struct ChannelAttr {
  std::string name;      // as libiio names it ("raw")
  std::string filename;  // the file in the device's directory ("in_voltage0_raw")
};

struct Channel {
  std::string id;  // "voltage0"
  bool output = false;
  bool scan = false;
  long index = -1;
  bool isBe = false;
  bool isSigned = false;
  unsigned bits = 0;
  unsigned length = 0;  // storage bits
  unsigned repeat = 1;
  unsigned shift = 0;
  std::vector<ChannelAttr> attrs;
  [[nodiscard]] std::string prefix() const { return output ? "out_" : "in_"; }
  [[nodiscard]] std::size_t bytes() const { return std::size_t{length / 8} * repeat; }
};

struct DeviceModel {
  std::string id;  // "iio:device0"
  std::string name;
  std::string label;
  std::vector<Channel> channels;  // scan elements by index first, as libiio orders them
  std::vector<std::string> attrs;
  std::vector<std::string> bufferAttrs;
  std::vector<std::string> debugAttrs;
  bool hasTrigger = false;
  bool hasBuffer0 = false;
  [[nodiscard]] std::string sysfs() const { return std::string(kSysIio) + id; }
  [[nodiscard]] std::size_t words() const { return (channels.size() + 31) / 32; }
  [[nodiscard]] bool isOutput() const {
    return std::any_of(channels.begin(), channels.end(),
                       [](const Channel& c) { return c.scan && c.output; });
  }
  [[nodiscard]] const Channel* findChannel(std::string_view chn, bool output) const {
    for (const Channel& c : channels) {
      if (c.output == output && c.id == chn) {
        return &c;
      }
    }
    return nullptr;
  }
};

struct Model {
  std::vector<DeviceModel> devices;
  // As iio_context_find_device: the id, the label or the name.
  [[nodiscard]] const DeviceModel* find(std::string_view what) const {
    for (const DeviceModel& d : devices) {
      if (d.id == what || (!d.label.empty() && d.label == what) || d.name == what) {
        return &d;
      }
    }
    return nullptr;
  }
};

// "le:s16/16>>0", "be:u12/16X2>>4".
bool parseScanType(std::string_view t, Channel& c) {
  if (t.size() < 4 || t[2] != ':' || (t.substr(0, 2) != "le" && t.substr(0, 2) != "be")) {
    return false;
  }
  c.isBe = t.substr(0, 2) == "be";
  const char sign = t[3];
  if (sign != 's' && sign != 'u' && sign != 'S' && sign != 'U') {
    return false;
  }
  c.isSigned = sign == 's' || sign == 'S';
  std::string_view rest = t.substr(4);
  const auto slash = rest.find('/');
  const auto shiftAt = rest.find(">>");
  if (slash == std::string_view::npos || shiftAt == std::string_view::npos || shiftAt < slash) {
    return false;
  }
  std::string_view storage = rest.substr(slash + 1, shiftAt - slash - 1);
  const auto x = storage.find('X');
  auto bits = parseNumber(rest.substr(0, slash));
  auto length = parseNumber(storage.substr(0, x));
  auto shift = parseNumber(rest.substr(shiftAt + 2));
  std::optional<unsigned long long> repeat = 1;
  if (x != std::string_view::npos) {
    repeat = parseNumber(storage.substr(x + 1));
  }
  if (!bits || !length || !shift || !repeat || *length == 0 || *length % 8 != 0 || *length > 64 ||
      *bits > *length || *repeat == 0 || *repeat > 64 || *shift > 64) {
    return false;
  }
  c.bits = static_cast<unsigned>(*bits);
  c.length = static_cast<unsigned>(*length);
  c.repeat = static_cast<unsigned>(*repeat);
  c.shift = static_cast<unsigned>(*shift);
  return true;
}

Channel& channelFor(std::vector<Channel>& channels, std::string_view id, bool output) {
  for (Channel& c : channels) {
    if (c.id == id && c.output == output) {
      return c;
    }
  }
  Channel& c = channels.emplace_back();
  c.id = std::string(id);
  c.output = output;
  return c;
}

std::string withoutDigits(std::string_view id) {
  while (!id.empty() && std::isdigit(static_cast<unsigned char>(id.back())) != 0) {
    id.remove_suffix(1);
  }
  return std::string(id);
}

// The device attribute "in_voltage0_raw" (or shared "in_voltage_scale") of the channels.
void addChannelAttr(DeviceModel& dev, const std::string& file) {
  const bool output = file.starts_with("out_");
  const std::string_view rest = std::string_view(file).substr(output ? 4 : 3);
  // The channel whose id starts the name (the longest one).
  Channel* best = nullptr;
  for (Channel& c : dev.channels) {
    if (c.output == output && rest.starts_with(c.id) && rest.size() > c.id.size() + 1 &&
        rest[c.id.size()] == '_' && (best == nullptr || c.id.size() > best->id.size())) {
      best = &c;
    }
  }
  if (best != nullptr) {
    best->attrs.push_back({std::string(rest.substr(best->id.size() + 1)), file});
    return;
  }
  const auto underscore = rest.find('_');
  if (underscore == std::string_view::npos || underscore + 1 >= rest.size()) {
    dev.attrs.push_back(file);
    return;
  }
  const std::string type(rest.substr(0, underscore));
  const std::string name(rest.substr(underscore + 1));
  bool shared = false;
  for (Channel& c : dev.channels) {
    if (c.output == output && withoutDigits(c.id) == type && c.id != type) {
      c.attrs.push_back({name, file});
      shared = true;
    }
  }
  if (!shared) {
    channelFor(dev.channels, type, output).attrs.push_back({name, file});
  }
}

Model buildModel(uapi::FdCalls& calls, const std::vector<std::string>& paths) {
  std::map<std::string, std::vector<std::string>> files;  // device id -> relative paths
  std::map<std::string, std::vector<std::string>> debug;
  for (const std::string& p : paths) {
    for (auto [root, out] : {std::pair{kSysIio, &files}, std::pair{kDebugIio, &debug}}) {
      if (!p.starts_with(root)) {
        continue;
      }
      const std::string_view rest = std::string_view(p).substr(root.size());
      const auto slash = rest.find('/');
      if (slash == std::string_view::npos || slash == 0 || slash + 1 >= rest.size()) {
        continue;
      }
      (*out)[std::string(rest.substr(0, slash))].emplace_back(rest.substr(slash + 1));
    }
  }
  Model model;
  for (auto& [id, rels] : files) {
    if (!id.starts_with("iio:device") && !id.starts_with("trigger")) {
      continue;
    }
    DeviceModel dev;
    dev.id = id;
    std::vector<std::string> channelFiles;
    for (const std::string& rel : rels) {
      const std::string path = dev.sysfs() + "/" + rel;
      if (rel == "name" || rel == "label") {
        auto text = readFile(calls, path);
        (rel == "name" ? dev.name : dev.label) = text.ok() ? trimmed(*text) : std::string();
      } else if (rel == "dev" || rel == "uevent" ||
                 (rel.find('/') != std::string::npos && !rel.starts_with("scan_elements/") &&
                  !rel.starts_with("buffer/") && !rel.starts_with("buffer0/") &&
                  rel != "trigger/current_trigger")) {
        continue;  // not the device's: bufferK/ (K > 0), power/, ...
      } else if (rel.starts_with("scan_elements/")) {
        const std::string_view f = std::string_view(rel).substr(14);
        const bool output = f.starts_with("out_");
        if (!output && !f.starts_with("in_")) {
          continue;
        }
        const auto last = f.rfind('_');
        const std::string_view suffix = f.substr(last + 1);
        const std::string_view chn = f.substr(output ? 4 : 3, last - (output ? 4 : 3));
        if (chn.empty() || (suffix != "en" && suffix != "index" && suffix != "type")) {
          continue;
        }
        Channel& c = channelFor(dev.channels, chn, output);
        if (suffix == "index") {
          auto text = readFile(calls, path);
          auto v = text.ok() ? parseNumber(trimmed(*text)) : std::nullopt;
          c.index = v && *v < 0x7fffffff ? static_cast<long>(*v) : -1;
        } else if (suffix == "type") {
          auto text = readFile(calls, path);
          if (!text.ok() || !parseScanType(trimmed(*text), c)) {
            c.length = 0;
          }
        }
      } else if (rel.starts_with("buffer/")) {
        const std::string name = rel.substr(7);
        if (name.find('/') == std::string::npos && name != "length" && name != "enable" &&
            name != "watermark") {
          dev.bufferAttrs.push_back(name);
        }
      } else if (rel.starts_with("buffer0/")) {
        dev.hasBuffer0 = true;
      } else if (rel == "trigger/current_trigger") {
        dev.hasTrigger = true;
      } else if (rel.starts_with("in_") || rel.starts_with("out_")) {
        channelFiles.push_back(rel);
      } else {
        dev.attrs.push_back(rel);
      }
    }
    for (Channel& c : dev.channels) {
      c.scan = c.index >= 0 && c.length > 0;
      if (!c.scan) {
        c.index = -1;
      }
    }
    for (const std::string& f : channelFiles) {
      addChannelAttr(dev, f);
    }
    std::stable_sort(dev.channels.begin(), dev.channels.end(),
                     [](const Channel& a, const Channel& b) {
                       if (a.scan != b.scan) {
                         return a.scan;
                       }
                       return a.scan ? a.index < b.index : a.id < b.id;
                     });
    for (const std::string& rel : debug[id]) {
      if (rel.find('/') == std::string::npos) {
        dev.debugAttrs.push_back(rel);
      }
    }
    model.devices.push_back(std::move(dev));
  }
  std::sort(model.devices.begin(), model.devices.end(),
            [](const DeviceModel& a, const DeviceModel& b) {
              // The IIO devices first, then the triggers; iio:device2 before iio:device10.
              const bool ta = a.id.starts_with("trigger");
              const bool tb = b.id.starts_with("trigger");
              if (ta != tb) {
                return tb;
              }
              return a.id.size() != b.id.size() ? a.id.size() < b.id.size() : a.id < b.id;
            });
  return model;
}

// --- the context's XML, as libiio's xml backend reads it ------------------------------------

std::string escaped(std::string_view s) {
  std::string out;
  for (const char ch : s) {
    switch (ch) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '\'':
        out += "&apos;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += ch;
    }
  }
  return out;
}

// The document type libiio 0.24's xml backend validates against.
constexpr std::string_view kXmlHeader =
    "<?xml version=\"1.0\" encoding=\"utf-8\"?>"
    "<!DOCTYPE context ["
    "<!ELEMENT context (device | context-attribute)*>"
    "<!ELEMENT context-attribute EMPTY>"
    "<!ELEMENT device (channel | attribute | debug-attribute | buffer-attribute)*>"
    "<!ELEMENT channel (scan-element?, attribute*)>"
    "<!ELEMENT attribute EMPTY>"
    "<!ELEMENT scan-element EMPTY>"
    "<!ELEMENT debug-attribute EMPTY>"
    "<!ELEMENT buffer-attribute EMPTY>"
    "<!ATTLIST context name CDATA #REQUIRED version-major CDATA #REQUIRED "
    "version-minor CDATA #REQUIRED version-git CDATA #REQUIRED description CDATA #IMPLIED>"
    "<!ATTLIST context-attribute name CDATA #REQUIRED value CDATA #REQUIRED>"
    "<!ATTLIST device id CDATA #REQUIRED name CDATA #IMPLIED label CDATA #IMPLIED>"
    "<!ATTLIST channel id CDATA #REQUIRED type (input|output) #REQUIRED name CDATA #IMPLIED>"
    "<!ATTLIST scan-element index CDATA #REQUIRED format CDATA #REQUIRED scale CDATA #IMPLIED>"
    "<!ATTLIST attribute name CDATA #REQUIRED filename CDATA #IMPLIED>"
    "<!ATTLIST debug-attribute name CDATA #REQUIRED>"
    "<!ATTLIST buffer-attribute name CDATA #REQUIRED>"
    "]>";

std::string contextXml(const Model& model) {
  std::string x(kXmlHeader);
  x += fmt::format(
      "<context name=\"local\" version-major=\"{}\" version-minor=\"{}\" version-git=\"{}\" "
      "description=\"{}\" >",
      kVersionMajor, kVersionMinor, kVersionTag,
      escaped("zbuf: the emulated Linux IIO and DMA-BUF subsystems (zbufd)"));
  x += R"(<context-attribute name="zbuf,emulation" value="zbufd" />)";
  for (const DeviceModel& d : model.devices) {
    x += fmt::format(R"(<device id="{}")", escaped(d.id));
    if (!d.name.empty()) {
      x += fmt::format(R"( name="{}")", escaped(d.name));
    }
    if (!d.label.empty()) {
      x += fmt::format(R"( label="{}")", escaped(d.label));
    }
    x += " >";
    for (const Channel& c : d.channels) {
      x += fmt::format(R"(<channel id="{}" type="{}" >)", escaped(c.id),
                       c.output ? "output" : "input");
      if (c.scan) {
        const bool full = c.bits == c.length;
        const char sign = c.isSigned ? (full ? 'S' : 's') : (full ? 'U' : 'u');
        const std::string repeat = c.repeat > 1 ? fmt::format("X{}", c.repeat) : std::string();
        x += fmt::format(R"(<scan-element index="{}" format="{}e:{}{}/{}{}&gt;&gt;{}" />)", c.index,
                         c.isBe ? 'b' : 'l', sign, c.bits, c.length, repeat, c.shift);
      }
      for (const ChannelAttr& a : c.attrs) {
        x += fmt::format(R"(<attribute name="{}" filename="{}" />)", escaped(a.name),
                         escaped(a.filename));
      }
      x += "</channel>";
    }
    for (const std::string& a : d.attrs) {
      x += fmt::format("<attribute name=\"{}\" />", escaped(a));
    }
    for (const std::string& a : d.bufferAttrs) {
      x += fmt::format("<buffer-attribute name=\"{}\" />", escaped(a));
    }
    for (const std::string& a : d.debugAttrs) {
      x += fmt::format("<debug-attribute name=\"{}\" />", escaped(a));
    }
    x += "</device>";
  }
  x += "</context>";
  return x;
}

// --- sample layouts -------------------------------------------------------------------------

struct Field {
  std::size_t from;  // offset in the hardware frame
  std::size_t to;    // offset in the client's sample
  std::size_t bytes;
};

// Offsets of the scan elements of `channels` that `selected` picks, each aligned to its own size
// (the kernel's iio_compute_scan_bytes and libiio's sample size agree on this); the frame size,
// which the kernel rounds up to the largest element (`kernel`) and libiio does not.
std::pair<std::vector<std::size_t>, std::size_t> layout(const std::vector<Channel>& channels,
                                                        const std::vector<bool>& selected,
                                                        bool kernel) {
  std::vector<std::size_t> offsets(channels.size(), 0);
  std::size_t size = 0;
  std::size_t largest = 1;
  for (std::size_t i = 0; i < channels.size(); ++i) {
    const Channel& c = channels[i];
    if (!c.scan || !selected[i]) {
      continue;
    }
    const std::size_t len = c.bytes();
    if (size % len != 0) {
      size += len - size % len;
    }
    offsets[i] = size;
    size += len;
    largest = std::max(largest, len);
  }
  if (kernel && size % largest != 0) {
    size += largest - size % largest;
  }
  return {offsets, size};
}

// --- a connection ---------------------------------------------------------------------------

struct OpenDevice {
  OpenDevice(std::string device, uapi::FdCalls& calls)
      : id(std::move(device)), node(calls, -1), buffer(calls, -1) {}
  std::string id;
  CallsFd node;
  CallsFd buffer;
  std::string bufferDir;  // buffer0 or buffer
  std::uint64_t samples = 0;
  std::vector<bool> mask;  // the client's, by channel number
  std::string maskText;
  std::vector<Field> fields;
  std::size_t hwFrame = 0;
  std::size_t clientSample = 0;
  bool output = false;   // an output device's buffer: WRITEBUF, not READBUF
  bool tracked = false;  // in the server's list of buffers on
};

class Session {
 public:
  using Track = std::function<bool(const std::string&, bool)>;
  Session(uapi::FdCalls& calls, const IiodConfig& config, int socket, int stopFd,
          std::atomic<bool>& stopping, Track track)
      : calls_(calls),
        config_(config),
        socket_(socket),
        stopFd_(stopFd),
        stopping_(stopping),
        track_(std::move(track)) {
    in_.reserve(config.maxLine);
  }
  ~Session() {
    for (auto& [id, open] : opened_) {
      closeDevice(*open);
    }
  }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  void run() {
    refreshModel();
    for (;;) {
      auto line = readLine();
      if (!line) {
        return;
      }
      if (!handle(*line)) {
        return;
      }
    }
  }

 private:
  // --- the socket ---
  // Waits for input on the socket (or the stop event). false: end the connection.
  bool waitInput(std::chrono::milliseconds timeout) {
    std::array<pollfd, 2> fds{{{socket_, POLLIN | POLLRDHUP, 0}, {stopFd_, POLLIN, 0}}};
    const int ms = timeout.count() <= 0 ? -1 : static_cast<int>(timeout.count());
    for (;;) {
      const int r = ::poll(fds.data(), fds.size(), ms);
      if (r < 0 && errno == EINTR) {
        continue;
      }
      if (r <= 0 || fds[1].revents != 0 || stopping_.load()) {
        if (r == 0) {
          log(LogIiod, LogLevel::Info, "closing an idle connection");
        }
        return false;
      }
      return (fds[0].revents & (POLLIN | POLLRDHUP | POLLHUP | POLLERR)) != 0;
    }
  }

  // Fills in_ with what the socket has. false: closed, error, idle or stopped.
  bool fill(std::chrono::milliseconds timeout) {
    if (!waitInput(timeout)) {
      return false;
    }
    std::array<char, 4096> chunk{};
    // Room for a line, or for a WRITE's value (at most a page), whichever is larger.
    const std::size_t cap = std::max(config_.maxLine, kAttrMax + 1) + 1;
    const std::size_t room = std::min(chunk.size(), cap - std::min(cap, in_.size()));
    if (room == 0) {
      return false;
    }
    const ssize_t n = ::recv(socket_, chunk.data(), room, 0);
    if (n <= 0) {
      return false;
    }
    in_.append(chunk.data(), static_cast<std::size_t>(n));
    return true;
  }

  std::optional<std::string> readLine() {
    for (;;) {
      const auto nl = in_.find('\n');
      if (nl != std::string::npos && nl < config_.maxLine) {
        std::string line = in_.substr(0, nl);
        in_.erase(0, nl + 1);
        return line;
      }
      if (nl != std::string::npos || in_.size() >= config_.maxLine) {
        log(LogIiod, LogLevel::Warn, "a request line longer than {} bytes: closing",
            config_.maxLine);
        (void)reply(-EINVAL);
        return std::nullopt;
      }
      if (!fill(config_.idleTimeout)) {
        return std::nullopt;
      }
    }
  }

  // Exactly `n` bytes (n <= kAttrMax + 1).
  std::optional<std::string> readExact(std::size_t n) {
    while (in_.size() < n) {
      if (!fill(config_.idleTimeout)) {
        return std::nullopt;
      }
    }
    std::string out = in_.substr(0, n);
    in_.erase(0, n);
    return out;
  }

  bool discard(std::uint64_t n) {
    while (n > 0) {
      if (in_.empty() && !fill(config_.idleTimeout)) {
        return false;
      }
      const std::size_t take = static_cast<std::size_t>(std::min<std::uint64_t>(n, in_.size()));
      in_.erase(0, take);
      n -= take;
    }
    return true;
  }

  [[nodiscard]] bool send(std::string_view data) const {
    while (!data.empty()) {
      const ssize_t n = ::send(socket_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n <= 0) {
        return false;
      }
      data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }
  [[nodiscard]] bool reply(long value) const { return send(fmt::format("{}\n", value)); }

  // --- the model ---
  void refreshModel() {
    model_ = config_.listing ? buildModel(calls_, config_.listing()) : Model{};
  }

  // --- commands ---
  // false: end the connection.
  bool handle(std::string line) {
    log(LogIiod, LogLevel::Debug, "request: {}", line);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) {
      line.pop_back();
    }
    std::vector<std::string_view> w;
    std::string_view rest(line);
    while (!rest.empty()) {
      const auto start = rest.find_first_not_of(" \t");
      if (start == std::string_view::npos) {
        break;
      }
      rest.remove_prefix(start);
      const auto end = rest.find_first_of(" \t");
      w.push_back(rest.substr(0, end));
      rest.remove_prefix(end == std::string_view::npos ? rest.size() : end);
    }
    if (w.empty()) {
      return true;  // an empty line: nothing (iiod's END)
    }
    const auto is = [&](std::size_t i, std::string_view upper) {
      if (i >= w.size()) {
        return false;
      }
      std::string lower(upper);
      std::transform(lower.begin(), lower.end(), lower.begin(),
                     [](char ch) { return static_cast<char>(std::tolower(ch)); });
      return w[i] == upper || w[i] == lower;
    };
    const std::size_t n = w.size();
    if (n == 1 && (is(0, "EXIT") || is(0, "QUIT"))) {
      return false;
    }
    if (n == 1 && is(0, "HELP")) {
      return send(
          "Available commands: HELP EXIT PRINT ZPRINT VERSION TIMEOUT OPEN CLOSE READ WRITE "
          "READBUF WRITEBUF GETTRIG SETTRIG SET (libiio 0.24's iiod protocol)\n");
    }
    if (n == 1 && is(0, "VERSION")) {
      return send(fmt::format("{}.{}.{:<7.7}\n", kVersionMajor, kVersionMinor, kVersionTag));
    }
    if (n == 1 && is(0, "PRINT")) {
      refreshModel();
      const std::string xml = contextXml(model_);
      return send(fmt::format("{}\n", xml.size())) && send(xml) && send("\n");
    }
    if (n == 2 && is(0, "TIMEOUT")) {
      auto v = parseNumber(w[1]);
      timeoutMs_ = v ? static_cast<unsigned>(std::min<unsigned long long>(*v, 0x7fffffff)) : 0;
      return reply(0);
    }
    const bool deviceCommand = is(0, "OPEN") || is(0, "CLOSE") || is(0, "READ") ||
                               is(0, "READBUF") || is(0, "WRITEBUF") || is(0, "WRITE") ||
                               is(0, "SETTRIG") || is(0, "GETTRIG") || is(0, "SET");
    if (!deviceCommand || n < 2) {
      return reply(-EINVAL);  // iiod's parser: a syntax error
    }
    const DeviceModel* dev = model_.find(w[1]);
    if (is(0, "OPEN") && (n == 4 || (n == 5 && is(4, "CYCLIC")))) {
      return reply(dev == nullptr ? -ENODEV : open(*dev, w[2], w[3], n == 5));
    }
    if (is(0, "CLOSE") && n == 2) {
      return reply(dev == nullptr ? -ENODEV : close(*dev));
    }
    if (is(0, "READBUF") && n == 3) {
      auto bytes = parseNumber(w[2]);
      if (dev == nullptr || !bytes) {
        return reply(dev == nullptr ? -ENODEV : -EINVAL);
      }
      return readBuffer(*dev, *bytes);
    }
    if (is(0, "WRITEBUF") && n == 3) {
      auto bytes = parseNumber(w[2]);
      if (dev == nullptr || !bytes) {
        return reply(dev == nullptr ? -ENODEV : -EINVAL);
      }
      return writeBuffer(*dev, *bytes);
    }
    if (is(0, "GETTRIG") && n == 2) {
      return getTrigger(dev);
    }
    if (is(0, "SETTRIG") && (n == 2 || n == 3)) {
      return reply(setTrigger(dev, n == 3 ? std::optional(w[2]) : std::nullopt));
    }
    if (is(0, "SET") && n == 4 && is(2, "BUFFERS_COUNT")) {
      auto v = parseNumber(w[3]);
      if (dev == nullptr) {
        return reply(-ENODEV);
      }
      return reply(v && *v >= 1 && *v <= 0xffffffffULL ? 0 : -EINVAL);
    }
    if (is(0, "READ") || is(0, "WRITE")) {
      return attribute(dev, w, is(0, "WRITE"), is);
    }
    return reply(-EINVAL);
  }

  // READ <dev> [DEBUG|BUFFER|INPUT <chn>|OUTPUT <chn>] [<attr>]
  // WRITE <dev> [DEBUG|BUFFER|INPUT <chn>|OUTPUT <chn>] [<attr>] <bytes>
  template <typename Is>
  bool attribute(const DeviceModel* dev, const std::vector<std::string_view>& w, bool write,
                 const Is& is) {
    std::size_t i = 2;
    enum class Kind : std::uint8_t { Device, Debug, Buffer, Channel } kind = Kind::Device;
    const Channel* chn = nullptr;
    bool badChannel = false;
    if (is(i, "DEBUG")) {
      kind = Kind::Debug;
      ++i;
    } else if (is(i, "BUFFER")) {
      kind = Kind::Buffer;
      ++i;
    } else if (is(i, "INPUT") || is(i, "OUTPUT")) {
      if (i + 1 >= w.size()) {
        return reply(-EINVAL);
      }
      kind = Kind::Channel;
      chn = dev != nullptr ? dev->findChannel(w[i + 1], is(i, "OUTPUT")) : nullptr;
      badChannel = chn == nullptr;
      i += 2;
    }
    std::optional<std::string_view> attr;
    std::optional<unsigned long long> length;
    const std::size_t left = w.size() - i;
    if (write) {
      if (left != 1 && left != 2) {
        return reply(-EINVAL);
      }
      if (left == 2) {
        attr = w[i];
      }
      length = parseNumber(w.back());
      if (!length) {
        return reply(-EINVAL);
      }
    } else {
      if (left > 1) {
        return reply(-EINVAL);
      }
      if (left == 1) {
        attr = w[i];
      }
    }
    std::optional<std::string> value;
    if (write) {
      if (*length > kAttrMax + 1) {
        log(LogIiod, LogLevel::Warn, "WRITE of {} bytes: larger than a sysfs page, closing",
            *length);
        (void)reply(-EFBIG);
        return false;
      }
      value = readExact(static_cast<std::size_t>(*length));
      if (!value) {
        return false;
      }
    }
    if (dev == nullptr) {
      return reply(-ENODEV);
    }
    if (badChannel) {
      return reply(-ENXIO);
    }
    // The files the command names.
    std::vector<std::string> paths;
    const std::string base = dev->sysfs() + "/";
    const auto pathOf = [&](std::string_view name) -> std::string {
      switch (kind) {
        case Kind::Device:
          return base + std::string(name);
        case Kind::Debug:
          return std::string(kDebugIio) + dev->id + "/" + std::string(name);
        case Kind::Buffer:
          return base + "buffer/" + std::string(name);
        case Kind::Channel:
          for (const ChannelAttr& a : chn->attrs) {
            if (a.name == name) {
              return base + a.filename;
            }
          }
          return base + chn->prefix() + chn->id + "_" + std::string(name);
      }
      return {};
    };
    if (attr) {
      if (attr->find('/') != std::string_view::npos || *attr == "." || *attr == "..") {
        return reply(-EINVAL);  // no path outside the device
      }
      paths.push_back(pathOf(*attr));
    } else {
      const std::vector<std::string>* names = kind == Kind::Device   ? &dev->attrs
                                              : kind == Kind::Debug  ? &dev->debugAttrs
                                              : kind == Kind::Buffer ? &dev->bufferAttrs
                                                                     : nullptr;
      if (names != nullptr) {
        for (const std::string& a : *names) {
          paths.push_back(pathOf(a));
        }
      } else {
        for (const ChannelAttr& a : chn->attrs) {
          paths.push_back(base + a.filename);
        }
      }
    }
    if (write) {
      if (!attr) {
        return reply(-ENOSYS);  // writing every attribute at once: not served
      }
      // The kernel's store sees a C string: what follows a NUL is not the value.
      std::string_view text(*value);
      text = text.substr(0, text.find('\0'));
      auto r = writeFile(calls_, paths.front(), text);
      return reply(r.ok() ? static_cast<long>(value->size()) : -r.code());
    }
    if (attr) {
      auto r = readFile(calls_, paths.front());
      if (!r.ok()) {
        return reply(-r.code());
      }
      std::string v = *r;
      // As libiio's local backend: the last byte (the newline) becomes the terminating NUL.
      if (!v.empty() && v.back() == '\n') {
        v.back() = '\0';
      } else {
        v.push_back('\0');
      }
      return send(fmt::format("{}\n", v.size())) && send(v) && send("\n");
    }
    // Every attribute: for each, a big-endian 32-bit length (or negative errno), the value and
    // its NUL, padded to 4 bytes.
    std::string all;
    for (const std::string& p : paths) {
      auto r = readFile(calls_, p);
      std::string v;
      std::int32_t len = 0;
      if (r.ok()) {
        v = *r;
        if (!v.empty() && v.back() == '\n') {
          v.back() = '\0';
        } else {
          v.push_back('\0');
        }
        len = static_cast<std::int32_t>(v.size());
      } else {
        len = -r.code();
      }
      const auto u = static_cast<std::uint32_t>(len);
      all.push_back(static_cast<char>(u >> 24));
      all.push_back(static_cast<char>(u >> 16));
      all.push_back(static_cast<char>(u >> 8));
      all.push_back(static_cast<char>(u));
      all += v;
      while (all.size() % 4 != 0) {
        all.push_back('\0');
      }
    }
    return send(fmt::format("{}\n", all.size())) && send(all) && send("\n");
  }

  bool getTrigger(const DeviceModel* dev) {
    if (dev == nullptr) {
      return reply(-ENODEV);
    }
    auto r = readFile(calls_, dev->sysfs() + "/trigger/current_trigger");
    if (!r.ok()) {
      return reply(-r.code());
    }
    const std::string name = trimmed(*r);
    if (name.empty()) {
      return reply(0);
    }
    return reply(static_cast<long>(name.size())) && send(name + "\n");
  }

  long setTrigger(const DeviceModel* dev, std::optional<std::string_view> trigger) {
    if (dev == nullptr) {
      return -ENODEV;
    }
    std::string name;
    if (trigger) {
      const DeviceModel* t = model_.find(*trigger);
      if (t == nullptr) {
        return -ENOENT;
      }
      name = t->name;
    }
    auto r = writeFile(calls_, dev->sysfs() + "/trigger/current_trigger", name);
    return r.ok() ? 0 : -r.code();
  }

  // --- buffers ---
  long open(const DeviceModel& dev, std::string_view samplesText, std::string_view maskText,
            bool cyclic) {
    auto samples = parseNumber(samplesText);
    if (!samples || *samples == 0) {
      return -EINVAL;
    }
    if (maskText.size() != dev.words() * 8) {
      return -EINVAL;
    }
    if (opened_.contains(dev.id)) {
      return -EBUSY;
    }
    if (cyclic) {
      // CYCLIC is for output buffers (the kernel's rule too); on one it is not served yet.
      return dev.isOutput() ? -ENOSYS : -EINVAL;
    }
    std::vector<bool> mask(dev.channels.size(), false);
    for (std::size_t word = 0; word < dev.words(); ++word) {
      // The most significant word first.
      auto v = parseNumber(maskText.substr((dev.words() - 1 - word) * 8, 8), 16);
      if (!v) {
        return -EINVAL;
      }
      for (std::size_t bit = 0; bit < 32; ++bit) {
        const std::size_t number = word * 32 + bit;
        if (((*v >> bit) & 1U) != 0 && number < mask.size()) {
          mask[number] = dev.channels[number].scan;
        }
      }
    }
    if (std::none_of(mask.begin(), mask.end(), [](bool b) { return b; })) {
      return -EINVAL;
    }
    auto entry = std::make_unique<OpenDevice>(dev.id, calls_);
    OpenDevice& o = *entry;
    // A failure below leaves nothing on.
    struct Undo {
      Session* self;
      std::unique_ptr<OpenDevice>* entry;
      Undo(Session* s, std::unique_ptr<OpenDevice>* e) : self(s), entry(e) {}
      Undo(const Undo&) = delete;
      Undo& operator=(const Undo&) = delete;
      Undo(Undo&&) = delete;
      Undo& operator=(Undo&&) = delete;
      ~Undo() {
        if (*entry) {
          self->closeDevice(**entry);
        }
      }
    } undo{this, &entry};
    o.bufferDir = dev.sysfs() + (dev.hasBuffer0 ? "/buffer0" : "/buffer");
    // scan_elements/ is buffer 0's (the kernel's legacy names; bufferK/ has its own too).
    const std::string scanDir = dev.sysfs() + "/scan_elements/";
    // As iiod on a board: the buffer off, the mask's channels on (and the others off, where
    // the hardware lets them go), the length, then GET_FD and enable.
    (void)writeFile(calls_, o.bufferDir + "/enable", "0");
    std::vector<bool> hardware(dev.channels.size(), false);
    for (std::size_t i = 0; i < dev.channels.size(); ++i) {
      const Channel& c = dev.channels[i];
      if (!c.scan) {
        continue;
      }
      const std::string en = scanDir + c.prefix() + c.id + "_en";
      auto w = writeFile(calls_, en, mask[i] ? "1" : "0");
      if (!w.ok() && mask[i]) {
        return -w.code();
      }
      auto now = readFile(calls_, en);
      hardware[i] = now.ok() ? trimmed(*now) == "1" : mask[i];
      if (mask[i] && !hardware[i]) {
        return -EIO;
      }
    }
    const auto [hwOffsets, hwFrame] = layout(dev.channels, hardware, /*kernel=*/true);
    const auto [clientOffsets, clientSample] = layout(dev.channels, mask, /*kernel=*/false);
    if (hwFrame == 0 || clientSample == 0) {
      return -EINVAL;
    }
    if (*samples > config_.maxBufferBytes / hwFrame) {
      return -ENOMEM;
    }
    for (std::size_t i = 0; i < dev.channels.size(); ++i) {
      if (mask[i]) {
        o.fields.push_back({hwOffsets[i], clientOffsets[i], dev.channels[i].bytes()});
      }
    }
    o.hwFrame = hwFrame;
    o.clientSample = clientSample;
    o.samples = *samples;
    o.mask = mask;
    o.output = dev.isOutput();
    for (std::size_t word = dev.words(); word-- > 0;) {
      std::uint32_t bits = 0;
      for (std::size_t bit = 0; bit < 32 && word * 32 + bit < mask.size(); ++bit) {
        bits |= mask[word * 32 + bit] ? (1U << bit) : 0U;
      }
      o.maskText += fmt::format("{:08x}", bits);
    }
    if (auto w = writeFile(calls_, o.bufferDir + "/length", std::to_string(*samples)); !w.ok()) {
      return -w.code();
    }
    const std::string node = "/dev/" + dev.id;
    auto opened = calls_.open(node, O_RDWR | O_CLOEXEC);
    if (!opened.ok()) {
      return -opened.code();
    }
    o.node = CallsFd(calls_, std::move(*opened));
    int index = 0;  // buffer 0 in, its fd out
    if (auto r = calls_.ioctl(o.node.get(), IIO_BUFFER_GET_FD_IOCTL, &index); !r.ok()) {
      return -r.code();
    }
    o.buffer = CallsFd(calls_, index);
    if (!track_(o.bufferDir + "/enable", true)) {
      return -ESHUTDOWN;
    }
    o.tracked = true;
    if (auto w = writeFile(calls_, o.bufferDir + "/enable", "1"); !w.ok()) {
      return -w.code();
    }
    if (stopping_.load()) {
      return -ESHUTDOWN;  // stop() may have swept the buffers before this one went on
    }
    log(LogIiod, LogLevel::Info, "{} opened: {} samples of {} bytes (hardware frames of {})",
        dev.id, o.samples, o.clientSample, o.hwFrame);
    opened_[dev.id] = std::move(entry);  // undo sees it gone
    return 0;
  }

  void closeDevice(OpenDevice& o) {
    if (o.buffer.get() >= 0) {
      (void)writeFile(calls_, o.bufferDir + "/enable", "0");
    }
    if (o.tracked) {
      (void)track_(o.bufferDir + "/enable", false);
      o.tracked = false;
    }
    o.buffer.reset();
    o.node.reset();
  }

  long close(const DeviceModel& dev) {
    auto it = opened_.find(dev.id);
    if (it == opened_.end()) {
      return -ENXIO;
    }
    closeDevice(*it->second);
    opened_.erase(it);
    return 0;
  }

  // Whether the peer has gone or the server stops (checked while waiting for samples).
  bool abandoned() {
    pollfd p{socket_, POLLRDHUP, 0};
    return stopping_.load() ||
           (::poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0);
  }

  // Waits until the buffer fd is ready for `events` (POLLIN or POLLOUT), in steps of 100 ms:
  // ESHUTDOWN when the server stops, EPIPE when the client went away, ETIMEDOUT past the
  // connection's TIMEOUT (0: none); 0 when ready.
  int waitReady(OpenDevice& o, short events) {
    auto waited = std::chrono::milliseconds(0);
    for (;;) {
      if (stopping_.load()) {
        return ESHUTDOWN;
      }
      std::array<pollfd, 1> p{{{o.buffer.get(), events, 0}}};
      auto ready = calls_.poll(p, 100);
      if (!ready.ok()) {
        return ready.code();
      }
      if (*ready != 0) {
        return 0;
      }
      waited += std::chrono::milliseconds(100);
      if (abandoned()) {
        return EPIPE;
      }
      if (timeoutMs_ != 0 && waited.count() >= timeoutMs_) {
        return ETIMEDOUT;
      }
    }
  }

  // Reads whole hardware frames into `out` (a multiple of the frame size). 0: ok; else errno.
  int readFrames(OpenDevice& o, std::span<std::byte> out) {
    std::size_t got = 0;
    while (got < out.size()) {
      if (const int e = waitReady(o, POLLIN); e != 0) {
        return e;
      }
      auto r = calls_.read(o.buffer.get(), out.subspan(got));
      if (!r.ok()) {
        return r.code();
      }
      if (*r == 0) {
        return EIO;  // the buffer was disabled under us
      }
      got += *r;
    }
    return 0;
  }

  // READBUF <dev> <bytes>: "<len>\n<mask>\n<len bytes>" for each buffer's worth.
  bool readBuffer(const DeviceModel& dev, std::uint64_t bytes) {
    auto it = opened_.find(dev.id);
    if (it == opened_.end()) {
      return reply(-EBADF);
    }
    OpenDevice& o = *it->second;
    if (o.output) {
      return reply(-EPERM);  // read(2) of an output buffer (iio_buffer_read's EPERM)
    }
    if (bytes < o.clientSample) {
      return reply(0);
    }
    std::uint64_t left = bytes;
    bool first = true;
    std::vector<std::byte> hw;
    std::string out;
    while (left >= o.clientSample) {
      // One buffer (the OPEN's samples) at most, as iiod's refills.
      const std::uint64_t samples = std::min<std::uint64_t>(left / o.clientSample, o.samples);
      const std::uint64_t len = samples * o.clientSample;
      std::string head = fmt::format("{}\n", len);
      if (first) {
        head += o.maskText + "\n";
        first = false;
      }
      // The first samples are read before the length goes out: an error is still an errno.
      std::uint64_t done = 0;
      bool headSent = false;
      while (done < samples) {
        const std::uint64_t now = std::min<std::uint64_t>(
            samples - done, std::max<std::size_t>(1, kChunkBytes / o.hwFrame));
        hw.resize(static_cast<std::size_t>(now * o.hwFrame));
        if (const int e = readFrames(o, hw); e != 0) {
          log(LogIiod, LogLevel::Warn, "READBUF {}: {}", dev.id, std::strerror(e));
          if (!headSent) {
            return reply(-e);
          }
          return false;  // mid-reply: the connection ends
        }
        out.resize(static_cast<std::size_t>(now * o.clientSample));
        for (std::uint64_t s = 0; s < now; ++s) {
          const std::byte* from = hw.data() + s * o.hwFrame;
          char* to = out.data() + s * o.clientSample;
          for (const Field& f : o.fields) {
            std::memcpy(to + f.to, from + f.from, f.bytes);
          }
        }
        if (!headSent) {
          if (!send(head)) {
            return false;
          }
          headSent = true;
        }
        if (!send(out)) {
          return false;
        }
        done += now;
      }
      left -= len;
    }
    if (left > 0) {
      return reply(0);
    }
    return true;
  }

  // Writes whole hardware frames of `in` to the buffer fd. 0: ok; else errno.
  int writeFrames(OpenDevice& o, std::span<const std::byte> in) {
    std::size_t put = 0;
    while (put < in.size()) {
      if (const int e = waitReady(o, POLLOUT); e != 0) {
        return e;
      }
      auto r = calls_.write(o.buffer.get(), in.subspan(put));
      if (!r.ok()) {
        return r.code();
      }
      if (*r == 0) {
        return EIO;
      }
      put += *r;
    }
    return 0;
  }

  // Takes exactly out.size() bytes of the request's data off the socket. false: the peer went.
  bool receive(std::span<char> out) {
    std::size_t got = 0;
    while (got < out.size()) {
      if (in_.empty() && !fill(config_.idleTimeout)) {
        return false;
      }
      const std::size_t take = std::min(out.size() - got, in_.size());
      std::memcpy(out.data() + got, in_.data(), take);
      in_.erase(0, take);
      got += take;
    }
    return true;
  }

  // WRITEBUF <dev> <bytes>, as iiod's rw_buffer for a writer: "0\n" (the client then sends its
  // bytes: samples of its mask's channels), the samples multiplexed into hardware frames (the
  // channels the client left out zero) and written to the buffer fd, then the bytes taken.
  // Errors before the data are answered at once (the client sends nothing after a negative).
  bool writeBuffer(const DeviceModel& dev, std::uint64_t bytes) {
    auto it = opened_.find(dev.id);
    if (it == opened_.end()) {
      return reply(-EBADF);
    }
    OpenDevice& o = *it->second;
    if (!o.output) {
      return reply(-EPERM);  // write(2) of an input buffer (iio_buffer_write's EPERM)
    }
    if (bytes > 0xffffffffULL) {
      return reply(-EINVAL);  // iiod's length is an unsigned int
    }
    if (!reply(0)) {
      return false;
    }
    const std::uint64_t samples = bytes / o.clientSample;
    const std::uint64_t perChunk = std::max<std::size_t>(1, kChunkBytes / o.hwFrame);
    std::vector<char> client;
    std::vector<std::byte> hw;
    int error = 0;
    for (std::uint64_t done = 0; done < samples;) {
      const std::uint64_t now = std::min<std::uint64_t>(samples - done, perChunk);
      client.resize(static_cast<std::size_t>(now * o.clientSample));
      if (!receive(client)) {
        return false;
      }
      done += now;
      if (error != 0) {
        continue;  // the rest is taken and dropped: the connection stays in step
      }
      hw.assign(static_cast<std::size_t>(now * o.hwFrame), std::byte{0});
      for (std::uint64_t s = 0; s < now; ++s) {
        std::byte* to = hw.data() + s * o.hwFrame;
        const char* from = client.data() + s * o.clientSample;
        for (const Field& f : o.fields) {
          std::memcpy(to + f.from, from + f.to, f.bytes);
        }
      }
      error = writeFrames(o, hw);
      if (error != 0) {
        log(LogIiod, LogLevel::Warn, "WRITEBUF {}: {}", dev.id, std::strerror(error));
        if (error == ESHUTDOWN || error == EPIPE) {
          return false;
        }
      }
    }
    // Less than a sample at the end: taken and dropped (iiod leaves it unread).
    if (!discard(bytes - samples * o.clientSample)) {
      return false;
    }
    return reply(error != 0 ? -error : static_cast<long>(samples * o.clientSample));
  }

  uapi::FdCalls& calls_;
  const IiodConfig& config_;
  const int socket_;
  const int stopFd_;
  std::atomic<bool>& stopping_;
  Track track_;
  std::string in_;
  Model model_;
  unsigned timeoutMs_ = 0;
  std::map<std::string, std::unique_ptr<OpenDevice>> opened_;
};

}  // namespace

Result<std::unique_ptr<IiodServer>> IiodServer::create(uapi::FdCalls& calls, IiodConfig config) {
  if (!config.listing) {
    return Error(EINVAL, "iiod", "no listing of the namespace");
  }
  if (config.maxLine < 64 || config.maxConnections == 0) {
    return Error(EINVAL, "iiod", "maxLine must be at least 64 and maxConnections at least 1");
  }
  const int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) {
    return Error(errno, "socket", "AF_INET SOCK_STREAM");
  }
  UniqueFd sock = UniqueFd::adopt(s);
  const int one = 1;
  (void)::setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(config.port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(s, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {  // NOLINT
    return Error(errno, "bind", fmt::format("127.0.0.1:{}", config.port));
  }
  if (::listen(s, 16) != 0) {
    return Error(errno, "listen", fmt::format("127.0.0.1:{}", config.port));
  }
  socklen_t len = sizeof addr;
  if (::getsockname(s, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {  // NOLINT
    return Error(errno, "getsockname", "the iiod socket");
  }
  auto server = std::make_unique<IiodServer>(Private{}, calls, std::move(config), std::move(sock),
                                             ntohs(addr.sin_port));
  ZBUF_ASSIGN_OR_RETURN(server->stopEvent_, sys::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  server->acceptor_ = std::thread([p = server.get()] { p->acceptLoop(); });
  log(LogIiod, LogLevel::Info, "iiod listening on 127.0.0.1:{}", server->port_);
  return server;
}

IiodServer::IiodServer(Private /*key*/, uapi::FdCalls& calls, IiodConfig config, UniqueFd listening,
                       std::uint16_t port)
    : calls_(calls), config_(std::move(config)), listening_(std::move(listening)), port_(port) {}

IiodServer::~IiodServer() {
  stop();
}

void IiodServer::stop() {
  {
    const MutexLocker lock(mutex_);
    if (stopped_) {
      return;
    }
    stopped_ = true;
  }
  stopping_.store(true);
  (void)sys::eventfdWrite(stopEvent_.get(), 1);
  if (acceptor_.joinable()) {
    acceptor_.join();
  }
  std::list<Connection> connections;
  {
    const MutexLocker lock(mutex_);
    for (Connection& c : connections_) {
      if (c.socket.isValid()) {
        ::shutdown(c.socket.get(), SHUT_RDWR);
      }
    }
    connections.splice(connections.end(), connections_);
  }
  // A connection waiting in read(2) for samples wakes up (0: the buffer is off).
  std::multiset<std::string> on;
  {
    const MutexLocker lock(buffersMutex_);
    buffersStopped_ = true;
    on = buffersOn_;
  }
  for (const std::string& path : on) {
    (void)writeFile(calls_, path, "0");
  }
  for (Connection& c : connections) {
    c.thread.join();
  }
  log(LogIiod, LogLevel::Info, "iiod on 127.0.0.1:{} stopped", port_);
}

std::size_t IiodServer::clients() const {
  const MutexLocker lock(mutex_);
  std::size_t n = 0;
  for (const Connection& c : connections_) {
    n += c.done.load() ? 0 : 1;
  }
  return n;
}

void IiodServer::reapFinished() {
  for (auto it = connections_.begin(); it != connections_.end();) {
    if (it->done.load()) {
      it->thread.join();
      it = connections_.erase(it);
    } else {
      ++it;
    }
  }
}

bool IiodServer::trackBuffer(const std::string& enablePath, bool on) {
  const MutexLocker lock(buffersMutex_);
  if (!on) {
    if (auto it = buffersOn_.find(enablePath); it != buffersOn_.end()) {
      buffersOn_.erase(it);
    }
    return true;
  }
  if (buffersStopped_) {
    return false;
  }
  buffersOn_.insert(enablePath);
  return true;
}

void IiodServer::acceptLoop() {
  sys::setThreadName("zbufd-iiod");
  for (;;) {
    std::array<pollfd, 2> fds{{{listening_.get(), POLLIN, 0}, {stopEvent_.get(), POLLIN, 0}}};
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) {
        continue;
      }
      log(LogIiod, LogLevel::Error, "poll: {}", std::strerror(errno));
      return;
    }
    if (fds[1].revents != 0) {
      return;
    }
    const int s = ::accept4(listening_.get(), nullptr, nullptr, SOCK_CLOEXEC);
    if (s < 0) {
      continue;
    }
    UniqueFd sock = UniqueFd::adopt(s);
    const int one = 1;
    (void)::setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    const MutexLocker lock(mutex_);
    reapFinished();
    if (connections_.size() >= config_.maxConnections) {
      log(LogIiod, LogLevel::Warn, "{} connections already: one refused", connections_.size());
      continue;  // closed at once
    }
    Connection& c = connections_.emplace_back();
    c.socket = std::move(sock);
    c.thread = std::thread([this, &c] { serve(c); });
    accepted_.fetch_add(1);
  }
}

void IiodServer::serve(Connection& c) {
  sys::setThreadName("zbufd-iiod-c");
  {
    Session session(calls_, config_, c.socket.get(), stopEvent_.get(), stopping_,
                    [this](const std::string& path, bool on) { return trackBuffer(path, on); });
    session.run();
  }
  const MutexLocker lock(mutex_);
  c.socket.reset();
  c.done.store(true);
}

}  // namespace zbuf::daemon
