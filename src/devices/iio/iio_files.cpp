// The IIO files (iio_files.h): the character device, GET_FD's buffer file and the sysfs
// attributes, each a uapi File kind over IioDevice / IioBuffer / IioBufferFile.
#include "zbuf/devices/iio/iio_files.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <sys/stat.h>

#include <atomic>
#include <string>

#include "zbuf/devices/iio/iio_buffer_file.h"
#include "zbuf/devices/iio/iio_uapi.h"
#include "zbuf/uapi/sysfs_attr.h"
#include "zbuf/uapi/user_copy.h"

namespace zbuf::iio {
namespace {

using uapi::OpenFile;

struct DeviceNode {
  std::shared_ptr<IioDevice> device;
  std::string path;
  std::atomic<bool> open{false};  // IIO_BUSY_BIT_POS of the character device
  std::atomic<std::uint64_t> sampleRate{0};
};

// poll on an IIO buffer (iio_buffer_poll): input POLLIN once read() would not wait, output
// POLLOUT once write() would not wait.
short pollBuffer(IioBuffer& buffer, short events, uapi::PollTable* table) {
  if (table != nullptr) {
    table->wait(buffer.pollWaitQueue());
  }
  if (buffer.fileioAvailable() == 0) {
    return 0;
  }
  const short ready = buffer.isInput() ? short{POLLIN | POLLRDNORM} : short{POLLOUT | POLLWRNORM};
  return static_cast<short>(ready & events);
}

// NOLINTNEXTLINE(cppcoreguidelines-virtual-class-destructor) final, and a static never destroyed
class BufferOps final : public uapi::FileOperations {
 public:
  [[nodiscard]] std::string_view name() const noexcept override { return "iio:buffer"; }

  Result<long> ioctl(const OpenFile& f, unsigned cmd, void* arg) const override {
    IioBufferFile& file = f.file().data<IioBufferFile>();
    file.setNonBlocking(f.nonBlocking());
    switch (cmd) {
      case kDmabufAttachIoctl: {
        // iio_buffer_attach_dmabuf: no DMABUF support is EPERM before the argument is read.
        if (!file.buffer().dmabufSupported()) {
          return Error(EPERM, "iio_buffer_attach_dmabuf", "this buffer has no DMABUF interface");
        }
        ZBUF_ASSIGN_OR_RETURN(auto fd, uapi::copyFromUser<int>(arg, "iio_buffer_attach_dmabuf"));
        ZBUF_ASSIGN_OR_RETURN(auto buffer, f.context().bufferFromFd(fd));
        ZBUF_TRY(file.attach(buffer));
        return 0L;
      }
      case kDmabufDetachIoctl: {
        ZBUF_ASSIGN_OR_RETURN(auto fd, uapi::copyFromUser<int>(arg, "iio_buffer_detach_dmabuf"));
        ZBUF_ASSIGN_OR_RETURN(auto buffer, f.context().bufferFromFd(fd));
        ZBUF_TRY(file.detach(*buffer));
        return 0L;
      }
      case kDmabufEnqueueIoctl: {
        constexpr const char* kOp = "iio_buffer_enqueue_dmabuf";
        ZBUF_ASSIGN_OR_RETURN(auto req, uapi::copyFromUser<iio_dmabuf>(arg, kOp));
        // The kernel checks the flags before it looks the fd up.
        if ((req.flags & ~kDmabufSupportedFlags) != 0) {
          return Error(EINVAL, kOp, fmt::format("unknown flags {:#x}", req.flags));
        }
        if ((req.flags & kDmabufCyclic) != 0 && file.buffer().isInput()) {
          return Error(EINVAL, kOp, "CYCLIC is only supported on output");
        }
        ZBUF_ASSIGN_OR_RETURN(auto buffer, f.context().bufferFromFd(static_cast<int>(req.fd)));
        ZBUF_TRY(file.enqueue(*buffer, req.bytes_used, req.flags));
        return 0L;
      }
      default:
        return Error(EINVAL, "iio_buffer_chrdev_ioctl", fmt::format("unknown ioctl {:#x}", cmd));
    }
  }

  Result<std::size_t> read(const OpenFile& f, std::span<std::byte> out,
                           std::int64_t& /*pos*/) const override {
    IioBufferFile& file = f.file().data<IioBufferFile>();
    file.setNonBlocking(f.nonBlocking());
    return file.read(out);
  }

  Result<std::size_t> write(const OpenFile& f, std::span<const std::byte> in,
                            std::int64_t& /*pos*/) const override {
    IioBufferFile& file = f.file().data<IioBufferFile>();
    file.setNonBlocking(f.nonBlocking());
    return file.write(in);
  }

  short poll(const OpenFile& f, short events, uapi::PollTable* table) const override {
    return pollBuffer(f.file().data<IioBufferFile>().buffer(), events, table);
  }

