// IioBufferFile (devices/iio/iio_buffer_file.h) through its C++ API, as a pipeline uses it: the
// file's O_NONBLOCK (off by default) forwarded with every call, ENQUEUE's fence in the buffer's
// resv with the direction's usage, and closing the file detaching every DMABUF and freeing the
// buffer for the next GET_FD.
#include "zbuf/devices/iio/iio_buffer_file.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <memory>

#include "zbuf/core/resv.h"
#include "zbuf/devices/iio/iio_device.h"
#include "zbuf/heaps/system_heap.h"

namespace zbuf::iio {
namespace {

constexpr std::uint64_t kBlock = 4096;

struct Open {
  explicit Open(IioDirection dir = IioDirection::Input) {
    IioDeviceConfig c;
    c.direction = dir;
    c.length = 4096;
    device = IioDevice::create(c).value();
    file = std::move(device->openBuffer(0).value());
  }
  std::shared_ptr<IioDevice> device;
  std::unique_ptr<IioBufferFile> file;
};

bool inResv(const Buffer& b, const FencePtr& f, ResvUsage usage) {
  auto all = b.resv().entries(ResvUsage::Bookkeep);
  return std::any_of(all.begin(), all.end(),
                     [&](const Resv::Entry& e) { return e.fence == f && e.usage == usage; });
}

TEST(IioBufferFile, ItIsBlockingByDefaultAndForwardsItsNonBlockingFlag) {
  Open o;
  EXPECT_FALSE(o.file->nonBlocking());
  std::array<std::byte, 64> bytes{};
  // Disabled: a blocking read is the end of file, a non-blocking one EAGAIN.
  EXPECT_EQ(o.file->read(bytes).value(), 0U);
  o.file->setNonBlocking(true);
  EXPECT_TRUE(o.file->nonBlocking());
  EXPECT_EQ(o.file->read(bytes).code(), EAGAIN);
  o.file->setNonBlocking(false);
  EXPECT_EQ(o.file->read(bytes).value(), 0U);
}

TEST(IioBufferFile, ReadAndWriteGoToTheBufferInItsDirection) {
  std::array<std::byte, 64> bytes{};
  Open adc(IioDirection::Input);
  EXPECT_EQ(adc.file->write(bytes).code(), EPERM);
  Open dac(IioDirection::Output);
  EXPECT_EQ(dac.file->read(bytes).code(), EPERM);
}

TEST(IioBufferFile, InputEnqueuesFenceIsAWriterInTheBuffersResv) {
  Open o(IioDirection::Input);
  BufferPtr b = SystemHeap::instance()->allocate(kBlock).value();
  ASSERT_TRUE(o.file->attach(b).ok());
  auto f = o.file->enqueue(*b, kBlock);  // disabled: parked until enable
  ASSERT_TRUE(f.ok()) << f.error().describe();
  EXPECT_TRUE(inResv(*b, *f, ResvUsage::Write));
  ASSERT_TRUE(o.file->buffer().enable().ok());
  ASSERT_TRUE((*f)->wait().ok());
  EXPECT_EQ((*f)->error(), 0);
  EXPECT_EQ(o.file->buffer().stats().dmabufCompleted, 1U);
}

TEST(IioBufferFile, OutputEnqueuesFenceIsAReaderInTheBuffersResv) {
  Open o(IioDirection::Output);
  BufferPtr b = SystemHeap::instance()->allocate(kBlock).value();
  ASSERT_TRUE(o.file->attach(b).ok());
  auto f = o.file->enqueue(*b, kBlock);
  ASSERT_TRUE(f.ok()) << f.error().describe();
  EXPECT_TRUE(inResv(*b, *f, ResvUsage::Read));
  EXPECT_FALSE(inResv(*b, *f, ResvUsage::Write));
  ASSERT_TRUE(o.file->buffer().enable().ok());
  ASSERT_TRUE((*f)->wait().ok());
}

TEST(IioBufferFile, DetachIsEpermForABufferThatIsNotAttached) {
  Open o;
  BufferPtr b = SystemHeap::instance()->allocate(kBlock).value();
  EXPECT_EQ(o.file->detach(*b).code(), EPERM);
  ASSERT_TRUE(o.file->attach(b).ok());
  EXPECT_TRUE(o.file->detach(*b).ok());
  EXPECT_EQ(o.file->detach(*b).code(), EPERM);
}

TEST(IioBufferFile, ClosingDetachesEveryDmabufAndFreesTheBuffer) {
  Open o;
  BufferPtr a = SystemHeap::instance()->allocate(kBlock).value();
  BufferPtr b = SystemHeap::instance()->allocate(kBlock).value();
  ASSERT_TRUE(o.file->attach(a).ok());
  ASSERT_TRUE(o.file->attach(b).ok());
  IioBuffer& buffer = o.file->buffer();
  EXPECT_EQ(buffer.stats().dmabufAttached, 2U);
  EXPECT_EQ(o.device->openBuffer(0).code(), EBUSY);
  o.file.reset();
  EXPECT_EQ(buffer.stats().dmabufAttached, 0U);
  EXPECT_TRUE(a->attachments().empty());
  EXPECT_TRUE(b->attachments().empty());
  auto again = o.device->openBuffer(0);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE((*again)->nonBlocking());
}

}  // namespace
}  // namespace zbuf::iio
