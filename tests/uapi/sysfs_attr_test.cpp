#include "zbuf/uapi/sysfs_attr.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "zbuf/uapi/context.h"

namespace zbuf::uapi {
namespace {

constexpr const char* kPath = "/sys/devices/test/attr";
constexpr std::int64_t kPage = 4096;

class SysfsAttrTest : public ::testing::Test {
 protected:
  std::shared_ptr<Context> ctx = Context::create();

  UniqueFd mustOpen(int flags, const char* path = kPath) {
    auto fd = ctx->open(path, flags);
    EXPECT_TRUE(fd.ok()) << fd.error().describe();
    return fd.ok() ? std::move(*fd) : UniqueFd();
  }
  // One read of at most `n` bytes.
  std::string readSome(int fd, std::size_t n) {
    std::vector<std::byte> buf(n);
    auto got = ctx->read(fd, buf);
    EXPECT_TRUE(got.ok()) << got.error().describe();
    return got.ok() ? std::string(reinterpret_cast<const char*>(buf.data()), *got) : "";
  }
  Result<std::size_t> write(int fd, std::string_view text) {
    return ctx->write(fd, std::as_bytes(std::span(text.data(), text.size())));
  }
};

TEST_F(SysfsAttrTest, ReadReturnsTheShownTextFromThePosition) {
  ASSERT_TRUE(addSysfsAttr(*ctx, kPath, {[] { return Result<std::string>("hello\n"); }, {}}).ok());
  UniqueFd fd = mustOpen(O_RDONLY);
  EXPECT_EQ(readSome(fd.get(), 4), "hell");
  EXPECT_EQ(readSome(fd.get(), 4), "o\n");
  EXPECT_EQ(readSome(fd.get(), 4), "") << "0 at the end";
  EXPECT_EQ(ctx->lseek(fd.get(), 1, SEEK_SET).value(), 1);
  EXPECT_EQ(readSome(fd.get(), 64), "ello\n");
  EXPECT_EQ(ctx->lseek(fd.get(), 100, SEEK_SET).value(), 100);
  EXPECT_EQ(readSome(fd.get(), 64), "") << "past the text";
}

TEST_F(SysfsAttrTest, EachReadAtPositionZeroShowsAnew) {
  int shows = 0;
  ASSERT_TRUE(addSysfsAttr(*ctx, kPath,
                           {[&shows] { return Result<std::string>(std::to_string(++shows)); }, {}})
                  .ok());
  UniqueFd fd = mustOpen(O_RDONLY);
  EXPECT_EQ(readSome(fd.get(), 64), "1");
  EXPECT_EQ(ctx->lseek(fd.get(), 0, SEEK_SET).value(), 0);
  EXPECT_EQ(readSome(fd.get(), 64), "2");
  // Another open has its own position.
  UniqueFd other = mustOpen(O_RDONLY);
  EXPECT_EQ(readSome(other.get(), 64), "3");
}

TEST_F(SysfsAttrTest, AShowErrorIsTheReadsErrno) {
  ASSERT_TRUE(
      addSysfsAttr(*ctx, kPath, {[]() -> Result<std::string> { return Error(ENODEV, "show"); }, {}})
          .ok());
  UniqueFd fd = mustOpen(O_RDONLY);
  std::array<std::byte, 16> buf{};
  EXPECT_EQ(ctx->read(fd.get(), buf).code(), ENODEV);
}

TEST_F(SysfsAttrTest, OpenWithoutTheMatchingCallbackIsEacces) {
  ASSERT_TRUE(addSysfsAttr(*ctx, "/sys/ro", {[] { return Result<std::string>("x"); }, {}}).ok());
  ASSERT_TRUE(
      addSysfsAttr(*ctx, "/sys/wo", {{}, [](std::string_view) { return Result<void>(); }}).ok());
  EXPECT_TRUE(ctx->open("/sys/ro", O_RDONLY).ok());
  EXPECT_EQ(ctx->open("/sys/ro", O_WRONLY).code(), EACCES);
  EXPECT_EQ(ctx->open("/sys/ro", O_RDWR).code(), EACCES);
  EXPECT_TRUE(ctx->open("/sys/wo", O_WRONLY).ok());
  EXPECT_EQ(ctx->open("/sys/wo", O_RDONLY).code(), EACCES);
  EXPECT_EQ(ctx->open("/sys/wo", O_RDWR).code(), EACCES);
}

TEST_F(SysfsAttrTest, WriteHandsTheWholeBufferToStore) {
  std::vector<std::string> stored;
  ASSERT_TRUE(addSysfsAttr(*ctx, kPath,
                           {{},
                            [&stored](std::string_view text) {
                              stored.emplace_back(text);
                              return Result<void>();
                            }})
                  .ok());
  UniqueFd fd = mustOpen(O_WRONLY);
  EXPECT_EQ(write(fd.get(), "1024\n").value(), 5U);
  EXPECT_EQ(write(fd.get(), "").value(), 0U);
  const std::string largest(kPage - 1, '7');
  EXPECT_EQ(write(fd.get(), largest).value(), largest.size());
  ASSERT_EQ(stored.size(), 3U);
  EXPECT_EQ(stored[0], "1024\n");
  EXPECT_EQ(stored[1], "");
  EXPECT_EQ(stored[2], largest);
}

TEST_F(SysfsAttrTest, AWriteOfAPageOrMoreIsE2bigAndNotStored) {
  int stores = 0;
  ASSERT_TRUE(addSysfsAttr(*ctx, kPath,
                           {{},
                            [&stores](std::string_view) {
                              ++stores;
                              return Result<void>();
                            }})
                  .ok());
  UniqueFd fd = mustOpen(O_WRONLY);
  EXPECT_EQ(write(fd.get(), std::string(kPage, '1')).code(), E2BIG);
  EXPECT_EQ(write(fd.get(), std::string(kPage + 1, '1')).code(), E2BIG);
  EXPECT_EQ(stores, 0);
}

TEST_F(SysfsAttrTest, AStoreErrorIsTheWritesErrno) {
  ASSERT_TRUE(addSysfsAttr(*ctx, kPath,
                           {{},
                            [](std::string_view text) -> Result<void> {
                              auto v = parseSysfsU64(text);
                              ZBUF_TRY(v);
                              if (*v == 0) {
                                return Error(EBUSY, "store");
                              }
                              return {};
                            }})
                  .ok());
  UniqueFd fd = mustOpen(O_WRONLY);
  EXPECT_EQ(write(fd.get(), "lots").code(), EINVAL);
  EXPECT_EQ(write(fd.get(), "0").code(), EBUSY);
  EXPECT_EQ(write(fd.get(), "12\n").value(), 3U);
}

TEST_F(SysfsAttrTest, LseekStaysWithinAPage) {
  ASSERT_TRUE(addSysfsAttr(*ctx, kPath, {[] { return Result<std::string>("abc"); }, {}}).ok());
  UniqueFd fd = mustOpen(O_RDONLY);
  EXPECT_EQ(ctx->lseek(fd.get(), 0, SEEK_END).value(), kPage);
  EXPECT_EQ(ctx->lseek(fd.get(), -kPage, SEEK_END).value(), 0);
  EXPECT_EQ(ctx->lseek(fd.get(), 1, SEEK_END).code(), EINVAL);
  EXPECT_EQ(ctx->lseek(fd.get(), kPage, SEEK_SET).value(), kPage);
  EXPECT_EQ(ctx->lseek(fd.get(), kPage + 1, SEEK_SET).code(), EINVAL);
  EXPECT_EQ(ctx->lseek(fd.get(), -1, SEEK_SET).code(), EINVAL);
  EXPECT_EQ(ctx->lseek(fd.get(), 2, SEEK_SET).value(), 2);
  EXPECT_EQ(ctx->lseek(fd.get(), -1, SEEK_CUR).value(), 1);
  EXPECT_EQ(ctx->lseek(fd.get(), -2, SEEK_CUR).code(), EINVAL);
  EXPECT_EQ(readSome(fd.get(), 8), "bc") << "a refused seek leaves the position";
}

TEST_F(SysfsAttrTest, FstatIsAPageSizedRegularFileWithTheCallbacksModes) {
  auto show = [] { return Result<std::string>("x"); };
  auto store = [](std::string_view) { return Result<void>(); };
  ASSERT_TRUE(addSysfsAttr(*ctx, "/sys/rw", {show, store}).ok());
  ASSERT_TRUE(addSysfsAttr(*ctx, "/sys/ro", {show, {}}).ok());
  ASSERT_TRUE(addSysfsAttr(*ctx, "/sys/wo", {{}, store}).ok());
  UniqueFd rw = mustOpen(O_RDWR, "/sys/rw");
  UniqueFd ro = mustOpen(O_RDONLY, "/sys/ro");
  UniqueFd wo = mustOpen(O_WRONLY, "/sys/wo");
  auto st = ctx->fstat(rw.get());
  ASSERT_TRUE(st.ok());
  EXPECT_TRUE(S_ISREG(st->mode));
  EXPECT_EQ(st->size, static_cast<std::uint64_t>(kPage));
  EXPECT_EQ(st->mode & 0777U, 0644U);
  EXPECT_EQ(ctx->fstat(ro.get()).value().mode & 0777U, 0444U);
  EXPECT_EQ(ctx->fstat(wo.get()).value().mode & 0777U, 0200U);
  EXPECT_EQ(ctx->fdPath(ro.get()).value(), "/sys/ro");
}

TEST_F(SysfsAttrTest, AddRefusesATakenOrRelativePath) {
  auto show = [] { return Result<std::string>("x"); };
  ASSERT_TRUE(addSysfsAttr(*ctx, kPath, {show, {}}).ok());
  EXPECT_EQ(addSysfsAttr(*ctx, kPath, {show, {}}).code(), EEXIST);
  EXPECT_EQ(addSysfsAttr(*ctx, "sys/relative", {show, {}}).code(), EINVAL);
}

TEST(SysfsParse, BoolTakesTheKernelsSpellings) {
  for (const char* yes : {"1", "y", "Y", "on", "ON", "On", "1\n", "y\n"}) {
    auto v = parseSysfsBool(yes);
    ASSERT_TRUE(v.ok()) << yes;
    EXPECT_TRUE(*v) << yes;
  }
  for (const char* no : {"0", "n", "N", "off", "OFF", "Off", "0\n", "off\n"}) {
    auto v = parseSysfsBool(no);
    ASSERT_TRUE(v.ok()) << no;
    EXPECT_FALSE(*v) << no;
  }
  for (const char* bad : {"", "\n", "2", "maybe", "o", "1\n\n"}) {
    EXPECT_EQ(parseSysfsBool(bad).code(), EINVAL) << '"' << bad << '"';
  }
}

TEST(SysfsParse, U64IsDecimalWithAnOptionalNewline) {
  EXPECT_EQ(parseSysfsU64("0").value(), 0U);
  EXPECT_EQ(parseSysfsU64("4096\n").value(), 4096U);
  EXPECT_EQ(parseSysfsU64("18446744073709551615").value(), ~std::uint64_t{0});
  EXPECT_EQ(parseSysfsU64("18446744073709551616").code(), ERANGE);
  EXPECT_EQ(parseSysfsU64("99999999999999999999999\n").code(), ERANGE);
  for (const char* bad : {"", "\n", "-1", "12a", " 1", "1 ", "0x10", "1\n\n", "lots"}) {
    EXPECT_EQ(parseSysfsU64(bad).code(), EINVAL) << '"' << bad << '"';
  }
}

}  // namespace
}  // namespace zbuf::uapi