  // noop_llseek: the position stays where it is.
  Result<std::int64_t> llseek(const OpenFile& /*f*/, std::int64_t /*offset*/, int /*whence*/,
                              std::int64_t& pos) const override {
    return pos;
  }
};

static_assert(uapi::IsFileOperations<BufferOps>);
constinit const BufferOps kBufferOps;

// NOLINTNEXTLINE(cppcoreguidelines-virtual-class-destructor) final, and a static never destroyed
class DeviceOps final : public uapi::FileOperations {
 public:
  [[nodiscard]] std::string_view name() const noexcept override { return "iio:device"; }

  Result<long> ioctl(const OpenFile& f, unsigned cmd, void* arg) const override {
    constexpr const char* kOp = "iio_device_buffer_getfd";
    if (cmd != kGetFdIoctl) {
      return Error(ENODEV, "iio_ioctl", fmt::format("unhandled ioctl {:#x}", cmd));
    }
    ZBUF_ASSIGN_OR_RETURN(auto index, uapi::copyFromUser<int>(arg, kOp));
    if (index < 0) {
      return Error(ENODEV, kOp, fmt::format("no buffer {}", index));
    }
    const DeviceNode& node = f.file().data<DeviceNode>();
    ZBUF_ASSIGN_OR_RETURN(auto opened, node.device->openBuffer(static_cast<unsigned>(index)));
    ZBUF_ASSIGN_OR_RETURN(
        auto fd,
        f.context().installFile(kBufferOps, std::shared_ptr<IioBufferFile>(std::move(opened)),
                                "iio:buffer", O_RDWR));
    const int out = fd.get();
    ZBUF_TRY(uapi::copyToUser(arg, out, kOp));
    (void)fd.release();
    return 0L;
  }

  // The legacy interface: read, write and poll of the character device are buffer 0's.
  Result<std::size_t> read(const OpenFile& f, std::span<std::byte> out,
                           std::int64_t& /*pos*/) const override {
    ZBUF_ASSIGN_OR_RETURN(auto buffer, f.file().data<DeviceNode>().device->buffer(0));
    return buffer->read(out, f.nonBlocking());
  }

  Result<std::size_t> write(const OpenFile& f, std::span<const std::byte> in,
                            std::int64_t& /*pos*/) const override {
    ZBUF_ASSIGN_OR_RETURN(auto buffer, f.file().data<DeviceNode>().device->buffer(0));
    return buffer->write(in, f.nonBlocking());
  }

  short poll(const OpenFile& f, short events, uapi::PollTable* table) const override {
    auto buffer = f.file().data<DeviceNode>().device->buffer(0);
    return buffer.ok() ? pollBuffer(**buffer, events, table) : short{0};
  }

  void stat(const uapi::File& /*file*/, uapi::FileStat& st) const override {
    st.mode = S_IFCHR | 0600;
  }

  [[nodiscard]] std::string linkName(const uapi::File& file) const override {
    return file.data<DeviceNode>().path;
  }

