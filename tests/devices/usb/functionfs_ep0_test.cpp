// ctest-labels: concurrency
// FunctionFS ep0 as the kernel's: descriptors and strings written to it (every malformed blob
// with the kernel's errno), the endpoint files appearing then, the events read and polled from
// it as the host configures, disconnects, suspends, and the reset when every file is closed.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/eventfd.h>

#include <atomic>
#include <thread>
#include <vector>

#include "ffs_rig.h"
#include "zbuf/base/sys.h"

namespace zbuf::usb {
namespace {

using testing::Bytes;
using testing::defaultDescriptors;
using testing::descriptorsBlob;
using testing::endpointDesc;
using testing::interfaceDesc;
using testing::Rig;
using testing::RigOptions;
using testing::Speed;
using testing::stringsBlob;
using Ev = FfsEventType;

constexpr std::uint32_t kFsHs = kFfsHasFsDesc | kFfsHasHsDesc;

RigOptions fromEp0(bool enumerate = false) {
  return RigOptions{.descriptorsFromEp0 = true, .enumerate = enumerate};
}

short pollNow(Rig& rig, int fd, short events) {
  struct pollfd p {
    fd, events, 0
  };
  EXPECT_TRUE(rig.ctx->poll({&p, 1}, 0).ok());
  return p.revents;
}

// --- before and after the descriptors ------------------------------------------------------------

TEST(FfsEp0, BeforeItsDescriptorsTheFunctionHasOnlyEp0) {
  Rig rig(fromEp0());
  EXPECT_EQ(rig.open("ep1").code(), ENOENT);
  auto ep0 = rig.mustOpen("ep0");
  std::vector<std::byte> buf(12);
  EXPECT_EQ(rig.read(ep0.get(), buf), -EBADFD);
  EXPECT_EQ(pollNow(rig, ep0.get(), POLLIN | POLLOUT), POLLOUT);
  EXPECT_EQ(pollNow(rig, ep0.get(), POLLWRNORM), POLLWRNORM);
  EXPECT_EQ(rig.write(ep0.get(), std::span(buf).first(15)), -EINVAL);  // below 16 bytes
  EXPECT_FALSE(rig.function->bound());                                 // bound once ready
}

TEST(FfsEp0, TheEndpointFilesAppearOnceTheStringsAreWritten) {
  Rig rig(fromEp0());
  auto ep0 = rig.mustOpen("ep0");
  const Bytes d = defaultDescriptors();
  ASSERT_EQ(rig.write(ep0.get(), d), static_cast<long>(d.size()));
  EXPECT_EQ(rig.function->state(), FfsState::ReadStrings);
  EXPECT_EQ(rig.open("ep1").code(), ENOENT);
  EXPECT_EQ(pollNow(rig, ep0.get(), POLLIN | POLLOUT), POLLOUT);
  const Bytes s = stringsBlob();
  ASSERT_EQ(rig.write(ep0.get(), s), static_cast<long>(s.size()));
  EXPECT_EQ(rig.function->state(), FfsState::Active);
  EXPECT_EQ(rig.function->dataEndpoints(), 2U);
  EXPECT_TRUE(rig.function->bound());
  EXPECT_TRUE(rig.open("ep1").ok());
  EXPECT_TRUE(rig.open("ep2").ok());
  EXPECT_EQ(rig.open("ep3").code(), ENOENT);
  EXPECT_EQ(rig.events(ep0.get()), std::vector<Ev>{Ev::Bind});
  // Active, with no control request pending: a write is ESRCH.
  EXPECT_EQ(rig.write(ep0.get(), s), -ESRCH);
}

TEST(FfsEp0, DirectionsAndDescriptorsComeFromTheEndpointDescriptors) {
  Rig rig(fromEp0(/*enumerate=*/true));
  auto ep0 = rig.mustOpen("ep0");
  const Speed fs{interfaceDesc(), endpointDesc(0x01, 64), endpointDesc(0x82, 64)};
  const Speed hs{interfaceDesc(), endpointDesc(0x01, 512), endpointDesc(0x82, 512)};
  const Bytes d = descriptorsBlob(kFsHs, {fs, hs});
  ASSERT_EQ(rig.write(ep0.get(), d), static_cast<long>(d.size()));
  const Bytes s = stringsBlob();
  ASSERT_EQ(rig.write(ep0.get(), s), static_cast<long>(s.size()));
  EXPECT_TRUE(rig.function->enabled());  // the host enumerated it when it connected
  auto ep1 = rig.mustOpen("ep1");
  auto ep2 = rig.mustOpen("ep2");
  std::vector<std::byte> buf(16);
  EXPECT_EQ(rig.write(ep1.get(), buf), -EBADMSG);  // ep1 is OUT
  EXPECT_EQ(rig.write(ep2.get(), buf), 16);        // ep2 is IN
  // 255 for every endpoint, as the kernel (ffs_ep.num is -1 from bind on).
  EXPECT_EQ(rig.ioctl(ep1.get(), kFunctionfsEndpointRevmap, nullptr), 255);
  EXPECT_EQ(rig.ioctl(ep2.get(), kFunctionfsEndpointRevmap, nullptr), 255);
  UsbEndpointDescriptor desc{};
  ASSERT_EQ(rig.ioctl(ep2.get(), kFunctionfsEndpointDesc, &desc), 0);
  EXPECT_EQ(desc.bEndpointAddress, 0x82);
  EXPECT_EQ(desc.wMaxPacketSize, 512);  // no super-speed descriptors: high speed's
}

TEST(FfsEp0, VirtualAddressesNameTheFilesByAddress) {
  Rig rig(fromEp0());
  auto ep0 = rig.mustOpen("ep0");
  const Bytes d = defaultDescriptors(kFfsVirtualAddr);
  ASSERT_EQ(rig.write(ep0.get(), d), static_cast<long>(d.size()));
  const Bytes s = stringsBlob();
  ASSERT_EQ(rig.write(ep0.get(), s), static_cast<long>(s.size()));
  EXPECT_EQ(rig.function->endpointFileNames(), (std::vector<std::string>{"ep81", "ep02"}));
  EXPECT_TRUE(rig.open("ep81").ok());
  EXPECT_TRUE(rig.open("ep02").ok());
  EXPECT_EQ(rig.open("ep1").code(), ENOENT);
}

TEST(FfsEp0, TheLegacyHeaderHasFullAndHighSpeed) {
  Rig rig(fromEp0());
  auto ep0 = rig.mustOpen("ep0");
  Bytes d = descriptorsBlob(kFsHs, {{interfaceDesc(0, 1), endpointDesc(0x81)},
                                    {interfaceDesc(0, 1), endpointDesc(0x81)}});
  // Legacy: magic 1, length, fs_count, hs_count (no flags word).
  d.erase(d.begin() + 8, d.begin() + 12);
  testing::set32(d, 0, kFfsDescriptorsMagic);
  testing::set32(d, 4, static_cast<std::uint32_t>(d.size()));
  ASSERT_EQ(rig.write(ep0.get(), d), static_cast<long>(d.size()));
  const Bytes s = stringsBlob();
  ASSERT_EQ(rig.write(ep0.get(), s), static_cast<long>(s.size()));
  EXPECT_EQ(rig.function->dataEndpoints(), 1U);
}

// --- malformed descriptors
// -------------------------------------------------------------------------

struct BadDescriptors {
  const char* what;
  Bytes blob;
  int err;
};

std::vector<BadDescriptors> badDescriptors() {
  const Speed fs{interfaceDesc(), endpointDesc(0x81), endpointDesc(0x02)};
  std::vector<BadDescriptors> cases;
  Bytes b = descriptorsBlob(kFfsHasFsDesc, {fs});
  testing::set32(b, 4, static_cast<std::uint32_t>(b.size() + 1));
  cases.push_back({"length field", b, EINVAL});
  b = descriptorsBlob(kFfsHasFsDesc, {fs});
  testing::set32(b, 0, 7);
  cases.push_back({"magic", b, EINVAL});
  cases.push_back({"unknown flag", descriptorsBlob(kFfsHasFsDesc | 0x100, {fs}), ENOSYS});
  b = descriptorsBlob(kFfsHasFsDesc, {fs});
  testing::set32(b, 12, 4);  // fs_count 4, 3 present
  cases.push_back({"count beyond the data", b, EINVAL});
  b = descriptorsBlob(kFfsHasFsDesc, {fs});
  b[b.size() - 7] = std::byte{9};  // the last endpoint claims 9 bytes, 7 are left
  cases.push_back({"descriptor longer than the data", b, EINVAL});
  Bytes device{std::byte{18}, std::byte{kUsbDtDevice}};
  device.resize(18);
  cases.push_back({"device descriptor", descriptorsBlob(kFfsHasFsDesc, {{device}}), EINVAL});
  Bytes shortIf = interfaceDesc();
  shortIf[0] = std::byte{8};
  shortIf.pop_back();
  cases.push_back({"interface bLength", descriptorsBlob(kFfsHasFsDesc, {{shortIf}}), EINVAL});
  cases.push_back({"endpoint bLength 8",
                   descriptorsBlob(kFfsHasFsDesc, {{interfaceDesc(), endpointDesc(0x81, 512, 8)}}),
                   EINVAL});
  cases.push_back({"endpoint number 0",
                   descriptorsBlob(kFfsHasFsDesc, {{interfaceDesc(), endpointDesc(0x80)}}),
                   EINVAL});
  cases.push_back({"endpoint count differs between speeds",
                   descriptorsBlob(kFsHs, {fs, {interfaceDesc(), endpointDesc(0x81)}}), EINVAL});
  cases.push_back(
      {"endpoint address differs between speeds",
       descriptorsBlob(kFsHs, {fs, {interfaceDesc(), endpointDesc(0x81), endpointDesc(0x03)}}),
       EINVAL});
  cases.push_back(
      {"interface count differs between speeds",
       descriptorsBlob(kFsHs, {fs, {interfaceDesc(1), endpointDesc(0x81), endpointDesc(0x02)}}),
       EINVAL});
  cases.push_back({"no descriptors", descriptorsBlob(kFfsHasFsDesc, {{}}), EINVAL});
  b = descriptorsBlob(kFfsHasFsDesc, {fs});
  b.push_back(std::byte{0});
  testing::set32(b, 4, static_cast<std::uint32_t>(b.size()));
  cases.push_back({"trailing byte", b, EINVAL});
  Speed many{interfaceDesc(0, 31)};
  for (unsigned i = 1; i <= 31; ++i) {
    many.push_back(endpointDesc(0x80 | (i % 15 + 1)));
  }
  cases.push_back({"31 endpoints", descriptorsBlob(kFfsHasFsDesc, {many}), EINVAL});
  cases.push_back(
      {"unsupported descriptor type",
       descriptorsBlob(kFfsHasFsDesc, {{interfaceDesc(), Bytes{std::byte{2}, std::byte{0x42}}}}),
       EINVAL});
  Bytes hid(9, std::byte{0});
  hid[0] = std::byte{9};
  hid[1] = std::byte{kUsbDtClassHid};
  cases.push_back({"HID class descriptor outside a HID interface",
                   descriptorsBlob(kFfsHasFsDesc, {{interfaceDesc(), hid}}), EINVAL});
  return cases;
}

TEST(FfsEp0, EachMalformedDescriptorsBlobHasTheKernelsErrno) {
  for (const auto& c : badDescriptors()) {
    Rig rig(fromEp0());
    auto ep0 = rig.mustOpen("ep0");
    EXPECT_EQ(rig.write(ep0.get(), c.blob), -c.err) << c.what;
    EXPECT_EQ(rig.function->state(), FfsState::ReadDescriptors) << c.what;
    // The function still takes good descriptors after a bad write.
    const Bytes d = defaultDescriptors();
    EXPECT_EQ(rig.write(ep0.get(), d), static_cast<long>(d.size())) << c.what;
  }
}

TEST(FfsEp0, HidAndSuperSpeedCompanionDescriptorsAreAccepted) {
  Rig rig(fromEp0());
  auto ep0 = rig.mustOpen("ep0");
  Bytes hid(9, std::byte{0});
  hid[0] = std::byte{9};
  hid[1] = std::byte{kUsbDtClassHid};
  const Bytes d = descriptorsBlob(
      kFfsHasSsDesc, {{interfaceDesc(0, 1, 0, 3), hid, endpointDesc(0x81), testing::ssCompDesc()}});
  EXPECT_EQ(rig.write(ep0.get(), d), static_cast<long>(d.size()));
}

TEST(FfsEp0, TheEventfdMustBeAnOpenEventfd) {
  {
    Rig rig(fromEp0());
    auto ep0 = rig.mustOpen("ep0");
    EXPECT_EQ(rig.write(ep0.get(), defaultDescriptors(kFfsEventfd, 9999)), -EBADF);
    auto [r, w] = sys::pipe().value();
    EXPECT_EQ(rig.write(ep0.get(), defaultDescriptors(kFfsEventfd, r.get())), -EINVAL);
  }
  Rig rig(fromEp0());
  auto ep0 = rig.mustOpen("ep0");
  auto efd = sys::eventfd(0, EFD_NONBLOCK).value();
  const Bytes d = defaultDescriptors(kFfsEventfd, efd.get());
  ASSERT_EQ(rig.write(ep0.get(), d), static_cast<long>(d.size()));
  const Bytes s = stringsBlob();
  ASSERT_EQ(rig.write(ep0.get(), s), static_cast<long>(s.size()));  // BIND: 1
  ASSERT_TRUE(rig.host.configure().ok());                           // ENABLE: 2
  EXPECT_EQ(sys::eventfdRead(efd.get()).value(), 2U);
}

// --- malformed strings
// -----------------------------------------------------------------------------

TEST(FfsEp0, EachMalformedStringsBlobIsEinval) {
  std::vector<std::pair<const char*, Bytes>> cases;
  Bytes b = stringsBlob();
  testing::set32(b, 0, kFfsDescriptorsMagicV2);
  cases.emplace_back("magic", b);
  b = stringsBlob();
  testing::set32(b, 4, static_cast<std::uint32_t>(b.size() - 1));
  cases.emplace_back("length field", b);
  b = stringsBlob();
  testing::set32(b, 12, 0);  // lang_count 0 with str_count 1
  cases.emplace_back("one count zero", b);
  cases.emplace_back("fewer strings than needed", stringsBlob({}, 0));
  b = stringsBlob();
  b.pop_back();  // the last NUL
  testing::set32(b, 4, static_cast<std::uint32_t>(b.size()));
  cases.emplace_back("no NUL", b);
  b = stringsBlob();
  b.push_back(std::byte{'x'});
  testing::set32(b, 4, static_cast<std::uint32_t>(b.size()));
  cases.emplace_back("trailing bytes", b);
  b = stringsBlob({"a", "b"});
  testing::set32(b, 8, 3);  // three strings promised, two present
  cases.emplace_back("a string missing", b);
  for (const auto& [what, blob] : cases) {
    Rig rig(fromEp0());
    auto ep0 = rig.mustOpen("ep0");
    const Bytes d = defaultDescriptors();  // its interface uses string 1
    ASSERT_EQ(rig.write(ep0.get(), d), static_cast<long>(d.size()));
    EXPECT_EQ(rig.write(ep0.get(), blob), -EINVAL) << what;
    EXPECT_EQ(rig.function->state(), FfsState::ReadStrings) << what;
    EXPECT_EQ(rig.open("ep1").code(), ENOENT) << what;
    const Bytes s = stringsBlob();
    EXPECT_EQ(rig.write(ep0.get(), s), static_cast<long>(s.size())) << what;
  }
}

TEST(FfsEp0, WithNoStringNeededTheRestOfTheStringsBlobIsNotLookedAt) {
  Rig rig(fromEp0());
  auto ep0 = rig.mustOpen("ep0");
  const Bytes d = descriptorsBlob(kFfsHasFsDesc, {{interfaceDesc(0, 1, 0), endpointDesc(0x81)}});
  ASSERT_EQ(rig.write(ep0.get(), d), static_cast<long>(d.size()));
  Bytes s = stringsBlob();
  s.back() = std::byte{'x'};  // no terminating NUL: not looked at
  EXPECT_EQ(rig.write(ep0.get(), s), static_cast<long>(s.size()));
  EXPECT_EQ(rig.function->state(), FfsState::Active);
}

// --- events ------------------------------------------------------------------------------------

TEST(FfsEp0, EventsFollowTheHost) {
  Rig rig({.configure = false});  // built-in endpoints: active and bound at once
  auto ep0 = rig.mustOpen("ep0", O_RDWR | O_NONBLOCK);
  EXPECT_EQ(rig.events(ep0.get()), std::vector<Ev>{Ev::Bind});
  std::vector<std::byte> buf(12);
  EXPECT_EQ(rig.read(ep0.get(), buf), -EAGAIN);  // none queued
  ASSERT_TRUE(rig.host.configure().ok());
  EXPECT_EQ(rig.events(ep0.get()), std::vector<Ev>{Ev::Enable});
  rig.host.disconnect();
  EXPECT_EQ(rig.events(ep0.get()), std::vector<Ev>{Ev::Disable});
  rig.host.disconnect();  // not configured: nothing
  EXPECT_EQ(rig.read(ep0.get(), buf), -EAGAIN);
  ASSERT_TRUE(rig.host.configure().ok());
  EXPECT_EQ(rig.events(ep0.get()), std::vector<Ev>{Ev::Enable});
  rig.host.suspend();
  EXPECT_EQ(rig.events(ep0.get()), std::vector<Ev>{Ev::Suspend});
  rig.host.resume();
  EXPECT_EQ(rig.events(ep0.get()), std::vector<Ev>{Ev::Resume});
  rig.function->unbind();  // DISABLE then UNBIND, which drops the DISABLE
  EXPECT_EQ(rig.events(ep0.get()), std::vector<Ev>{Ev::Unbind});
}

TEST(FfsEp0, QueuedEventsArePurgedAsTheKernelDoes) {
  Rig rig({.configure = false});
  auto ep0 = rig.mustOpen("ep0", O_RDWR | O_NONBLOCK);
  ASSERT_TRUE(rig.host.configure().ok());  // ENABLE drops the unread BIND
  rig.host.suspend();
  rig.host.suspend();     // a SUSPEND drops a queued SUSPEND
  rig.host.disconnect();  // DISABLE drops ENABLE, keeps SUSPEND
  EXPECT_EQ(rig.events(ep0.get()), (std::vector<Ev>{Ev::Suspend, Ev::Disable}));
  ASSERT_TRUE(rig.host.configure().ok());
  rig.host.suspend();
  rig.host.resume();  // RESUME drops SUSPEND
  EXPECT_EQ(rig.events(ep0.get()), (std::vector<Ev>{Ev::Enable, Ev::Resume}));
}

TEST(FfsEp0, ReadsReturnWholeEventsOnly) {
  Rig rig({.configure = false});
  auto ep0 = rig.mustOpen("ep0", O_RDWR | O_NONBLOCK);
  rig.host.suspend();  // not configured: nothing
  ASSERT_TRUE(rig.host.configure().ok());
  rig.host.suspend();
  std::vector<std::byte> small(11);
  EXPECT_EQ(rig.read(ep0.get(), small), -EINVAL);
  std::vector<std::byte> oneAndABit(20);
  EXPECT_EQ(rig.read(ep0.get(), oneAndABit), 12);
  UsbFunctionfsEvent ev{};
  std::memcpy(&ev, oneAndABit.data(), sizeof ev);
  EXPECT_EQ(ev.type, static_cast<std::uint8_t>(Ev::Enable));
  EXPECT_EQ(rig.events(ep0.get()), std::vector<Ev>{Ev::Suspend});
}

TEST(FfsEp0, ABlockingReadWaitsForAnEvent) {
  Rig rig({.configure = false});
  auto ep0 = rig.mustOpen("ep0");
  EXPECT_EQ(rig.events(ep0.get()), std::vector<Ev>{Ev::Bind});
  std::vector<Ev> got;
  std::thread reader([&] { got = rig.events(ep0.get()); });
  ASSERT_TRUE(rig.host.configure().ok());
  reader.join();
  EXPECT_EQ(got, std::vector<Ev>{Ev::Enable});
}

TEST(FfsEp0, PollReportsPollinWithAnEventQueuedAndWakesForIt) {
  Rig rig({.configure = false});
  auto ep0 = rig.mustOpen("ep0", O_RDWR | O_NONBLOCK);
  EXPECT_EQ(pollNow(rig, ep0.get(), POLLIN | POLLOUT), POLLIN);  // BIND
  (void)rig.events(ep0.get());
  EXPECT_EQ(pollNow(rig, ep0.get(), POLLIN | POLLOUT), 0);
  std::thread host([&] { EXPECT_TRUE(rig.host.configure().ok()); });
  struct pollfd p {
    ep0.get(), POLLIN, 0
  };
  EXPECT_EQ(rig.ctx->poll({&p, 1}, -1).value(), 1);
  EXPECT_EQ(p.revents, POLLIN);
  host.join();
  EXPECT_EQ(rig.events(ep0.get()), std::vector<Ev>{Ev::Enable});
}

// --- ep0's ioctls
// ---------------------------------------------------------------------------------

TEST(FfsEp0, InterfaceRevmap) {
  Rig rig({.configure = false});
  auto ep0 = rig.mustOpen("ep0");
  EXPECT_EQ(rig.ioctl(ep0.get(), kFunctionfsInterfaceRevmap, nullptr), 0);
  EXPECT_EQ(rig.ioctl(ep0.get(), kFunctionfsInterfaceRevmap,
                      reinterpret_cast<void*>(1)),  // NOLINT(performance-no-int-to-ptr)
            -EDOM);
  EXPECT_EQ(rig.ioctl(ep0.get(), kFunctionfsEndpointRevmap, nullptr), -ENOTTY);
  rig.function->unbind();
  EXPECT_EQ(rig.ioctl(ep0.get(), kFunctionfsInterfaceRevmap, nullptr), -ENODEV);
}

// --- the reset when every file is closed
// ------------------------------------------------------------

TEST(FfsEp0, ClosingEveryFileResetsTheFunction) {
  Rig rig(fromEp0(/*enumerate=*/true));
  auto ep0 = rig.mustOpen("ep0");
  rig.writeDescriptors(ep0.get());
  ASSERT_TRUE(rig.function->enabled());
  auto ep1 = rig.mustOpen("ep1");
  ASSERT_TRUE(rig.ctx->close(std::move(ep0)).ok());
  EXPECT_EQ(rig.function->state(), FfsState::Active);  // ep1 is still open
  EXPECT_TRUE(rig.open("ep2").ok());
  ASSERT_TRUE(rig.ctx->close(std::move(ep1)).ok());  // the last file
  EXPECT_TRUE(rig.function->state() == FfsState::ReadDescriptors);
  EXPECT_FALSE(rig.function->bound());
  EXPECT_EQ(rig.function->dataEndpoints(), 0U);
  EXPECT_EQ(rig.open("ep1").code(), ENOENT);
  // And it starts again: new descriptors bind it again.
  ep0 = rig.mustOpen("ep0", O_RDWR | O_NONBLOCK);
  std::vector<std::byte> buf(12);
  EXPECT_EQ(rig.read(ep0.get(), buf), -EBADFD);
  rig.writeDescriptors(ep0.get());
  EXPECT_TRUE(rig.function->bound());
  EXPECT_TRUE(rig.function->enabled());
  EXPECT_EQ(rig.events(ep0.get()), std::vector<Ev>{Ev::Enable});  // ENABLE dropped BIND
  EXPECT_TRUE(rig.open("ep1").ok());
}

TEST(FfsEp0, ClosingEp0BeforeTheStringsForgetsTheDescriptors) {
  Rig rig(fromEp0());
  auto ep0 = rig.mustOpen("ep0");
  const Bytes d = defaultDescriptors();
  ASSERT_EQ(rig.write(ep0.get(), d), static_cast<long>(d.size()));
  ASSERT_TRUE(rig.ctx->close(std::move(ep0)).ok());
  EXPECT_TRUE(rig.function->state() == FfsState::ReadDescriptors);
  ep0 = rig.mustOpen("ep0");
  const Bytes s = stringsBlob();
  EXPECT_EQ(rig.write(ep0.get(), s), -EINVAL);  // a strings blob is not descriptors
}

TEST(FfsEp0, ABuiltInFunctionNeverResets) {
  Rig rig;
  auto ep0 = rig.mustOpen("ep0");
  ASSERT_TRUE(rig.ctx->close(std::move(ep0)).ok());
  EXPECT_EQ(rig.function->state(), FfsState::Active);
  EXPECT_TRUE(rig.function->enabled());
  EXPECT_TRUE(rig.open("ep1").ok());
}

}  // namespace
}  // namespace zbuf::usb
