#include "zbuf/core/bufinfo.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "core/fake_exporter.h"
#include "zbuf/core/fence.h"

namespace zbuf {
namespace {

const BufInfoEntry* find(const BufInfo& info, std::uint64_t inode) {
  for (const BufInfoEntry& e : info.buffers) {
    if (e.inode == inode) {
      return &e;
    }
  }
  return nullptr;
}

TEST(BufInfoTest, StructuredEntry) {
  auto c = std::make_shared<test::FakeCounters>();
  BufferPtr b = test::fakeBuffer(c, 8192);
  ASSERT_TRUE(b->setName("frames").ok());
  auto a = b->attach(Device::create({.name = "adc0"}));
  ASSERT_TRUE(a.ok());
  auto info = collectBufInfo();
  const BufInfoEntry* e = find(info, b->inode());
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->size, 8192U);
  EXPECT_EQ(e->flags, static_cast<unsigned>(O_RDWR));
  EXPECT_EQ(e->mode, 0x80007U);
  EXPECT_EQ(e->count, 2);  // `b` and the attachment
  EXPECT_EQ(e->exporterName, "fake");
  ASSERT_TRUE(e->name.has_value());
  EXPECT_EQ(*e->name, "frames");
  ASSERT_EQ(e->devices.size(), 1U);
  EXPECT_EQ(e->devices[0], "adc0");
  EXPECT_GE(info.totalBytes, 8192U);
}

TEST(BufInfoTest, KernelTextFormat) {
  auto c = std::make_shared<test::FakeCounters>();
  BufferPtr b = test::fakeBuffer(c, 4096);
  auto tl = Timeline::create("drv", "tl");
  auto kernel = tl->createFence();
  auto writer = tl->createFence();
  auto bookkeep = Timeline::create("drv", "bk")->createFence();
  writer->signal();
  ASSERT_TRUE(b->resv().lock().ok());
  ASSERT_TRUE(b->resv().reserveFencesLocked(3).ok());
  b->resv().addFenceLocked(kernel, ResvUsage::Kernel);
  b->resv().addFenceLocked(bookkeep, ResvUsage::Bookkeep);
  b->resv().unlock();
  auto tl2 = Timeline::create("drv2", "tl2");
  auto w2 = tl2->createFence();
  w2->signal();
  ASSERT_TRUE(b->resv().lock().ok());
  ASSERT_TRUE(b->resv().reserveFencesLocked(1).ok());
  b->resv().addFenceLocked(w2, ResvUsage::Write);
  b->resv().unlock();
  auto a1 = b->attach(Device::create({.name = "dev-a"}));
  auto a2 = b->attach(Device::create({.name = "dev-b"}));
  ASSERT_TRUE(a1.ok() && a2.ok());

  BufInfo info;
  for (const BufInfoEntry& e : collectBufInfo().buffers) {
    if (e.inode == b->inode()) {
      info.buffers.push_back(e);
      info.totalBytes += e.size;
    }
  }
  const std::string text = formatBufInfo(info);
  const std::string expected = fmt::format(
      "\nDma-buf Objects:\n"
      "size    \tflags   \tmode    \tcount   \texp_name\tino     \tname\n"
      "00004096\t00000002\t00080007\t00000003\tfake\t{:08}\t<none>\n"
      "\tkernel fence:drv tl seq 1 unsignalled\n"
      "\twrite fence:drv2 tl2 seq 1 signalled\n"
      "\tAttached Devices:\n"
      "\tdev-a\n"
      "\tdev-b\n"
      "Total 2 devices attached\n\n"
      "\nTotal 1 objects, 4096 bytes\n",
      b->inode());
  EXPECT_EQ(text, expected);
  kernel->signal();
  bookkeep->signal();
}

TEST(BufInfoTest, EmptyNameAndFooterTotals) {
  auto c = std::make_shared<test::FakeCounters>();
  BufferPtr b1 = test::fakeBuffer(c, 4096);
  BufferPtr b2 = test::fakeBuffer(c, 8192);
  ASSERT_TRUE(b1->setName("").ok());
  const std::string text = bufInfoText();
  EXPECT_NE(text.find(fmt::format("\t{:08}\t\n", b1->inode())), std::string::npos);
  EXPECT_NE(text.find(fmt::format("\t{:08}\t<none>\n", b2->inode())), std::string::npos);
  auto info = collectBufInfo();
  EXPECT_NE(text.find(fmt::format("\nTotal {} objects, {} bytes\n", info.buffers.size(),
                                  info.totalBytes)),
            std::string::npos);
  EXPECT_EQ(find(info, b1->inode())->devices.size(), 0U);
}

TEST(BufInfoTest, ReleasedBuffersDisappear) {
  auto c = std::make_shared<test::FakeCounters>();
  BufferPtr b = test::fakeBuffer(c, 4096);
  const std::uint64_t ino = b->inode();
  EXPECT_NE(find(collectBufInfo(), ino), nullptr);
  b.reset();
  EXPECT_EQ(find(collectBufInfo(), ino), nullptr);
}

}  // namespace
}  // namespace zbuf

namespace zbuf {
namespace {

TEST(BufInfoParse, TheKernelsTextReadsBackAsItWasWritten) {
  BufInfo info;
  BufInfoEntry a;
  a.size = 1 << 20;
  a.flags = 2;
  a.mode = 0x80007;
  a.count = 3;
  a.exporterName = "system";
  a.inode = 7;
  a.name = "adc block\twith a tab";
  a.fences = {{"write", "iio", "iio", 1, false}, {"read", "functionfs", "", 2, true}};
  a.devices = {"iio:device0", "ffs.usb0"};
  BufInfoEntry b;
  b.size = 4096;
  b.exporterName = "udmabuf";
  b.inode = 8;
  info.buffers = {a, b};
  info.totalBytes = a.size + b.size;
  const std::string text = formatBufInfo(info);
  auto back = parseBufInfo(text);
  ASSERT_TRUE(back.ok()) << back.error().describe();
  EXPECT_EQ(formatBufInfo(*back), text);
  ASSERT_EQ(back->buffers.size(), 2U);
  EXPECT_EQ(back->buffers[0].name, a.name);
  EXPECT_FALSE(back->buffers[1].name.has_value());
  ASSERT_EQ(back->buffers[0].fences.size(), 2U);
  EXPECT_EQ(back->buffers[0].fences[1].timeline, "");
  EXPECT_TRUE(back->buffers[0].fences[1].signalled);
  EXPECT_EQ(back->buffers[0].devices, a.devices);
  EXPECT_EQ(back->totalBytes, a.size + b.size);
  // And the live listing.
  auto live = parseBufInfo(bufInfoText());
  ASSERT_TRUE(live.ok());
}

TEST(BufInfoParse, WhatIsNotAListingIsEinval) {
  EXPECT_EQ(parseBufInfo("").code(), EINVAL);
  EXPECT_EQ(parseBufInfo("hello\n").code(), EINVAL);
  EXPECT_EQ(parseBufInfo("\nDma-buf Objects:\n\tstray fence line\n").code(), EINVAL);
  EXPECT_EQ(parseBufInfo("\nDma-buf Objects:\nxyz\t1\t2\t3\tsystem\t4\t<none>\n").code(), EINVAL);
  auto empty = parseBufInfo(formatBufInfo(BufInfo{}));
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->buffers.empty());
}

}  // namespace
}  // namespace zbuf
