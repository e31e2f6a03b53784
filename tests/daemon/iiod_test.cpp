// IiodServer: libiio 0.24's own tools (iio_info, iio_attr, iio_readdev; Debian's libiio-utils)
// reach the board's ADC over the network backend, run as child processes against a server in
// this process on a free port of 127.0.0.1; the samples iio_readdev prints are the ADC's pattern
// byte for byte. The protocol's error cases by a raw socket. Skipped (with a message) when the
// libiio tools are not installed.
// ctest-labels: concurrency
#include "zbuf/daemon/iiod.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "support/spawn.h"
#include "support/wait_until.h"
#include "zbuf/devices/board.h"
#include "zbuf/devices/pattern.h"
#include "zbuf/uapi/context.h"
#include "zbuf/uapi/sysfs_attr.h"

namespace zbuf {
namespace {

using namespace std::chrono_literals;

struct ToolRun {
  int status = -1;  // the exit status, -1 if it did not exit by itself in time
  std::string out;
};

// Runs `argv` with its stdout to a pipe, until it exits (within `limit`; past it the child is
// stopped by its pid and the run fails).
ToolRun run(std::vector<std::string> argv, std::chrono::milliseconds limit = 30s) {
  ToolRun r;
  int out = -1;
  const std::string name = argv.empty() ? std::string() : argv[0];
  const pid_t pid = testing_support::spawn(std::move(argv), {}, &out);
  if (pid < 0) {
    return r;
  }
  const auto deadline = std::chrono::steady_clock::now() + limit;
  bool open = true;
  while (open) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      break;
    }
    pollfd p{out, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) {
      continue;
    }
    char buf[65536];
    const ssize_t n = ::read(out, buf, sizeof buf);
    if (n <= 0) {
      open = false;
    } else {
      r.out.append(buf, static_cast<std::size_t>(n));
    }
  }
  ::close(out);
  int status = 0;
  if (open) {
    ::kill(pid, SIGKILL);  // it did not end by itself: the test fails below
    ::waitpid(pid, &status, 0);
    ADD_FAILURE() << name << " did not finish within " << limit.count() << " ms";
    return r;
  }
  ::waitpid(pid, &status, 0);
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

std::string tool(const char* name) {
  for (const char* dir : {"/usr/bin/", "/usr/local/bin/"}) {
    std::string p = std::string(dir) + name;
    if (::access(p.c_str(), X_OK) == 0) {
      return p;
    }
  }
  return {};
}

class Iiod : public ::testing::Test {
 protected:
  void SetUp() override { start({}); }

  void start(daemon::IiodConfig config) {
    server.reset();
    config.listing = [c = ctx] { return c->nodes(); };
    auto s = daemon::IiodServer::create(*ctx, std::move(config));
    ASSERT_TRUE(s.ok()) << s.error().describe();
    server = std::move(*s);
    ASSERT_NE(server->port(), 0);
    uri = "ip:127.0.0.1:" + std::to_string(server->port());
  }

  void TearDown() override {
    if (server) {
      server->stop();
    }
  }

  // The tools, or a skip.
  bool haveTools() {
    info = tool("iio_info");
    attr = tool("iio_attr");
    readdev = tool("iio_readdev");
    return !info.empty() && !attr.empty() && !readdev.empty();
  }

  std::string sysfs(const std::string& rel) {
    auto fd = ctx->open(std::string(Board::kAdcSysfs) + "/" + rel, O_RDONLY);
    if (!fd.ok()) {
      return "<" + fd.error().describe() + ">";
    }
    std::vector<std::byte> buf(4096);
    auto n = ctx->read(fd->get(), buf);
    (void)ctx->close(std::move(*fd));
    return n.ok() ? std::string(reinterpret_cast<const char*>(buf.data()), *n) : "<read>";
  }

  std::uint64_t streamOffset() { return (*board->adc().buffer(0))->stats().streamOffset; }
  // The DAC's checker: where its stream is, what it checked and what differed.
  iio::IioBufferStats dacStats() { return (*board->dac().buffer(0))->stats(); }