  void release(uapi::File& file) const override { file.data<DeviceNode>().open.store(false); }
};

static_assert(uapi::IsFileOperations<DeviceOps>);
constinit const DeviceOps kDeviceOps;

std::string line(std::uint64_t v) {
  return fmt::format("{}\n", v);
}

Result<void> addBufferAttrs(uapi::Context& ctx, const std::string& dir, IioBuffer& buffer,
                            const std::shared_ptr<DeviceNode>& node) {
  // `node` keeps the device (and so the buffer) alive for as long as the attributes exist.
  ZBUF_TRY(uapi::addSysfsAttr(
      ctx, dir + "/enable",
      {[node, &buffer]() -> Result<std::string> { return line(buffer.enabled() ? 1 : 0); },
       [node, &buffer](std::string_view text) -> Result<void> {
         ZBUF_ASSIGN_OR_RETURN(auto on, uapi::parseSysfsBool(text));
         if (on) {
           return buffer.enable();
         }
         buffer.disable();
         return {};
       }}));
  ZBUF_TRY(uapi::addSysfsAttr(
      ctx, dir + "/length",
      {[node, &buffer]() -> Result<std::string> { return line(buffer.length()); },
       [node, &buffer](std::string_view text) -> Result<void> {
         ZBUF_ASSIGN_OR_RETURN(auto v, uapi::parseSysfsU64(text));
         return buffer.setLength(v);
       }}));
  ZBUF_TRY(uapi::addSysfsAttr(
      ctx, dir + "/watermark",
      {[node, &buffer]() -> Result<std::string> { return line(buffer.watermark()); },
       [node, &buffer](std::string_view text) -> Result<void> {
         ZBUF_ASSIGN_OR_RETURN(auto v, uapi::parseSysfsU64(text));
         return buffer.setWatermark(v);
       }}));
  return {};
}

Result<void> addScanElements(uapi::Context& ctx, const std::string& dir, const IioDevice& device,
                             const std::shared_ptr<DeviceNode>& node) {
  const SampleFormat& fmt = device.format();
  const char* prefix = device.direction() == IioDirection::Input ? "in" : "out";
  for (unsigned c = 0; c < fmt.channels; ++c) {
    const std::string base = fmt::format("{}/{}_voltage{}", dir, prefix, c);
    ZBUF_TRY(uapi::addSysfsAttr(
        ctx, base + "_en",
        {[node]() -> Result<std::string> { return std::string("1\n"); },
         [node](std::string_view text) -> Result<void> {
           ZBUF_ASSIGN_OR_RETURN(auto on, uapi::parseSysfsBool(text));
           if (!on) {
             return Error(EINVAL, "iio_scan_el_store",
                          "the emulated device streams every channel; it cannot be disabled");
           }
           return {};
         }}));
    ZBUF_TRY(uapi::addSysfsAttr(ctx, base + "_index",
                                {[node, c]() -> Result<std::string> { return line(c); }, {}}));
    const unsigned bits = fmt.bytesPerSample * 8;
    ZBUF_TRY(uapi::addSysfsAttr(ctx, base + "_type",
                                {[node, bits, sign = fmt.isSigned]() -> Result<std::string> {
                                   return fmt::format("le:{}{}/{}>>0\n", sign ? 's' : 'u', bits,
                                                      bits);
                                 },
                                 {}}));
  }
  return {};
}

}  // namespace

const uapi::FileOperations& bufferFileOperations() noexcept {
  return kBufferOps;
}

Result<void> addToContext(uapi::Context& context, std::shared_ptr<IioDevice> device,
                          unsigned index) {
  if (!device) {
    return Error(EINVAL, "iio_device_register", "no device");
  }
  auto node = std::make_shared<DeviceNode>();
  node->path = fmt::format("/dev/iio:device{}", index);
  node->sampleRate = device->config().sampleRate;
  node->device = std::move(device);
  ZBUF_TRY(context.addNode(node->path, [node](uapi::Context& ctx, int flags) -> Result<UniqueFd> {
    bool expected = false;
    if (!node->open.compare_exchange_strong(expected, true)) {
      return Error(EBUSY, "iio_chrdev_open", fmt::format("{} is already open", node->path));
    }
    auto fd = ctx.installFile(kDeviceOps, node, "iio:device", flags);
    if (!fd.ok()) {
      node->open.store(false);
    }
    return fd;
  }));
  const std::string sys = fmt::format("/sys/bus/iio/devices/iio:device{}", index);
  IioDevice& dev = *node->device;
  ZBUF_TRY(uapi::addSysfsAttr(
      context, sys + "/name",
      {[node]() -> Result<std::string> { return node->device->name() + "\n"; }, {}}));
  ZBUF_TRY(
      uapi::addSysfsAttr(context, sys + "/sampling_frequency",
                         {[node]() -> Result<std::string> { return line(node->sampleRate.load()); },
                          [node](std::string_view text) -> Result<void> {
                            ZBUF_ASSIGN_OR_RETURN(auto v, uapi::parseSysfsU64(text));
                            for (unsigned b = 0; b < node->device->bufferCount(); ++b) {
                              (*node->device->buffer(b))->setSampleRate(v);
                            }
                            node->sampleRate = v;
                            return {};
                          }}));
  // The converter's test pattern, as ADI's AXI ADC drivers offer one (in_voltage_test_mode):
  // what the ADC generates, or what the DAC's checker expects. Changing it is EBUSY while a
  // buffer is enabled.
  ZBUF_TRY(uapi::addSysfsAttr(
      context, sys + "/test_mode",
      {[node]() -> Result<std::string> {
         ZBUF_ASSIGN_OR_RETURN(auto* b, node->device->buffer(0));
         return std::string(toString(b->pattern())) + "\n";
       },
       [node](std::string_view text) -> Result<void> {
         while (!text.empty() && (text.back() == '\n' || text.back() == '\0')) {
           text.remove_suffix(1);
         }
         auto kind = parsePatternKind(text);
         if (!kind.ok()) {
           return Error(EINVAL, "test_mode", fmt::format("'{}' is not a test mode", text));
         }
         for (unsigned b = 0; b < node->device->bufferCount(); ++b) {
           if ((*node->device->buffer(b))->enabled()) {
             return Error(EBUSY, "test_mode", "a buffer is enabled");
           }
         }
         for (unsigned b = 0; b < node->device->bufferCount(); ++b) {
           ZBUF_TRY((*node->device->buffer(b))->setPattern(*kind));
         }
         return {};
       }}));
  ZBUF_TRY(uapi::addSysfsAttr(context, sys + "/test_mode_available",
                              {[]() -> Result<std::string> {
                                 return fmt::format("{} {}\n", toString(PatternKind::Ramp),
                                                    toString(PatternKind::Prbs));
                               },
                               {}}));
  ZBUF_TRY(addScanElements(context, sys + "/scan_elements", dev, node));
  for (unsigned b = 0; b < dev.bufferCount(); ++b) {
    IioBuffer& buffer = **dev.buffer(b);
    const std::string dir = fmt::format("{}/buffer{}", sys, b);
    ZBUF_TRY(addBufferAttrs(context, dir, buffer, node));
    ZBUF_TRY(addScanElements(context, dir, dev, node));
    if (b == 0) {
      ZBUF_TRY(addBufferAttrs(context, sys + "/buffer", buffer, node));
    }
  }
  return {};
}

}  // namespace zbuf::iio