  // Connects a raw socket to the server.
  int connectRaw() {
    const int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(server->port());
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(s, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {  // NOLINT
      ::close(s);
      return -1;
    }
    return s;
  }

  std::shared_ptr<uapi::Context> ctx = uapi::Context::create();
  std::shared_ptr<Board> board = *Board::create(*ctx, BoardConfig{});
  std::unique_ptr<daemon::IiodServer> server;
  std::string uri;
  std::string info, attr, readdev;
};

// Sends `request`, reads one line back (up to '\n', or what came before EOF, with "<EOF>").
std::string ask(int s, const std::string& request) {
  if (!request.empty() && ::send(s, request.data(), request.size(), MSG_NOSIGNAL) < 0) {
    return "<send>";
  }
  std::string line;
  char c = 0;
  for (;;) {
    pollfd p{s, POLLIN, 0};
    if (::poll(&p, 1, 10000) <= 0) {
      return line + "<timeout>";
    }
    const ssize_t n = ::recv(s, &c, 1, 0);
    if (n <= 0) {
      return line + "<EOF>";
    }
    if (c == '\n') {
      return line;
    }
    line += c;
  }
}

std::string readExact(int s, std::size_t n) {
  std::string out;
  while (out.size() < n) {
    char buf[4096];
    pollfd p{s, POLLIN, 0};
    if (::poll(&p, 1, 10000) <= 0) {
      break;
    }
    const ssize_t r = ::recv(s, buf, std::min(sizeof buf, n - out.size()), 0);
    if (r <= 0) {
      break;
    }
    out.append(buf, static_cast<std::size_t>(r));
  }
  return out;
}

#define REQUIRE_TOOLS()                                                                    \
  if (!haveTools()) {                                                                      \
    GTEST_SKIP() << "libiio's tools (iio_info, iio_attr, iio_readdev) are not installed: " \
                    "apt-get install libiio-utils";                                        \
  }

TEST_F(Iiod, IioInfoListsTheBoardsDevices) {
  REQUIRE_TOOLS();
  const ToolRun r = run({info, "-u", uri});
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("IIO context has 2 devices"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("iio:device0: cf-ad9361-lpc (buffer capable)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("iio:device1: cf-ad9361-dds-core-lpc (buffer capable)"), std::string::npos)
      << r.out;
  for (int c = 0; c < 4; ++c) {
    EXPECT_NE(r.out.find("voltage" + std::to_string(c) + ":  (input, index: " + std::to_string(c) +
                         ", format: le:S16/16>>0)"),
              std::string::npos)
        << r.out;
  }
  EXPECT_NE(r.out.find("(output, index: 0, format: le:S16/16>>0)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("attr  0: sampling_frequency value: 0"), std::string::npos) << r.out;
}

TEST_F(Iiod, IioAttrReadsAndWritesADeviceAttribute) {
  REQUIRE_TOOLS();
  ToolRun r = run({attr, "-u", uri, "-d", "iio:device0", "sampling_frequency"});
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(r.out, "0\n");
  // By the device's name too, as iio_context_find_device.
  r = run({attr, "-u", uri, "-d", "cf-ad9361-lpc", "sampling_frequency", "250000"});
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(sysfs("sampling_frequency"), "250000\n");
  r = run({attr, "-u", uri, "-d", "iio:device0", "sampling_frequency"});
  EXPECT_EQ(r.out, "250000\n");
}

TEST_F(Iiod, IioReaddevReadsThePatternOfEveryChannel) {
  REQUIRE_TOOLS();
  const SampleFormat format = board->config().format;
  for (int round = 0; round < 2; ++round) {
    const std::uint64_t offset = streamOffset();
    const ToolRun r = run({readdev, "-u", uri, "-b", "256", "-s", "1000", "iio:device0"});
    ASSERT_EQ(r.status, 0);
    ASSERT_EQ(r.out.size(), 1000 * format.frameBytes()) << "round " << round;
    PatternChecker checker(format, board->config().pattern);
    EXPECT_EQ(checker.countMismatches(std::as_bytes(std::span(r.out)), offset), 0U)
        << "round " << round << " at stream offset " << offset;
    // The server turns the buffer off when the tool's connection ends.
    EXPECT_TRUE(testing_support::waitUntil([&] { return server->clients() == 0; }));
    EXPECT_EQ(sysfs("buffer0/enable"), "0\n");
  }
}

// The test-mode attribute selects the ADC's pattern: iio_attr sets it, iio_readdev reads it.
TEST_F(Iiod, TheTestModeAttributeSelectsThePatternIioReaddevReads) {
  REQUIRE_TOOLS();
  ToolRun r = run({attr, "-u", uri, "-d", "iio:device0", "test_mode_available"});
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(r.out, "ramp prbs\n");
  r = run({attr, "-u", uri, "-d", "iio:device0", "test_mode", "prbs"});
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(sysfs("test_mode"), "prbs\n");
  const SampleFormat format = board->config().format;
  const std::uint64_t offset = streamOffset();
  r = run({readdev, "-u", uri, "-b", "256", "-s", "1000", "iio:device0"});
  ASSERT_EQ(r.status, 0);
  ASSERT_EQ(r.out.size(), 1000 * format.frameBytes());
  PatternChecker prbs(format, PatternKind::Prbs);
  EXPECT_EQ(prbs.countMismatches(std::as_bytes(std::span(r.out)), offset), 0U);
  // An unknown mode is the attribute's EINVAL, which iio_attr reports as a failure.
  r = run({attr, "-u", uri, "-d", "iio:device0", "test_mode", "sine"});
  EXPECT_NE(r.status, 0) << r.out;
  EXPECT_EQ(sysfs("test_mode"), "prbs\n");
  ASSERT_EQ(run({attr, "-u", uri, "-d", "iio:device0", "test_mode", "ramp"}).status, 0);
}

TEST_F(Iiod, IioReaddevReadsTheChannelsAskedFor) {
  REQUIRE_TOOLS();
  const SampleFormat format = board->config().format;
  const std::uint64_t offset = streamOffset();
  const std::size_t samples = 3000;
  const ToolRun r = run({readdev, "-u", uri, "-b", "1024", "-s", std::to_string(samples),
                         "iio:device0", "voltage1", "voltage3"});
  ASSERT_EQ(r.status, 0);
  ASSERT_EQ(r.out.size(), samples * 2 * format.bytesPerSample);
  PatternGenerator generator(format, board->config().pattern);
  std::vector<std::byte> frames(samples * format.frameBytes());
  generator.fill(frames, offset);
  std::string expected;
  for (std::size_t n = 0; n < samples; ++n) {
    for (unsigned c : {1U, 3U}) {
      const auto* p = reinterpret_cast<const char*>(frames.data()) + n * format.frameBytes() +
                      static_cast<std::size_t>(c) * format.bytesPerSample;
      expected.append(p, format.bytesPerSample);
    }
  }
  EXPECT_TRUE(r.out == expected) << "the demultiplexed samples differ from the pattern";
}

// iio_writedev feeds the DAC through WRITEBUF: the pattern at the DAC's stream offset, every
// channel, from a FIFO kept open until the DAC has checked every byte (the buffer's CLOSE at
// the tool's end would abort what the hardware has not consumed yet, as on a board).
TEST_F(Iiod, IioWritedevFeedsTheDacThePattern) {
  REQUIRE_TOOLS();
  const std::string writedev = tool("iio_writedev");
  if (writedev.empty()) {
    GTEST_SKIP() << "iio_writedev is not installed: apt-get install libiio-utils";
  }
  namespace fs = std::filesystem;
  const fs::path fifo = fs::temp_directory_path() / ("zbuf-iiod-dac-" + std::to_string(::getpid()));
  fs::remove(fifo);
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0) << std::strerror(errno);
  const SampleFormat format = board->config().format;
  const iio::IioBufferStats before = dacStats();
  const std::size_t samples =
      std::size_t{8} * 1024;  // 8 buffers of 1024 samples, 4 fileio blocks each
  std::vector<std::byte> data(samples * format.frameBytes());
  PatternGenerator(format, board->config().pattern).fill(data, before.streamOffset);
  int out = -1;
  const pid_t pid = testing_support::spawn(
      {"/bin/sh", "-c",
       "exec " + writedev + " -u " + uri + " -b 1024 iio:device1 < " + fifo.string() + " 2>&1"},
      {}, &out);
  ASSERT_GT(pid, 0);
  const int in = ::open(fifo.c_str(), O_WRONLY | O_CLOEXEC);  // waits for the shell's open
  ASSERT_GE(in, 0) << std::strerror(errno);
  std::size_t put = 0;
  while (put < data.size()) {
    const ssize_t n = ::write(in, data.data() + put, data.size() - put);
    ASSERT_GT(n, 0) << std::strerror(errno);
    put += static_cast<std::size_t>(n);
  }
  const bool checked = testing_support::waitUntil(
      [&] { return dacStats().checkedBytes - before.checkedBytes >= data.size(); }, 20s);
  ::close(in);  // EOF: the tool destroys its buffer (CLOSE) and ends
  std::string text;
  for (;;) {
    pollfd p{out, POLLIN, 0};
    if (::poll(&p, 1, 20000) <= 0) {
      break;
    }
    char buf[4096];
    const ssize_t n = ::read(out, buf, sizeof buf);
    if (n <= 0) {
      break;
    }
    text.append(buf, static_cast<std::size_t>(n));
  }
  ::close(out);
  int status = 0;
  ::waitpid(pid, &status, 0);
  fs::remove(fifo);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status << ": " << text;
  EXPECT_TRUE(checked) << "the DAC checked " << dacStats().checkedBytes - before.checkedBytes
                       << " of " << data.size() << " bytes";
  const iio::IioBufferStats after = dacStats();
  EXPECT_EQ(after.checkedBytes - before.checkedBytes, data.size());
  EXPECT_EQ(after.mismatches - before.mismatches, 0U);
  EXPECT_EQ(after.streamOffset - before.streamOffset, data.size());
  EXPECT_TRUE(testing_support::waitUntil([&] { return server->clients() == 0; }));
  EXPECT_FALSE((*board->dac().buffer(0))->enabled());
}

// WRITEBUF by a raw socket: its errors (answered before any data), then a whole OPEN /
// WRITEBUF / CLOSE of two of the DAC's channels, multiplexed into full frames (the others 0).
TEST_F(Iiod, WritebufErrorsAndAWholeWrite) {
  const int s = connectRaw();
  ASSERT_GE(s, 0);
  EXPECT_EQ(ask(s, "WRITEBUF iio:device9 8\r\n"), "-19");  // ENODEV
  EXPECT_EQ(ask(s, "WRITEBUF iio:device1 8\r\n"), "-9");   // EBADF: not open
  EXPECT_EQ(ask(s, "WRITEBUF iio:device0 8\r\n"), "-9");
  EXPECT_EQ(ask(s, "OPEN iio:device0 16 0000000f\r\n"), "0");
  EXPECT_EQ(ask(s, "WRITEBUF iio:device0 8\r\n"), "-1");  // EPERM: an input device
  EXPECT_EQ(ask(s, "CLOSE iio:device0\r\n"), "0");
  const SampleFormat format = board->config().format;
  const iio::IioBufferStats before = dacStats();
  EXPECT_EQ(ask(s, "OPEN iio:device1 16 0000000f\r\n"), "0");
  EXPECT_EQ(ask(s, "READBUF iio:device1 128\r\n"), "-1");  // EPERM: an output device
  std::vector<std::byte> frames(16 * format.frameBytes());
  PatternGenerator(format, board->config().pattern).fill(frames, before.streamOffset);
  const std::string whole(reinterpret_cast<const char*>(frames.data()), frames.size());
  EXPECT_EQ(ask(s, "WRITEBUF iio:device1 128\r\n"), "0");  // then the client's bytes
  EXPECT_EQ(ask(s, whole), "128");
  EXPECT_TRUE(testing_support::waitUntil(
      [&] { return dacStats().checkedBytes - before.checkedBytes >= frames.size(); }));
  EXPECT_EQ(dacStats().mismatches - before.mismatches, 0U);
  EXPECT_EQ(ask(s, "CLOSE iio:device1\r\n"), "0");
  // voltage0 and voltage2 only, plus half a sample at the end (taken and dropped): the DAC
  // sees full frames with voltage1 and voltage3 zero.
  const iio::IioBufferStats mid = dacStats();
  EXPECT_EQ(ask(s, "OPEN iio:device1 16 00000005\r\n"), "0");
  PatternGenerator(format, board->config().pattern).fill(frames, mid.streamOffset);
  std::string subset;
  std::uint64_t zeroed = 0;
  for (std::size_t i = 0; i < 16; ++i) {
    const auto* f = reinterpret_cast<const char*>(frames.data()) + i * 8;
    subset.append(f, 2);
    subset.append(f + 4, 2);
    zeroed += (f[2] != 0 ? 1 : 0) + (f[3] != 0 ? 1 : 0) + (f[6] != 0 ? 1 : 0) + (f[7] != 0 ? 1 : 0);
  }
  EXPECT_EQ(ask(s, "WRITEBUF iio:device1 66\r\n"), "0");
  EXPECT_EQ(ask(s, subset + "xy"), "64");
  EXPECT_TRUE(testing_support::waitUntil(
      [&] { return dacStats().checkedBytes - mid.checkedBytes >= frames.size(); }));
  EXPECT_EQ(dacStats().mismatches - mid.mismatches, zeroed);
  EXPECT_EQ(ask(s, "CLOSE iio:device1\r\n"), "0");
  EXPECT_EQ(ask(s, "VERSION\r\n"), "0.24.zbuf   ");
  ::close(s);
}

// libiio's Python binding (python3-libiio, Debian's /usr/bin/python3): a buffer of every channel
// refilled twice, its bytes written out, compared with the pattern.
TEST_F(Iiod, PythonLibiioReadsThePattern) {
  REQUIRE_TOOLS();
  const char* python = "/usr/bin/python3";
  if (::access(python, X_OK) != 0 || run({python, "-c", "import iio"}).status != 0) {
    GTEST_SKIP() << "python3-libiio is not installed: apt-get install python3-libiio";
  }
  const SampleFormat format = board->config().format;
  const std::uint64_t offset = streamOffset();
  const std::string script =
      "import iio, sys\n"
      "c = iio.Context(sys.argv[1])\n"
      "d = c.find_device('cf-ad9361-lpc')\n"
      "for ch in d.channels:\n"
      "    ch.enabled = True\n"
      "b = iio.Buffer(d, 500)\n"
      "for _ in range(2):\n"
      "    b.refill()\n"
      "    sys.stdout.buffer.write(b.read())\n";
  const ToolRun r = run({python, "-c", script, uri});
  ASSERT_EQ(r.status, 0) << r.out;
  ASSERT_EQ(r.out.size(), 1000 * format.frameBytes());
  PatternChecker checker(format, board->config().pattern);
  EXPECT_EQ(checker.countMismatches(std::as_bytes(std::span(r.out)), offset), 0U)
      << "at stream offset " << offset;
}

// A device of sysfs files alone, with what the board's devices lack: a label, channel
// attributes (one channel's, one shared, one of a channel without an index), a scan element of
// another format, a buffer attribute, a debug attribute and a trigger.
TEST_F(Iiod, TheModelIsWhatSysfsHas) {
  REQUIRE_TOOLS();
  const std::string dir = "/sys/bus/iio/devices/iio:device2/";
  // Written by the server's threads, read here after a child process's reply: a lock, since
  // ThreadSanitizer does not see the order through another process.
  std::mutex lock;
  std::string raw = "1234\n";
  std::string trigger = "synth-trig\n";
  const auto value = [&lock](const std::string& v) {
    const std::lock_guard guard(lock);
    return v;
  };
  const auto ro = [](const std::string& text) {
    return uapi::SysfsAttr{[text] { return Result<std::string>(text); }, {}};
  };
  const auto rw = [&lock](std::string& v) {
    return uapi::SysfsAttr{[&lock, &v] {
                             const std::lock_guard guard(lock);
                             return Result<std::string>(v);
                           },
                           [&lock, &v](std::string_view text) -> Result<void> {
                             const std::lock_guard guard(lock);
                             v = std::string(text);
                             return {};
                           }};
  };
  for (const auto& [path, attr] : std::vector<std::pair<std::string, uapi::SysfsAttr>>{
           {dir + "name", ro("synth\n")},
           {dir + "label", ro("lbl\n")},
           {dir + "in_voltage0_raw", rw(raw)},
           {dir + "in_voltage_scale", ro("0.5\n")},
           {dir + "in_temp_input", ro("42000\n")},
           {dir + "scan_elements/in_voltage0_en", ro("0\n")},
           {dir + "scan_elements/in_voltage0_index", ro("0\n")},
           {dir + "scan_elements/in_voltage0_type", ro("be:u12/16>>4\n")},
           {dir + "buffer/data_available", ro("0\n")},
           {dir + "buffer/length", ro("0\n")},
           {dir + "trigger/current_trigger", rw(trigger)},
           {"/sys/kernel/debug/iio/iio:device2/direct_reg_access", ro("0x0\n")},
           {"/sys/bus/iio/devices/trigger0/name", ro("synth-trig\n")}}) {
    ASSERT_TRUE(uapi::addSysfsAttr(*ctx, path, attr).ok()) << path;
  }
  ToolRun r = run({info, "-u", uri});
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("IIO context has 4 devices"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("(input, index: 0, format: be:u12/16>>4)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("attr  0: raw value: 1234"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("attr  1: scale value: 0.5"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("temp:  (input)\n\t\t\t1 channel-specific attributes found:\n\t\t\t\tattr  "
                       "0: input value: 42000"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("attr  0: data_available value: 0"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("debug attr  0: direct_reg_access value: 0x0"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("iio:device2: synth (label: lbl) (buffer capable)"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("Current trigger: trigger0(synth-trig)"), std::string::npos) << r.out;
  r = run({attr, "-u", uri, "-c", "lbl", "voltage0", "raw", "77"});
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(value(raw), "77");  // the store saw the C string, not its NUL
  r = run({attr, "-u", uri, "-c", "synth", "temp", "input"});
  EXPECT_EQ(r.out, "42000\n");
  r = run({attr, "-u", uri, "-B", "synth", "data_available"});
  EXPECT_EQ(r.out, "0\n");
  r = run({attr, "-u", uri, "-D", "synth", "direct_reg_access"});
  EXPECT_EQ(r.out, "0x0\n");
  // GETTRIG, SETTRIG by a raw socket.
  const int s = connectRaw();
  ASSERT_GE(s, 0);
  EXPECT_EQ(ask(s, "GETTRIG iio:device2\r\n"), "10");
  EXPECT_EQ(ask(s, ""), "synth-trig");
  EXPECT_EQ(ask(s, "SETTRIG iio:device2\r\n"), "0");
  EXPECT_EQ(value(trigger), "");
  EXPECT_EQ(ask(s, "GETTRIG iio:device2\r\n"), "0");
  EXPECT_EQ(ask(s, "SETTRIG iio:device2 nothing\r\n"), "-2");
  EXPECT_EQ(ask(s, "SETTRIG iio:device2 trigger0\r\n"), "0");
  EXPECT_EQ(value(trigger), "synth-trig");
  EXPECT_EQ(ask(s, "SET iio:device2 BUFFERS_COUNT 4\r\n"), "0");
  EXPECT_EQ(ask(s, "SET iio:device2 BUFFERS_COUNT 0\r\n"), "-22");
  // Every attribute of a channel at once: lengths (big-endian) and values padded to 4 bytes.
  EXPECT_EQ(ask(s, "READ iio:device2 INPUT voltage0\r\n"), "16");
  EXPECT_EQ(readExact(s, 17), std::string("\0\0\0\x03"
                                          "77\0\0"
                                          "\0\0\0\x04"
                                          "0.5\0"
                                          "\n",
                                          17));
  ::close(s);
}

TEST_F(Iiod, OneOpenOfADeviceAtATime) {
  const int a = connectRaw();
  const int b = connectRaw();
  ASSERT_GE(a, 0);
  ASSERT_GE(b, 0);
  EXPECT_EQ(ask(a, "OPEN iio:device0 64 0000000f\r\n"), "0");
  EXPECT_EQ(ask(b, "OPEN iio:device0 64 0000000f\r\n"), "-16");  // the character device's EBUSY
  EXPECT_EQ(ask(b, "OPEN iio:device1 64 0000000f CYCLIC\r\n"), "-38");  // not served yet
  EXPECT_EQ(ask(b, "OPEN iio:device1 64 0000000f\r\n"), "0");           // the DAC: another device
  EXPECT_EQ(ask(b, "CLOSE iio:device1\r\n"), "0");
  EXPECT_EQ(ask(b, "VERSION\r\n"), "0.24.zbuf   ");
  ::close(a);  // the server closes the buffer, then the device is free again
  EXPECT_TRUE(testing_support::waitUntil([&] { return server->clients() == 1; }));
  EXPECT_EQ(ask(b, "OPEN iio:device0 64 0000000f\r\n"), "0");
  EXPECT_EQ(ask(b, "CLOSE iio:device0\r\n"), "0");
  ::close(b);
}

// A slow ADC: stop() ends a READBUF that waits for samples, and leaves the buffer off.
TEST(IiodSlow, StopEndsAWaitingRead) {
  auto ctx = uapi::Context::create();
  BoardConfig config;
  config.sampleRate = 10;  // frames per second
  auto board = Board::create(*ctx, config);
  ASSERT_TRUE(board.ok()) << board.error().describe();
  daemon::IiodConfig ic;
  ic.listing = [ctx] { return ctx->nodes(); };
  auto server = daemon::IiodServer::create(*ctx, std::move(ic));
  ASSERT_TRUE(server.ok()) << server.error().describe();
  const int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons((*server)->port());
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(s, reinterpret_cast<const sockaddr*>(&addr), sizeof addr), 0);  // NOLINT
  EXPECT_EQ(ask(s, "OPEN iio:device0 100000 0000000f\r\n"), "0");
  const std::string request = "READBUF iio:device0 800000\r\n";  // 10^5 frames: hours
  ASSERT_EQ(::send(s, request.data(), request.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(request.size()));
  ASSERT_TRUE(testing_support::waitUntil([&] { return (*(*board)->adc().buffer(0))->enabled(); }));
  const auto before = std::chrono::steady_clock::now();
  (*server)->stop();
  EXPECT_LT(std::chrono::steady_clock::now() - before, 5s);
  EXPECT_FALSE((*(*board)->adc().buffer(0))->enabled());
  ::close(s);
}

TEST_F(Iiod, ProtocolErrorsAreErrnoReplies) {
  const int s = connectRaw();
  ASSERT_GE(s, 0);
  EXPECT_EQ(ask(s, "VERSION\r\n"), "0.24.zbuf   ");
  EXPECT_EQ(ask(s, "FROBNICATE\r\n"), "-22");                           // EINVAL
  EXPECT_EQ(ask(s, "READ iio:device9 sampling_frequency\r\n"), "-19");  // ENODEV
  EXPECT_EQ(ask(s, "READ iio:device0 INPUT voltage9 raw\r\n"), "-6");   // ENXIO
  EXPECT_EQ(ask(s, "READ iio:device0 no_such_attribute\r\n"), "-2");    // ENOENT
  EXPECT_EQ(ask(s, "READ iio:device0 ../../../etc\r\n"), "-22");
  EXPECT_EQ(ask(s, "READBUF iio:device0 64\r\n"), "-9");                // EBADF: not open
  EXPECT_EQ(ask(s, "OPEN iio:device0 64 0000000\r\n"), "-22");          // mask: 8 digits
  EXPECT_EQ(ask(s, "OPEN iio:device0 64 00000000\r\n"), "-22");         // no channel
  EXPECT_EQ(ask(s, "OPEN iio:device0 0 0000000f\r\n"), "-22");          // no samples
  EXPECT_EQ(ask(s, "OPEN iio:device0 64 0000000f CYCLIC\r\n"), "-22");  // input
  EXPECT_EQ(ask(s, "GETTRIG iio:device0\r\n"), "-2");                   // no trigger
  EXPECT_EQ(ask(s, "TIMEOUT 1000\r\n"), "0");
  EXPECT_EQ(ask(s, "READ iio:device0 sampling_frequency\r\n"), "2");
  EXPECT_EQ(readExact(s, 3), std::string("0\0\n", 3));
  const std::string value = "125";
  EXPECT_EQ(ask(s, "WRITE iio:device0 sampling_frequency 3\r\n" + value), "3");
  EXPECT_EQ(sysfs("sampling_frequency"), "125\n");
  // PRINT: the length, then the XML.
  const std::string length = ask(s, "PRINT\r\n");
  const std::size_t n = std::stoul(length);
  ASSERT_GT(n, 100U);
  ASSERT_LT(n, 1U << 20);
  const std::string xml = readExact(s, n + 1);
  EXPECT_TRUE(xml.starts_with("<?xml")) << xml;
  EXPECT_NE(xml.find("<device id=\"iio:device0\" name=\"cf-ad9361-lpc\" >"), std::string::npos);
  // A whole buffer: OPEN, READBUF (length, mask, samples), CLOSE.
  const std::uint64_t offset = streamOffset();
  EXPECT_EQ(ask(s, "OPEN iio:device0 16 00000005\r\n"), "0");  // voltage0 and voltage2
  EXPECT_EQ(ask(s, "READBUF iio:device0 64\r\n"), "64");
  EXPECT_EQ(ask(s, ""), "00000005");
  const std::string data = readExact(s, 64);
  ASSERT_EQ(data.size(), 64U);
  PatternGenerator generator(board->config().format, board->config().pattern);
  std::vector<std::byte> frames(std::size_t{16} * 8);
  generator.fill(frames, offset);
  for (std::size_t i = 0; i < 16; ++i) {
    EXPECT_EQ(std::memcmp(data.data() + i * 4, frames.data() + i * 8, 2), 0) << i;
    EXPECT_EQ(std::memcmp(data.data() + i * 4 + 2, frames.data() + i * 8 + 4, 2), 0) << i;
  }
  EXPECT_EQ(ask(s, "OPEN iio:device0 16 00000005\r\n"), "-16");  // EBUSY: open already
  EXPECT_EQ(ask(s, "CLOSE iio:device0\r\n"), "0");
  EXPECT_EQ(ask(s, "CLOSE iio:device0\r\n"), "-6");  // ENXIO: not open
  EXPECT_EQ(sysfs("buffer0/enable"), "0\n");
  EXPECT_EQ(ask(s, "EXIT\r\n"), "<EOF>");
  ::close(s);
}

TEST_F(Iiod, AnOversizedLineClosesTheConnection) {
  const int s = connectRaw();
  ASSERT_GE(s, 0);
  const std::string big(daemon::IiodConfig{}.maxLine + 100, 'A');
  EXPECT_EQ(ask(s, big), "-22");
  EXPECT_EQ(ask(s, ""), "<EOF>");
  ::close(s);
  // A WRITE larger than a sysfs page is not read in: the connection closes.
  const int t = connectRaw();
  ASSERT_GE(t, 0);
  EXPECT_EQ(ask(t, "WRITE iio:device0 sampling_frequency 99999999999\r\n"), "-27");  // EFBIG
  EXPECT_EQ(ask(t, ""), "<EOF>");
  ::close(t);
}

// The line limit bounds request lines, not WRITE values (up to a page): a value longer than a
// line is read whole and the connection stays in step.
TEST_F(Iiod, ALineLimitBelowAPageStillTakesAPageOfValue) {
  daemon::IiodConfig config;
  config.maxLine = 64;
  start(config);
  const int s = connectRaw();
  ASSERT_GE(s, 0);
  const std::string value = "77" + std::string(998, ' ');
  EXPECT_EQ(ask(s, "WRITE iio:device0 sampling_frequency 1000\r\n" + value), "-22");  // EINVAL
  EXPECT_EQ(ask(s, "WRITE iio:device0 sampling_frequency 3\r\n77\n"), "3");
  EXPECT_EQ(sysfs("sampling_frequency"), "77\n");
  EXPECT_EQ(ask(s, "READ iio:device0 " + std::string(64, 'x') + "\r\n"), "-22");  // too long
  EXPECT_EQ(ask(s, ""), "<EOF>");
  ::close(s);
}

TEST_F(Iiod, ConnectionLimitAndIdleTimeout) {
  daemon::IiodConfig config;
  config.maxConnections = 2;
  config.idleTimeout = 300ms;
  start(config);
  const int a = connectRaw();
  const int b = connectRaw();
  ASSERT_GE(a, 0);
  ASSERT_GE(b, 0);
  EXPECT_EQ(ask(a, "VERSION\n"), "0.24.zbuf   ");
  EXPECT_EQ(ask(b, "VERSION\n"), "0.24.zbuf   ");
  const int c = connectRaw();  // accepted by the kernel, closed by the server
  ASSERT_GE(c, 0);
  EXPECT_EQ(ask(c, "VERSION\n"), "<EOF>");
  ::close(c);
  // Idle connections are closed.
  EXPECT_EQ(ask(a, ""), "<EOF>");
  EXPECT_EQ(ask(b, ""), "<EOF>");
  ::close(a);
  ::close(b);
}

#ifdef ZBUFD_PATH
// zbufd --iiod-port 0: the daemon prints its port, and iio_info lists its board.
TEST(IiodZbufd, ServesTheBoardOnTheIiodPort) {
  const std::string info = tool("iio_info");
  if (info.empty()) {
    GTEST_SKIP() << "libiio's iio_info is not installed: apt-get install libiio-utils";
  }
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("zbufd-iiod-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string socket = (dir / "zbufd.sock").string();
  int out = -1;
  // Its stderr (where it prints the port) to the pipe.
  const pid_t daemon = testing_support::spawn(
      {"/bin/sh", "-c",
       std::string("exec ") + ZBUFD_PATH + " --socket " + socket + " --iiod-port 0 2>&1"},
      {}, &out);
  ASSERT_GT(daemon, 0);
  std::string text;
  std::string port;
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (port.empty() && std::chrono::steady_clock::now() < deadline) {
    pollfd p{out, POLLIN, 0};
    if (::poll(&p, 1, 1000) <= 0) {
      continue;
    }
    char buf[512];
    const ssize_t n = ::read(out, buf, sizeof buf);
    if (n <= 0) {
      break;
    }
    text.append(buf, static_cast<std::size_t>(n));
    const auto at = text.find("iiod on 127.0.0.1:");
    const auto nl = at == std::string::npos ? at : text.find('\n', at);
    if (nl != std::string::npos) {
      port = text.substr(at + 18, nl - at - 18);
    }
  }
  EXPECT_FALSE(port.empty()) << text;
  if (!port.empty()) {
    const ToolRun r = run({info, "-u", "ip:127.0.0.1:" + port});
    EXPECT_EQ(r.status, 0) << r.out;
    EXPECT_NE(r.out.find("iio:device0: cf-ad9361-lpc (buffer capable)"), std::string::npos)
        << r.out;
  }
  ::kill(daemon, SIGTERM);
  int status = 0;
  ::waitpid(daemon, &status, 0);
  ::close(out);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  std::error_code ec;
  fs::remove_all(dir, ec);
}
#endif

}  // namespace
}  // namespace zbuf
